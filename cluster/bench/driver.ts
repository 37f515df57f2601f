// The load loop: sends prepared transactions to the nodes at the pace a rate controller allows,
// in JSON-RPC batches spread round-robin over the nodes, honours backpressure (-32002: that node
// is left alone for a growing pause and the transactions are sent again later; none is ever
// dropped), and learns commit times from the nodes' newBlocks subscriptions. It records, per
// transaction, when it was sent and when its block arrived; report.ts turns that into figures.
import { GoodnessClient } from '../../rpc/client.ts';
import { CommitTracker, type CommittedBlock } from './commits.ts';
import { controllerFor, type RateSpec } from './rate.ts';
import { BatchPoster, encodeSendCall, type CallAnswer } from './sender.ts';

/** A transaction ready to send: its bytes as 0x hex (tx.md) and its hash. */
export interface PreparedTx {
  raw: string;
  hash: string;
}

export interface DriveOptions {
  urls: string[];
  txs: PreparedTx[];
  rate: RateSpec;
  /** how long new transactions are sent; the run then waits for the ones in flight */
  durationSec: number;
  /** transactions per JSON-RPC batch, at most (the node's own limit is 1000 calls) */
  batchMax?: number;
  /** request body size, at most (the node's default limit is 1 MiB) */
  maxBodyBytes?: number;
  /** HTTP requests in flight per node, at most */
  requestsPerNode?: number;
  /** how long to wait, once sending has stopped, for what is in flight */
  drainTimeoutSec?: number;
  onProgress?: (p: ProgressSnapshot) => void;
  progressEveryMs?: number;
}

export interface ProgressSnapshot {
  phase: 'sending' | 'draining' | 'done';
  elapsedMs: number;
  durationMs: number;
  sent: number;
  committed: number;
  rejected: number;
  pending: number;
  /** committed per second over the last second */
  currentTps: number;
  /** committed per second since the clock started */
  averageTps: number;
}

/** Per-transaction states. */
export const TxState = { UNSENT: 0, IN_REQUEST: 1, ADMITTED: 2, WAITING_RETRY: 3, COMMITTED: 4, REFUSED: 5 } as const;

export interface DriveResult {
  /** Date.now() when the clock started */
  startedAt: number;
  durationSec: number;
  rate: RateSpec;
  nodes: string[];
  /** TxState per transaction */
  state: Uint8Array;
  /** ms since the clock started: first send, the send whose admission counted, block arrival (NaN when none) */
  firstSentAt: Float64Array;
  sentAt: Float64Array;
  committedAt: Float64Array;
  /** why each refused transaction was refused: "-32001/5" (refused at admission, machine code 5), "-32003", ... */
  refusedWith: Map<number, string>;
  /** the first message seen for each kind of refusal */
  refusalSamples: Record<string, string>;
  sent: number;
  attempts: number;
  committed: number;
  refused: number;
  /** -32002 answers, by second */
  backpressuredBySecond: number[];
  backpressured: number;
  transportErrors: number;
  /** pending transactions observed at the end of each second */
  pendingBySecond: number[];
  /** sent, and neither committed nor refused when the run gave up waiting */
  unresolved: { admitted: number; backpressured: number; unknown: number };
  /** seconds since the start at which the prepared transactions ran out, when that was before the duration */
  exhaustedAtSec: number | null;
  /** ms since the start of the last commit of a transaction of this run */
  lastCommitAt: number;
  blocks: number;
  /** the chain's height when the clock started and when the run ended */
  startHeight: number;
  endHeight: number;
  notes: string[];
}

