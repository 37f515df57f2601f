// The PBFT driver: feeds the pure replica (consensus/pbft/core.ts) network messages, timers
// and the results of the work it asks for, one event at a time, and carries out its Ready in
// the order that keeps promises: persist, then send; build and validate through the block
// pipeline (answers come back as events); commit in height order; sync from peers when behind.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BlockPipeline, type Proposal } from './block-pipeline.ts';
import { fetchBlocks, fetchPeerHeight, fetchTxs, serveSync, type BlockSource } from './block-sync.ts';
import { maxFaulty, quorumSize, verifyCertificate } from './chain/certificate.ts';
import { headerFields, headerHash } from './chain/header.ts';
import type { CommitCertificate, ConsensusParams, Header, Validator, ValidatorRegistration } from './chain/types.ts';
import { to0x } from './crypto/encoding.ts';
import type { ConsensusEngine } from './engine.ts';
import { Replica } from './pbft/core.ts';
import { decodeRecord, encodeRecord, recordHeight, recordKey } from './pbft/messages.ts';
import type { Message, PersistRecord, Ready, ReplicaEvent, TimerId, ViewChangeCause } from './pbft/types.ts';
import { BlsVoteCrypto } from './pbft/vote-crypto.ts';
import { decodePayload, encodePayload } from './proposal-payload.ts';
import { decodeTxBatch, encodeTxBatch } from '../p2p/tx-gossip.ts';
import type { Transport } from '../p2p/types.ts';
import type { ConsensusStatus } from '../rpc/node-api.ts';
import type { BlockTx } from '../state/machine.ts';
import { txHash } from '../state/tx.ts';
import type { ChainStore } from '../state/store/chain-store.ts';

export interface PbftEngineOptions {
  pipeline: BlockPipeline;
  store: ChainStore;
  transport: Transport;
  /** this node's BLS key: its validator index, if any, is the one the schedule registers for the public key */
  blsSecretKey: Uint8Array;
  blsPublicKey: string;
  params: ConsensusParams;
  logger: Logger;
  onFatal(reason: string): void;
  /**
   * The validators consensus must reach changed (a validator change committed, or one applied):
   * the node points p2p at them. Called with the genesis set at start.
   */
  onValidatorsChanged?(validators: ValidatorRegistration[]): void;
  /** where a node with no validator connected fetches certified blocks (other nodes' JSON-RPC: cluster/rpc-follow.ts) */
  follow?: BlockSource;
  /** the node's admission of this transaction, while one is under way (gossip got it first); asking hurries it */
  admission?(hash: string): Promise<unknown> | undefined;
  /**
   * Checks and verifies, off the main thread where it can, the transactions of a block that
   * carry no `checked` (they did not come through this node's admission, or came on other
   * validators' word), setting `checked` on those that pass. `proposedBy`: the validator whose
   * PRE-PREPARE brought the block, one more voucher for each of its transactions.
   */
  checkBlockTxs?(txs: BlockTx[], proposedBy?: number): Promise<void>;
}

/** How often a node with no validator peers asks `follow` for its height. */
const FOLLOW_INTERVAL_MS = 1_000;

const TX_FETCH_TIMEOUT_MS = 2_000;
/** rounds of asking peers for a proposal's missing transactions (a restarted node may not be connected to all yet) */
const TX_FETCH_ROUNDS = 3;
const TX_FETCH_RETRY_MS = 500;
/**
 * Before this node votes for a block (or proposes it), it keeps the block's transactions under
 * `txs/<height>/<hash>` beside its vote records: after a crash its pool is gone, and PBFT may
 * force the same block again in a later view, which it must still be able to execute.
 */
const BLOCK_TXS_PREFIX = 'txs/';
const SYNC_TIMEOUT_MS = 5_000;
/** how long a replica waits for gossip to bring a proposal's transactions before asking the proposer */
const GOSSIP_GRACE_MS = 50;
/**
 * A leader proposes only transactions admitted at least this long ago, when it has peers: a
 * transaction a client just gave it is still on its way to them by gossip, and a replica that
 * lacks a proposal's transaction waits for it (GOSSIP_GRACE_MS, then a fetch from a peer) before
 * it can vote. At 3,500 kv tx/s on 4 validators, replicas waited 40-180 ms per block this way.
 */
const GOSSIP_SETTLE_MS = 40;
/** how long it waits at most for its own admission of transactions gossip already brought */
const ADMISSION_WAIT_MS = 1_000;

/**
 * A consensus message's type from its second byte (messages.ts: version, then the type code),
 * so that counting received messages costs no second decode; the core decodes them. 'other' for
 * a code messages.ts does not know (the core drops such bytes as malformed).
 * test/metrics-units.test.ts checks this table against encodeMessage.
 */
const MESSAGE_TYPE_BY_CODE: readonly (Message['type'] | undefined)[] = [undefined, 'pre-prepare', 'prepare', 'precommit', 'commit', 'view-change', 'new-view', 'certificate'];

/** The first source to report a height above `head`, or null once every one has answered (or failed) without. */
function firstAhead(sources: BlockSource[], head: number): Promise<{ source: BlockSource; height: number } | null> {
  return new Promise((resolve) => {
    let left = sources.length;
    const done = () => {
      if (--left === 0) resolve(null);
    };
    for (const source of sources) {
      source.height().then((height) => (height > head ? resolve({ source, height }) : done()), done);
    }
  });
}

/** Milliseconds to one decimal, for logs. */
function ms(x: number): number {
  return Math.round(x * 10) / 10;
}

export type CountedMessageType = Message['type'] | 'other';

export function consensusMessageType(bytes: Uint8Array): CountedMessageType {
  return (bytes.length > 1 ? MESSAGE_TYPE_BY_CODE[bytes[1]!] : undefined) ?? 'other';
}

/** Messages and bytes by type, in one direction. */
export type MessageCounts = Map<CountedMessageType, { messages: number; bytes: number }>;

function countMessage(counts: MessageCounts, type: CountedMessageType, copies: number, bytes: number): void {
  const c = counts.get(type);
  if (c) {
    c.messages += copies;
    c.bytes += copies * bytes;
  } else {
    counts.set(type, { messages: copies, bytes: copies * bytes });
  }
}

export class PbftEngine implements ConsensusEngine {
  private replica!: Replica;
  private readonly queue: ReplicaEvent[] = [];
  private draining = false;
  private running = false;
  private readonly timers = new Map<TimerId, NodeJS.Timeout>();
  private readonly recordHeights = new Map<string, number>();
  /** machine work (build, validate, commit) runs one at a time: they share speculative state */
  private machineLock: Promise<unknown> = Promise.resolve();
  private syncing = false;
  private lastBuildAt = 0;
  /**
   * How often the core abandoned each recent block: a validation that was asked for before an
   * abandonment and runs after it must not bring the block's state back (a later request for the
   * same block, after a re-proposal, sees the new count and runs).
   */
  private readonly abandonments = new Map<string, number>();
  private highestKnown = 0;
  private pendingReported = false;
  private readonly unsubscribe: (() => void)[] = [];
  /** this node's validator index, -1 while it is not one (an observer, or before its validator.add commits) */
  private index = -1;
  /** the indexes last given to onValidatorsChanged */
  private reachKey = '';
  /** Plain counts the node's metrics read at scrape time: the hot path only adds to numbers. */
  readonly counters = {
    /** moves of the view, by cause (Ready.viewChanges) */
    viewChanges: new Map<ViewChangeCause, number>(),
    /** messages the core dropped, by "peer:reason" */
    dropped: new Map<string, number>(),
    /** consensus messages sent (one per recipient queue that took it) and received, by type */
    sent: new Map() as MessageCounts,
    received: new Map() as MessageCounts,
    /** blocks applied by sync (fetched from peers, not decided by this node's core) */
    syncedBlocks: 0,
  };

  constructor(private readonly o: PbftEngineOptions) {}

  private get schedule() {
    return this.o.pipeline.schedule;
  }

  /** This node's index in any set the schedule holds (past or coming), or -1. Indexes are never reused, so once found it stays. */
  private findIndex(): number {
    const mine = this.schedule.upcoming(0).find((v) => v.blsPublicKey === this.o.blsPublicKey);
    return mine?.index ?? -1;
  }