const TICK_MS = 5;
const MIN_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 500;
const TRANSPORT_BACKOFF_MS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function drive(opts: DriveOptions): Promise<DriveResult> {
  const { txs, urls } = opts;
  if (urls.length === 0) throw new Error('no node to send to');
  const n = txs.length;
  const batchMax = Math.max(1, Math.min(1000, opts.batchMax ?? 500));
  const maxBodyBytes = opts.maxBodyBytes ?? 900_000;
  const requestsPerNode = opts.requestsPerNode ?? 4;
  const durationMs = opts.durationSec * 1000;
  const drainMs = (opts.drainTimeoutSec ?? 30) * 1000;
  const controller = controllerFor(opts.rate);

  // Everything the hot path needs is encoded now, before the clock.
  const calls = txs.map((t, i) => encodeSendCall(i, t.raw));
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) indexOf.set(txs[i]!.hash, i);

  const state = new Uint8Array(n);
  const uncertain = new Uint8Array(n);
  /** 1 + the index of the node that admitted each transaction (0: none yet) */
  const admittedBy = new Uint8Array(n);
  const tries = new Uint16Array(n);
  const firstSentAt = new Float64Array(n).fill(Number.NaN);
  const sentAt = new Float64Array(n).fill(Number.NaN);
  const committedAt = new Float64Array(n).fill(Number.NaN);
  const retryAt = new Float64Array(n);
  const refusedWith = new Map<number, string>();
  const retryQueue: number[] = [];
  let retryHead = 0;
  let next = 0;
  let sent = 0;
  let attempts = 0;
  let committed = 0;
  let refused = 0;
  let backpressured = 0;
  let transportErrors = 0;
  let lastCommitAt = 0;
  let blocks = 0;
  let exhaustedAtSec: number | null = null;
  const backpressuredBySecond: number[] = [];
  const pendingBySecond: number[] = [];
  const notes: string[] = [];

  const posters = urls.map((u) => new BatchPoster(u, requestsPerNode + 1));
  const clients = urls.map((u) => new GoodnessClient(u, { timeoutMs: 30_000 }));
  const inRequests = new Array<number>(urls.length).fill(0);
  const backoffMs = new Array<number>(urls.length).fill(0);
  const backoffUntil = new Array<number>(urls.length).fill(0);
  let rr = 0;
  let t0 = 0;
  let sending = true;
  /** new transactions may be taken while next < newLimit */
  let newLimit = n;
  /** halved when a node refuses a batch as a whole (too large for its limits) */
  let currentBatchMax = batchMax;
  const now = () => performance.now() - t0;
  const pending = () => sent - committed - refused;

  const onBlock = (block: CommittedBlock) => {
    blocks++;
    const at = block.arrivedAt - t0;
    // A committed block empties the nodes' pools of its transactions: whoever was told -32002
    // may try again now rather than sit out the rest of its pause.
    if (block.hashes.length > 0) releaseBackpressure(at);
    const committedBefore = committed;
    for (const hash of block.hashes) {
      const i = indexOf.get(hash);
      if (i === undefined) continue;
      const s = state[i]!;
      if (s === TxState.COMMITTED || s === TxState.UNSENT) continue;
      if (s === TxState.REFUSED) {
        // Refused by one answer, yet committed (an earlier attempt's answer was lost): it committed.
        refusedWith.delete(i);
        refused--;
      }
      state[i] = TxState.COMMITTED;
      committedAt[i] = at;
      committed++;
      if (at > lastCommitAt) lastCommitAt = at;
    }
    if (committed > committedBefore) controller.onCommitted?.(committed - committedBefore);
  };
  const tracker = new CommitTracker(clients, onBlock);

  const releaseBackpressure = (at: number) => {
    for (let k = 0; k < urls.length; k++) if (backoffMs[k]! > 0 && backoffUntil[k]! > at) backoffUntil[k] = at;
    for (let j = retryHead; j < retryQueue.length; j++) {
      const i = retryQueue[j]!;
      if (state[i] === TxState.WAITING_RETRY && !uncertain[i] && retryAt[i]! > at) retryAt[i] = at;
    }
  };
  const refusalSamples: Record<string, string> = {};
  const refuse = (i: number, why: string, message: string) => {
    refusalSamples[why] ??= message;
    state[i] = TxState.REFUSED;
    refusedWith.set(i, why);
    refused++;
  };
  const scheduleRetry = (i: number, at: number) => {
    state[i] = TxState.WAITING_RETRY;
    retryAt[i] = at;
    retryQueue.push(i);
  };

  const handleAnswers = (node: number, batch: number[], answers: CallAnswer[] | { error: { code: number; message: string } }, at: number) => {
    if (!Array.isArray(answers)) {
      // The batch as a whole was refused (too large, malformed): send its transactions again in smaller batches.
      notes.push(`${urls[node]} refused a batch of ${batch.length}: ${answers.error?.code} ${answers.error?.message}`);
      for (const i of batch) if (state[i] === TxState.IN_REQUEST) scheduleRetry(i, at + MIN_BACKOFF_MS);
      currentBatchMax = Math.max(1, Math.floor(currentBatchMax / 2));
      return;
    }
    let poolFull = 0;
    let admitted = 0;
    const answered = new Set<number>();
    for (const a of answers) {
      const i = a.id;
      if (typeof i !== 'number' || i < 0 || i >= n) continue;
      answered.add(i);
      if (state[i] !== TxState.IN_REQUEST) continue;
      if (!a.error) {
        state[i] = TxState.ADMITTED;
        admittedBy[i] = node + 1;
        admitted++;
        continue;
      }
      const code = a.error.code;
      if (code === -32002) {
        poolFull++;
        scheduleRetry(i, Number.NaN);
      } else if (code === -32003 && (uncertain[i] || tries[i]! > 1)) {
        // An earlier attempt whose answer was lost got it admitted: it is pending or committed.
        state[i] = TxState.ADMITTED;
        admittedBy[i] = node + 1;
      } else if (code === -32001) {
        const data = a.error.data as { code?: number; log?: string } | undefined;
        refuse(i, `-32001/${data?.code ?? '?'}`, data?.log ?? a.error.message);
      } else refuse(i, String(code), a.error.message);
    }
    for (const i of batch) {
      if (!answered.has(i) && state[i] === TxState.IN_REQUEST) {
        uncertain[i] = 1;
        scheduleRetry(i, at + MIN_BACKOFF_MS);
      }
    }
    if (poolFull > 0) {
      controller.onBackpressure?.(pending());
      backpressured += poolFull;
      const s = Math.floor(at / 1000);
      backpressuredBySecond[s] = (backpressuredBySecond[s] ?? 0) + poolFull;
      // Nothing admitted: the node is saturated, so the pause doubles. Some admitted: it is
      // taking work as fast as it commits, so the pause shrinks back towards the shortest one.
      backoffMs[node] = admitted === 0 ? Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, backoffMs[node]! * 2)) : Math.max(MIN_BACKOFF_MS, backoffMs[node]! / 2);
      backoffUntil[node] = at + backoffMs[node]!;
      for (const i of batch) if (state[i] === TxState.WAITING_RETRY && Number.isNaN(retryAt[i]!)) retryAt[i] = backoffUntil[node]!;
    } else backoffMs[node] = 0;
  };

  const send = (node: number, batch: number[], at: number) => {
    for (const i of batch) {
      if (state[i] === TxState.UNSENT) {
        firstSentAt[i] = at;
        sent++;
      }
      state[i] = TxState.IN_REQUEST;
      sentAt[i] = at;
      tries[i] = Math.min(65535, tries[i]! + 1);
    }
    attempts += batch.length;
    inRequests[node]!++;
    posters[node]!
      .post(batch.map((i) => calls[i]!))
      .then(
        (answers) => handleAnswers(node, batch, answers, now()),
        (err: Error) => {
          transportErrors++;
          if (transportErrors <= 5) notes.push(`${urls[node]}: ${err.message}`);
          const t = now();
          backoffUntil[node] = t + TRANSPORT_BACKOFF_MS;
          for (const i of batch) {
            if (state[i] !== TxState.IN_REQUEST) continue;
            uncertain[i] = 1;
            scheduleRetry(i, t + TRANSPORT_BACKOFF_MS);
          }
        },
      )
      .finally(() => {
        inRequests[node]!--;
        dispatch();
      });
  };

  const pickNode = (at: number): number => {
    for (let k = 0; k < urls.length; k++) {
      const node = (rr + k) % urls.length;
      if (inRequests[node]! < requestsPerNode && backoffUntil[node]! <= at) {
        rr = (node + 1) % urls.length;
        return node;
      }
    }
    return -1;
  };

  const readyRetries = (at: number) => {
    let c = 0;
    for (let j = retryHead; j < retryQueue.length && retryAt[retryQueue[j]!]! <= at; j++) c++;
    return c;
  };
  const compactRetries = () => {
    if (retryHead > 4096 && retryHead * 2 > retryQueue.length) {
      retryQueue.splice(0, retryHead);
      retryHead = 0;
    }
  };

  function dispatch(): void {
    const at = now();
    if (sending) {
      if (next >= n) {
        sending = false;
        if (at < durationMs) exhaustedAtSec = at / 1000;
      } else if (at >= durationMs) {
        // The window has closed: a fixed rate still sends what fell due within it (its requests
        // may all have been in flight at that moment); the other controllers send nothing new.
        newLimit = Math.min(newLimit, opts.rate.kind === 'rate' ? Math.floor(opts.rate.tps * opts.durationSec) : next);
        if (next >= newLimit) sending = false;
      }
    }
    let budget = controller.allowance({ elapsedMs: at, attempts, pending: pending(), readyRetries: controller.spec.kind === 'rate' ? 0 : readyRetries(at) });
    while (budget >= 1) {
      const node = pickNode(at);
      if (node < 0) break;
      const batch: number[] = [];
      let bytes = 2;
      const limit = Math.min(currentBatchMax, budget);
      while (batch.length < limit) {
        let i: number;
        let fromRetry = false;
        if (retryHead < retryQueue.length && retryAt[retryQueue[retryHead]!]! <= at) {
          i = retryQueue[retryHead++]!;
          fromRetry = true;
          if (state[i] !== TxState.WAITING_RETRY) continue;
        } else if (sending && next < newLimit) i = next++;
        else break;
        const size = calls[i]!.length + 1;
        if (batch.length > 0 && bytes + size > maxBodyBytes) {
          if (fromRetry) retryHead--;
          else next--;
          break;
        }
        bytes += size;
        batch.push(i);
      }
      if (batch.length === 0) break;
      budget -= batch.length;
      send(node, batch, at);
    }
    compactRetries();
  }

  const startHeight = await tracker.start();
  t0 = performance.now();
  const startedAt = Date.now();
  const progressEvery = opts.progressEveryMs ?? 250;
  let lastProgress = -Infinity;
  const recent: { at: number; committed: number }[] = [];
  const snapshot = (phase: ProgressSnapshot['phase'], at: number): ProgressSnapshot => {
    recent.push({ at, committed });
    while (recent.length > 1 && recent[0]!.at < at - 1000) recent.shift();
    const first = recent[0]!;
    const dt = (at - first.at) / 1000;
    return {
      phase,
      elapsedMs: at,
      durationMs,
      sent,
      committed,
      rejected: refused,
      pending: pending(),
      currentTps: dt > 0 ? (committed - first.committed) / dt : 0,
      averageTps: at > 0 ? committed / (at / 1000) : 0,
    };
  };

  let drainStartedAt = Number.NaN;
  let lastCatchUp = 0;
  try {
    for (;;) {
      dispatch();
      const at = now();
      pendingBySecond[Math.floor(at / 1000)] = pending();
      if (!sending && Number.isNaN(drainStartedAt)) drainStartedAt = at;
      if (opts.onProgress && at - lastProgress >= progressEvery) {
        lastProgress = at;
        opts.onProgress(snapshot(sending ? 'sending' : 'draining', at));
      }
      if (!sending) {
        if (pending() === 0) break;
        if (at - drainStartedAt > drainMs) break;
        // A lost notice must not hold the run: once a second while draining, ask for the height.
        if (at - lastCatchUp > 1000) {
          lastCatchUp = at;
          void tracker.catchUp();
        }
      }
      await sleep(TICK_MS);
    }
    // A last look for blocks, bounded: a node that stopped answering must not hold the report.
    await Promise.race([tracker.catchUp(), sleep(5_000)]);
    await tracker.settle(10_000);
    // Requests still in flight are left to finish: their answers no longer change the outcome.
    if (opts.onProgress) opts.onProgress(snapshot('done', now()));
  } finally {
    await tracker.stop();
    // Closing waits for each WebSocket's close handshake: bounded, in case a node stopped answering.
    await Promise.race([Promise.allSettled(clients.map((c) => c.close())), sleep(2_000)]);
    for (const p of posters) p.close();
  }
  if (tracker.fetchFailures > 0) notes.push(`${tracker.fetchFailures} blocks could not be fetched: ${tracker.lastError}`);

  const unresolved = { admitted: 0, backpressured: 0, unknown: 0 };
  const stuckAt = new Array<number>(urls.length).fill(0);
  for (let i = 0; i < n; i++) {
    const s = state[i];
    if (s === TxState.ADMITTED) {
      unresolved.admitted++;
      if (admittedBy[i]! > 0) stuckAt[admittedBy[i]! - 1]!++;
    } else if (s === TxState.WAITING_RETRY) unresolved[uncertain[i] ? 'unknown' : 'backpressured']++;
    else if (s === TxState.IN_REQUEST) unresolved.unknown++;
  }
  if (stuckAt.some((c) => c > 0)) {
    // Where admitted transactions got stuck tells a pool that never reaches the proposer from a chain that stalled.
    notes.push(`admitted but never committed, by the node that admitted them: ${urls.map((u, k) => `${u}: ${stuckAt[k]}`).join(', ')}`);
  }
  return {
    startedAt,
    durationSec: opts.durationSec,
    rate: opts.rate,
    nodes: urls,
    state,
    firstSentAt,
    sentAt,
    committedAt,
    refusedWith,
    refusalSamples,
    sent,
    attempts,
    committed,
    refused,
    backpressuredBySecond: Array.from(backpressuredBySecond, (x) => x ?? 0),
    backpressured,
    transportErrors,
    pendingBySecond: Array.from(pendingBySecond, (x) => x ?? 0),
    unresolved,
    exhaustedAtSec,
    lastCommitAt,
    blocks,
    startHeight,
    endHeight: tracker.height,
    notes,
  };
}