  async start(): Promise<void> {
    const { store, pipeline, transport } = this.o;
    const records: PersistRecord[] = [];
    for (const r of await store.consensusRecords()) {
      if (r.key.startsWith(BLOCK_TXS_PREFIX)) {
        this.recordHeights.set(r.key, Number(r.key.split('/')[1]));
        continue;
      }
      const record = decodeRecord(r.bytes);
      records.push(record);
      this.recordHeights.set(r.key, recordHeight(record));
    }
    this.genesisHash = (await store.getBlock(0))!.hash;
    await this.newReplica(records);
    this.updateReach();
    this.running = true;
    this.unsubscribe.push(
      transport.onMessage('consensus', (from, bytes) => {
        countMessage(this.counters.received, consensusMessageType(bytes), 1, bytes.length);
        this.enqueue({ type: 'message', from, bytes });
      }),
    );
    this.unsubscribe.push(serveSync(transport, store, pipeline.pool));
    this.unsubscribe.push(
      pipeline.pool.onAdded(() => {
        this.lastAddedAt = Date.now();
        this.reportPending();
      }),
    );
    this.enqueue({ type: 'start' });
    this.reportPending();
    if (this.o.follow) {
      const timer = setInterval(() => void this.followTick(), FOLLOW_INTERVAL_MS);
      timer.unref();
      this.unsubscribe.push(() => clearInterval(timer));
    }
  }

  private genesisHash = '';
  /** when the pool last took a transaction (Date.now) */
  private lastAddedAt = 0;

  /**
   * The core for this node's current identity. A node that is no validator yet runs a core that
   * only listens (index −1); when its validator.add commits it gets a fresh core under its
   * index (it never voted before, so it has no promises to keep), from the committed tip.
   */
  private async newReplica(records: PersistRecord[]): Promise<void> {
    const { pipeline, store } = this.o;
    this.index = this.findIndex();
    const height = pipeline.head.header.number;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.replica = new Replica(
      {
        index: this.index,
        chain: pipeline.genesis.chain,
        genesisHash: this.genesisHash,
        validatorsAt: (h) => this.schedule.at(h)?.map((v) => v.index) ?? null,
        crypto: new BlsVoteCrypto(this.o.blsSecretKey, (i) => this.schedule.blsKey(i)),
        window: this.o.params.window,
        baseTimeoutMs: this.o.params.viewTimeoutMs,
      },
      { committedHeight: height, committedHash: pipeline.head.hash, committedCertificate: height === 0 ? null : await store.getCertificate(height), records },
    );
  }

  /** Tells the node which validators to reach: every one that signs a height from the next on. */
  private updateReach(): void {
    const reach = this.schedule.upcoming(this.o.pipeline.head.header.number + 1);
    const key = reach.map((v) => v.index).join(',');
    if (key === this.reachKey) return;
    this.reachKey = key;
    this.o.logger.info({ height: this.o.pipeline.head.header.number, validators: key }, 'validators to reach');
    this.o.onValidatorsChanged?.(reach);
  }

  /** After commits: a changed schedule moves p2p, and a node that just became a validator gets its core. */
  private async afterCommits(): Promise<void> {
    this.updateReach();
    if (this.index === -1 && this.findIndex() !== -1) {
      await this.newReplica([]);
      this.o.logger.info({ index: this.index, height: this.o.pipeline.head.header.number }, 'this node is now a validator: its consensus core starts');
      this.queue.unshift({ type: 'start' });
      if (!this.draining) void this.drain();
      this.pendingReported = false;
      this.reportPending();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const u of this.unsubscribe) u();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.machineLock.catch(() => undefined);
  }

  joined(): boolean {
    return this.running;
  }

  validatorsAt(height: number): Validator[] {
    return this.schedule.at(height) ?? [];
  }

  /** This node's validator index, or −1 while it is not a validator. */
  validatorIndex(): number {
    return this.index;
  }

  status(): ConsensusStatus {
    const s = this.replica.status();
    const height = this.o.pipeline.head.header.number;
    const validators = this.schedule.require(height + 1);
    const n = validators.length;
    return {
      height,
      view: s.view,
      leader: s.leader ?? -1,
      f: maxFaulty(n),
      quorum: quorumSize(n),
      validators: validators.map(({ index, peerId, blsPublicKey }) => ({ index, peerId, blsPublicKey })),
      lastCommitTime: this.o.pipeline.lastCommitTime,
    };
  }

  syncStatus(): { height: number; highestKnownHeight: number; syncing: boolean } {
    const height = this.o.pipeline.head.header.number;
    return { height, highestKnownHeight: Math.max(height, this.highestKnown), syncing: this.syncing };
  }

  private reportPending(): void {
    const pending = this.o.pipeline.pool.size > 0;
    if (pending === this.pendingReported) return;
    this.pendingReported = pending;
    this.enqueue({ type: 'pendingWork', pending });
  }

  private enqueue(event: ReplicaEvent): void {
    if (!this.running) return;
    this.queue.push(event);
    if (!this.draining) void this.drain();
  }

  /** One event at a time, each Ready carried out (persist awaited before send) before the next. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.running && this.queue.length > 0) {
        const event = this.queue.shift()!;
        const ready = this.replica.step(event, Date.now());
        await this.apply(ready);
      }
    } catch (err) {
      this.o.logger.fatal({ err }, 'consensus driver failed');
      this.running = false;
      this.o.onFatal(String(err));
    } finally {
      this.draining = false;
    }
  }

  private withMachine<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.machineLock.then(fn, fn);
    this.machineLock = run.catch(() => undefined);
    return run;
  }

  private async apply(r: Ready): Promise<void> {
    const { store, transport, logger } = this.o;
    for (const vc of r.viewChanges) {
      this.counters.viewChanges.set(vc.cause, (this.counters.viewChanges.get(vc.cause) ?? 0) + 1);
      logger.info({ from: vc.from, to: vc.to, cause: vc.cause, height: this.o.pipeline.head.header.number }, 'view change');
    }
    if (r.fatal) {
      logger.fatal({ reason: r.fatal }, 'consensus cannot continue');
      this.running = false;
      this.o.onFatal(r.fatal);
      return;
    }
    // Persist before you vote: the records are durable before any message of this step leaves.
    if (r.persist.length > 0 || r.prune !== null) {
      const puts = r.persist.map((rec) => ({ key: recordKey(rec), bytes: encodeRecord(rec), height: recordHeight(rec) }));
      const deletes: string[] = [];
      if (r.prune !== null) for (const [k, h] of this.recordHeights) if (h > 0 && h <= r.prune) deletes.push(k);
      await store.putConsensusRecords(puts, deletes);
      for (const k of deletes) this.recordHeights.delete(k);
      for (const p of puts) this.recordHeights.set(p.key, p.height);
    }
    for (const out of r.send) {
      let copies = 0;
      if (out.to === 'all') copies = transport.broadcast('consensus', out.bytes);
      else if (out.to !== this.index) copies = transport.send(out.to, 'consensus', out.bytes) ? 1 : 0;
      if (copies > 0) countMessage(this.counters.sent, out.msg.type, copies, out.bytes.length);
    }
    for (const t of r.cancelTimers) {
      clearTimeout(this.timers.get(t));
      this.timers.delete(t);
    }
    for (const t of r.timers) {
      clearTimeout(this.timers.get(t.id));
      this.timers.set(t.id, setTimeout(() => this.enqueue({ type: 'timer', id: t.id }), Math.max(0, t.at - Date.now())));
    }
    for (const d of r.dropped) {
      const key = `${d.from}:${d.reason}`;
      this.counters.dropped.set(key, (this.counters.dropped.get(key) ?? 0) + 1);
      if (d.fault && d.from >= 0 && d.from !== this.index) transport.penalize(d.from, d.reason);
    }
    for (const a of r.abandon) {
      this.o.pipeline.forget(a.hash);
      this.abandonments.set(a.hash, (this.abandonments.get(a.hash) ?? 0) + 1);
      if (this.abandonments.size > 1024) this.abandonments.delete(this.abandonments.keys().next().value!);
    }
    if (r.abandon.length > 0) {
      // The abandoned blocks' transactions are proposable again, though a build may have told
      // the core there was nothing left (morePending false above): tell it again.
      this.pendingReported = false;
      this.reportPending();
    }
    // Commits in height order, each durable before the next.
    for (const c of r.commit) {
      const startedAt = performance.now();
      let lockedAt = 0;
      await this.withMachine(() => {
        lockedAt = performance.now();
        return this.commit(c.hash, c.certificate);
      });
      logger.debug({ height: c.height, hash: c.hash, view: c.certificate.view, lockWaitMs: ms(lockedAt - startedAt), commitMs: ms(performance.now() - lockedAt) }, 'block committed');
    }
    if (r.commit.length > 0) {
      this.reportPending();
      await this.afterCommits();
    }
    if (r.build) void this.build(r.build.view, r.build.height, r.build.parentHash);
    for (const v of r.validate) void this.validate(v.height, v.hash, v.parentHash, v.payload, v.proposedBy);
    if (r.sync) void this.sync(r.sync.targetHeight);
  }

  private async commit(hash: string, certificate: CommitCertificate): Promise<void> {
    if (certificate.number <= this.o.pipeline.head.header.number) {
      // Sync got there first; the store already holds this height.
      const stored = await this.o.store.getBlock(certificate.number);
      if (stored?.hash !== hash) throw new Error(`the replica committed ${hash} at ${certificate.number}, the store holds ${stored?.hash}`);
      return;
    }
    const proposal = this.o.pipeline.speculativeBlock(hash);
    if (!proposal) throw new Error(`the replica committed ${hash}, which this node never executed`);
    proposal.block.view = certificate.view;
    await this.o.pipeline.commit(proposal, certificate);
  }

  private async build(view: number, height: number, parentHash: string): Promise<void> {
    const { params } = this.o;
    // Blocks are cut by size or time (genesis consensus params): short of a full block, a leader
    // waits until blockTimeMs after its previous proposal, so that a trickle of transactions does
    // not become a block each (heights are what transactions expire by).
    const sinceLast = Date.now() - this.lastBuildAt;
    if (sinceLast < params.blockTimeMs && this.o.pipeline.pool.size < params.maxBlockTxs) {
      await sleep(params.blockTimeMs - sinceLast);
    }
    this.lastBuildAt = Date.now();
    const startedAt = performance.now();
    let proposal: Proposal | null = null;
    let lockedAt = 0;
    let addedBy: number | undefined;
    try {
      proposal = await this.withMachine(() => {
        lockedAt = performance.now();
        const alone = (this.schedule.at(height)?.length ?? 1) <= 1;
        addedBy = alone ? undefined : Date.now() - GOSSIP_SETTLE_MS;
        return this.o.pipeline.build({ proposer: this.index, timestamp: Date.now(), maxTxs: params.maxBlockTxs, maxBytes: params.maxBlockBytes, parentHash, view, addedBy });
      });
    } catch (err) {
      this.o.logger.warn({ err, height }, 'could not build a proposal');
    }
    const builtAt = performance.now();
    if (proposal) await this.keepBlockTxs(height, proposal.block.hash, proposal.txs);
    if (proposal) this.o.logger.debug({ height, view, txs: proposal.txs.length, lockWaitMs: ms(lockedAt - startedAt), buildMs: ms(builtAt - lockedAt), keepMs: ms(performance.now() - builtAt) }, 'proposal built');
    const block = proposal ? { hash: proposal.block.hash, payload: encodePayload({ header: proposal.block.header, txHashes: proposal.block.txHashes }) } : null;
    // A transaction stays in the pool until its block commits, so pool.size also counts the
    // ones already in uncommitted blocks. Reporting those as pending made the core ask for the
    // next height at once, get null (nothing left to reap), be told "more pending" again and
    // ask again: a loop of microtasks only, which starved the node's sockets and timers for
    // good (the leader stopped answering RPC and peers; found by test/cluster-commit.test.ts).
    // After a null build nothing can be proposed now: a new transaction or a commit reports
    // pending work again (reportPending).
    const morePending = proposal !== null && this.hasUnproposedTxs();
    this.pendingReported = morePending;
    // Transactions too fresh to propose yet: pending work again once they have settled (no
    // new admission may come to say so).
    if (!morePending && addedBy !== undefined && this.lastAddedAt > addedBy) setTimeout(() => this.reportPending(), GOSSIP_SETTLE_MS).unref();
    this.enqueue({ type: 'proposalBuilt', view, height, parentHash, block, morePending });
  }

  /** Whether the pool holds a transaction that no uncommitted (speculative) block carries. */
  private hasUnproposedTxs(): boolean {
    const pool = this.o.pipeline.pool;
    if (pool.size === 0) return false;
    const inFlight = this.o.pipeline.inFlightTxs();
    if (pool.size > inFlight.size) return true;
    let inPool = 0;
    for (const h of inFlight) if (pool.has(h)) inPool++;
    return pool.size > inPool;
  }

  /** Gathers a proposal's transactions (pool, then gossip, then the proposer), executes it, compares headers. */
  private async validate(height: number, hash: string, parentHash: string, payload: Uint8Array, proposedBy?: number): Promise<void> {
    let ok = false;
    const abandonedBefore = this.abandonments.get(hash) ?? 0;
    try {
      const decoded = decodePayload(payload);
      if (typeof decoded === 'string') throw new Error(decoded);
      const { header, txHashes } = decoded;
      if (header.number !== height || header.parentHash !== parentHash || to0x(headerHash(header)) !== hash) throw new Error('payload header does not match the proposal');
      if (header.timestamp > Date.now() + 10_000) throw new Error('block time is more than 10 s ahead of this node');
      const startedAt = performance.now();
      const txs = await this.gatherTxs(height, hash, txHashes, header.proposer, proposedBy);
      const gatheredAt = performance.now();
      let lockedAt = 0;
      const result = await this.withMachine(async () => {
        lockedAt = performance.now();
        // A block the core gave up while this validation waited must leave no speculative state.
        if ((this.abandonments.get(hash) ?? 0) !== abandonedBefore) return { ok: false as const, reason: 'abandoned while waiting' };
        // Sync committed this height meanwhile: the core learns it from syncedCommit, and a
        // refusal here would only blame an honest leader.
        if (height <= this.o.pipeline.head.header.number) return null;
        // Under the machine lock, so that no commit lands between this check and the execution.
        const replayed = await this.o.pipeline.committedReplay(txHashes);
        if (replayed) return { ok: false as const, reason: replayed };
        return this.o.pipeline.validate(headerFields(header), txs);
      });
      if (result === null) return;
      if (!result.ok) throw new Error(result.reason);
      const executedAt = performance.now();
      await this.keepBlockTxs(height, hash, result.proposal.txs);
      ok = true;
      this.o.logger.debug(
        { height, txs: txHashes.length, gatherMs: ms(gatheredAt - startedAt), lockWaitMs: ms(lockedAt - gatheredAt), executeMs: ms(executedAt - lockedAt), keepMs: ms(performance.now() - executedAt) },
        'proposal validated',
      );
    } catch (err) {
      this.o.logger.warn({ height, hash, err: String(err) }, 'proposal refused');
    }
    this.enqueue({ type: 'validated', height, hash, ok });
  }

  private async keepBlockTxs(height: number, hash: string, txs: Uint8Array[]): Promise<void> {
    const key = `${BLOCK_TXS_PREFIX}${height}/${hash}`;
    if (this.recordHeights.has(key)) return;
    await this.o.store.putConsensusRecords([{ key, bytes: encodeTxBatch(txs) }]);
    this.recordHeights.set(key, height);
  }

  private async keptBlockTxs(height: number, hash: string): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const bytes = await this.o.store.consensusRecord(`${BLOCK_TXS_PREFIX}${height}/${hash}`);
    for (const tx of (bytes && decodeTxBatch(bytes)) ?? []) out.set(txHash(tx), tx);
    return out;
  }

  private async gatherTxs(height: number, blockHash: string, hashes: string[], proposer: number, proposedBy?: number): Promise<BlockTx[]> {
    const pool = this.o.pipeline.pool;
    const lookup = () => hashes.map((h) => pool.get(h));
    let found = lookup();
    const fetched = found.some((e) => !e) ? await this.keptBlockTxs(height, blockHash) : new Map<string, Uint8Array>();
    const absent = hashes.filter((h, i) => !found[i] && !fetched.has(h));
    if (absent.length > 0) {
      // Gossip may have brought them already, with their admission (a signature check in a
      // worker) still under way: waiting for it is cheaper than fetching them again.
      const admitting = absent.map((h) => this.o.admission?.(h)).filter((p) => p !== undefined);
      const grace = admitting.length === absent.length ? 0 : GOSSIP_GRACE_MS;
      await Promise.race([Promise.allSettled(admitting).then(() => sleep(grace)), sleep(ADMISSION_WAIT_MS)]);
      found = lookup();
    }
    const missing = hashes.filter((h, i) => !found[i] && !fetched.has(h));
    if (missing.length > 0) for (const [h, b] of await this.fetchMissingTxs(missing, proposer)) fetched.set(h, b);
    const txs = hashes.map((h, i): BlockTx => {
      const e = found[i];
      if (e) return { hash: h, bytes: e.bytes, checked: e.checked };
      const b = fetched.get(h);
      if (!b) throw new Error(`transaction ${h} is unavailable`);
      if (txHash(b) !== h) throw new Error(`a peer sent other bytes for transaction ${h}`);
      return { hash: h, bytes: b };
    });
    // Bytes from a peer, and pooled ones admitted on vouchers alone, are checked before
    // execution (or by the machine at execution).
    if (txs.some((t) => t.checked === undefined)) await this.o.checkBlockTxs?.(txs, proposedBy);
    return txs;
  }

  /**
   * Transactions this node lacks, from the proposer first, then from every other connected
   * validator at once, a few rounds apart. Asking the header's proposer alone is not enough: a
   * block re-proposed after a view change names the leader that first proposed it, which may
   * be dead, and a restarted node has lost its pool. Refusing the block then is for good (the
   * core never votes for a block it was told is invalid), and a 4-node cluster with one node
   * down stalled (test/cluster-quorum-loss.test.ts). Any validator that validated it holds them.
   */
  private async fetchMissingTxs(missing: string[], proposer: number): Promise<Map<string, Uint8Array>> {
    const { transport, logger } = this.o;
    const fetched = new Map<string, Uint8Array>();
    const ask = async (peer: number, wanted: string[]): Promise<void> => {
      try {
        const bytes = await fetchTxs(transport, peer, wanted, TX_FETCH_TIMEOUT_MS);
        bytes.forEach((b, i) => {
          if (!b) return;
          if (txHash(b) !== wanted[i]) return transport.penalize(peer, 'wrong-tx-bytes');
          fetched.set(wanted[i]!, b);
        });
      } catch (err) {
        logger.debug({ peer, err: String(err) }, 'transaction fetch failed');
      }
    };
    const stillMissing = () => missing.filter((h) => !fetched.has(h));
    for (let round = 0; round < TX_FETCH_ROUNDS && stillMissing().length > 0; round++) {
      if (round > 0) await sleep(TX_FETCH_RETRY_MS);
      const connected = transport.peers().filter((p) => p.connected).map((p) => p.validatorIndex);
      if (round === 0 && proposer !== this.index && connected.includes(proposer)) await ask(proposer, stillMissing());
      const wanted = stillMissing();
      if (wanted.length === 0) break;
      await Promise.all(connected.filter((i) => i !== this.index && (round > 0 || i !== proposer)).map((peer) => ask(peer, wanted)));
      const got = wanted.length - stillMissing().length;
      if (got > 0) logger.info({ proposer, round, fetched: got, missing: stillMissing().length }, 'fetched a proposal\'s transactions from validators other than its proposer');
    }
    return fetched;
  }

  /** Fetches certified blocks until `target`, checking each certificate and header before applying it. */
  private async sync(target: number): Promise<void> {
    this.highestKnown = Math.max(this.highestKnown, target);
    if (this.syncing) return;
    this.syncing = true;
    const { pipeline, transport, logger } = this.o;
    const startedAt = pipeline.head.header.number;
    logger.info({ height: startedAt, target: this.highestKnown }, 'sync started');
    try {
      // A source that failed this attempt is not asked again in it: the fastest to answer is not
      // always honest, and a peer that claims a height it cannot serve would be first every time.
      const failed = new Set<string>();
      for (;;) {
        const sources = this.syncSources().filter((s) => !failed.has(s.name));
        if (!this.running || pipeline.head.header.number >= this.highestKnown || sources.length === 0) break;
        // Every source is asked for its height at once, and blocks come from the first one
        // ahead: asking one at a time waited out a dead peer's timeout (5 s behind a network
        // partition) while live ones could have served, and a replica that syncs cannot vote.
        const ahead = await firstAhead(sources, pipeline.head.header.number);
        if (!ahead) break;
        const { source, height: peerHeight } = ahead;
        try {
          this.highestKnown = Math.max(this.highestKnown, peerHeight);
          const blocks = await source.blocks(pipeline.head.header.number + 1);
          if (blocks.length === 0) {
            failed.add(source.name);
            continue;
          }
          for (const b of blocks) {
            // Consensus may have committed some of these while they were on their way.
            if (b.block.header.number <= pipeline.head.header.number) continue;
            const entries = await this.syncedTxs(b.txs);
            const applied = await this.withMachine(() => this.applySynced(b.block.header, b.block.txHashes, entries, b.certificate));
            if (!applied.ok) {
              source.penalize?.('bad-sync-block');
              throw new Error(applied.reason);
            }
            this.counters.syncedBlocks++;
            this.enqueue({ type: 'syncedCommit', height: b.block.header.number, hash: b.block.hash, parentHash: b.block.header.parentHash, certificate: b.certificate });
          }
          await this.afterCommits();
        } catch (err) {
          failed.add(source.name);
          logger.warn({ source: source.name, err: String(err) }, 'sync from peer failed');
        }
      }
    } finally {
      this.syncing = false;
      logger.info({ height: pipeline.head.header.number, advanced: pipeline.head.header.number - startedAt, highestKnown: this.highestKnown }, 'sync stopped');
      // The core asks for a target once; told that this attempt ended, it may ask again.
      this.enqueue({ type: 'syncDone' });
    }
  }

  /**
   * Where certified blocks come from: the connected validators (whoever is one now: sets change
   * while a node syncs), else the nodes' JSON-RPC (`follow`): a node that is not a validator,
   * or no longer one, is refused on the validators' p2p network and follows by RPC. Every block
   * is checked the same way whatever its source.
   */
  private syncSources(): BlockSource[] {
    const { transport } = this.o;
    const peers = transport.peers().filter((p) => p.connected && p.validatorIndex !== this.index);
    if (peers.length === 0) return this.o.follow ? [this.o.follow] : [];
    return peers.map(({ validatorIndex: peer }) => ({
      name: `validator ${peer}`,
      height: () => fetchPeerHeight(transport, peer, SYNC_TIMEOUT_MS),
      blocks: (from: number) => fetchBlocks(transport, peer, from, SYNC_TIMEOUT_MS),
      penalize: (reason: string) => transport.penalize(peer, reason),
    }));
  }

  /**
   * Polls `follow` for the chain's height. A node without validator peers (an observer, a removed
   * validator) syncs whenever it is behind. A validator syncs when it is more than a window
   * behind: consensus messages only tell a replica about heights near its own, and one that fell
   * behind (a validator just promoted from observer, still catching up) otherwise waits for them
   * while its progress timer runs out and it leaves alone for a view no one else wants.
   */
  private async followTick(): Promise<void> {
    const follow = this.o.follow;
    if (!follow || this.syncing || !this.running) return;
    const hasValidatorPeers = this.index !== -1 && this.o.transport.peers().some((p) => p.connected);
    try {
      const height = await follow.height();
      const lag = height - this.o.pipeline.head.header.number;
      if (lag > (hasValidatorPeers ? this.o.params.window : 0)) await this.sync(height);
    } catch (err) {
      this.o.logger.debug({ source: follow.name, err: String(err) }, 'follow: no answer');
    }
  }

  /**
   * A synced block's transactions, hashed from their bytes (the header's txRoot then proves they
   * are the block's), with the pool's admission results where this node has them and the rest
   * checked off the main thread.
   */
  private async syncedTxs(txs: Uint8Array[]): Promise<BlockTx[]> {
    const pool = this.o.pipeline.pool;
    const entries = txs.map((bytes): BlockTx => {
      const hash = txHash(bytes);
      const pooled = pool.get(hash);
      return pooled ? { hash, bytes, checked: pooled.checked } : { hash, bytes };
    });
    await this.o.checkBlockTxs?.(entries);
    return entries;
  }

  private async applySynced(header: Header, txHashes: string[], entries: BlockTx[], certificate: CommitCertificate): Promise<{ ok: true } | { ok: false; reason: string }> {
    const { pipeline } = this.o;
    const h = headerFields(header);
    const hash = to0x(headerHash(h));
    if (h.number !== pipeline.head.header.number + 1) return { ok: false, reason: `block ${h.number} does not follow ${pipeline.head.header.number}` };
    // The set that signs h is final once h − 1 is committed (validator-schedule.ts).
    const cert = verifyCertificate(certificate, hash, this.schedule.require(h.number));
    if (!cert.ok) return { ok: false, reason: `certificate of block ${h.number}: ${cert.reason}` };
    if (entries.length !== txHashes.length) return { ok: false, reason: 'transactions and hashes differ in number' };
    const replayed = await pipeline.committedReplay(entries.map((e) => e.hash));
    if (replayed) return { ok: false, reason: `block ${h.number}: ${replayed}` };
    const result = pipeline.validate(h, entries, certificate.view);
    if (!result.ok) return { ok: false, reason: `block ${h.number}: ${result.reason}` };
    await pipeline.commit(result.proposal, certificate);
    return { ok: true };
  }
}
