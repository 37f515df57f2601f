// A running node: the chain store on RocksDB, the state machine, the pool, the consensus
// engine and the JSON-RPC server, wired together. `goodness node --dir` runs one.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BlockPipeline } from '../consensus/block-pipeline.ts';
import type { Genesis } from '../consensus/chain/types.ts';
import { maxFaulty } from '../consensus/chain/certificate.ts';
import { TxPool, type PoolEntry } from '../consensus/pool.ts';
import { PbftEngine } from '../consensus/pbft-engine.ts';
import { createP2PNode, type P2PNode } from '../p2p/node.ts';
import { TxGossip, encodeTxBatch } from '../p2p/tx-gossip.ts';
import type { PrivateKey } from '@libp2p/interface';
import { blsPublicKeyOf } from '../consensus/crypto/bls.ts';
import { sha256, to0x } from '../consensus/crypto/encoding.ts';
import { InlineVerifier, WorkerVerifier, type SignatureJob, type SignatureVerifier, type VerifyPriority } from '../consensus/crypto/verifier.ts';
import type { NodeApi, SubmitResult } from '../rpc/node-api.ts';
import { startRpcServer } from '../rpc/server.ts';
import { Code } from '../state/codes.ts';
import { GoodnessLedger } from '../state/goodness/ledger.ts';
import { KvMachine } from '../state/kv-machine.ts';
import type { BlockTx, StateMachine } from '../state/machine.ts';
import { ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { ADMIN_SOCKET, startAdminServer, type AdminServer } from './admin.ts';
import { loadNodeConfig, PID_FILE } from './config.ts';
import { registerNodeMetrics } from './node-metrics.ts';
import { RpcFollowSource } from './rpc-follow.ts';
import { designatedVerifiers, EarlyVouches, enoughVouchers, gossipedTxAction, vouchingOn, type VouchView } from './vouching.ts';

export const VERSION = '0.1.0';

/** An admission under way: its outcome, and its signature once it waits for a worker. */
interface Admission {
  done: Promise<SubmitResult>;
  signature?: SignatureJob;
}
const REGOSSIP_AFTER_MS = 2_000;
/** a transaction's n-th re-send waits REGOSSIP_AFTER_MS · 2^min(n, 4): 2, 4, 8, 16, 32 s */
const REGOSSIP_MAX_DOUBLINGS = 4;
const REGOSSIP_MAX_PER_ROUND = 2_000;
const REGOSSIP_BATCH = 500;
/** how often unverified (vouched) pool entries are looked at, to verify them when there is time */
const VOUCHED_TICK_MS = 100;
/** how long a leader waits for a pending transaction's vouchers before it verifies it itself, and a node for a vouch of its client's transaction before it proposes it anyway */
const VOUCHERS_WAIT_MS = 2_000;
/**
 * how long any node leaves an unverified transaction to its vouchers before it verifies it with
 * idle workers: at once would spend on every transaction the checks vouching saves. Idle workers
 * are not spare CPU on a shared host (they run below the main thread), and under load vouchers
 * come seconds late: at 1 s, 4 validators on 2 cores at the maximum rate made 0.11-0.39 such checks
 * per transaction, at 4 s 0.00-0.02 (2.04-2.06 checks per transaction in all, against 2.17-2.26).
 */
const IDLE_VERIFY_AFTER_MS = 4_000;
/** the verifier backlog under which a non-leader verifies vouched entries anyway (idle workers) */
const VOUCHED_IDLE_BACKLOG = 64;
const VOUCHED_PER_TICK = 512;
const POOL_FULL_LOG = 'the transaction pool is full: back off and retry';
/** Why a node asks for a signature check (goodness_signature_check_requests_total). */
const CHECK_REASONS = ['client', 'designated', 'peer', 'block-unvouched', 'block-fetched', 'vouchers-late', 'idle'] as const;
type CheckReason = (typeof CHECK_REASONS)[number];
/** A transaction larger than this is refused at admission (a block must hold many). */
export const MAX_TX_BYTES = 64 * 1024;

export interface NodeOptions {
  name: string;
  genesis: Genesis & { stateMachine?: 'goodness' | 'kv' };
  peerId: string;
  blsSecretKey: Uint8Array;
  dataDir: string;
  rpc: { host: string; port: number; maxBodyBytes?: number; maxBatch?: number };
  pool: { maxTxs: number; maxBytes: number; maxPerSender: number };
  p2p: { privateKey: PrivateKey; listen: string; announce: string; peers: { index: number; peerId: string; multiaddr: string; rpc?: string }[] };
  logger?: Logger;
  /** worker threads verifying admission signatures: default one per core; 0 verifies on the main thread */
  verifierThreads?: number;
  /** where the admin socket (backups of the running node) listens; none when absent */
  adminSocket?: string;
}

export function createMachine(kind: 'goodness' | 'kv' | undefined): StateMachine {
  return kind === 'kv' ? new KvMachine() : new GoodnessLedger();
}

export class GoodnessNode {
  /** the node's own lines ({component: 'node'}); p2p, consensus and admin log through children of the root */
  readonly log: Logger;
  private readonly rootLog: Logger;
  readonly registry = new Registry();
  private store!: ChainStore;
  private pipeline!: BlockPipeline;
  private engine!: PbftEngine;
  private p2p!: P2PNode;
  private gossip!: TxGossip;
  private rpcServer: { url: string; port: number; close(): Promise<void> } | null = null;
  readonly machine: StateMachine;
  readonly pool: TxPool;
  private readonly verifier: SignatureVerifier;
  private stopped = false;
  /** other nodes' JSON-RPC, for following the chain while no validator admits this node */
  private readonly follow: RpcFollowSource | null;
  private admin: AdminServer | null = null;
  private readonly admissions: Counter<'result'>;
  /** transactions known valid here on f + 1 validators' word, without a signature check (vouching.ts) */
  private readonly vouched: Counter;
  /** goodness_signature_check_requests_total, one child per reason (labels looked up once) */
  private readonly checkRequests: Record<CheckReason, Counter.Internal>;

  constructor(readonly o: NodeOptions) {
    // Every line carries a component: a child of a child with the same key would print it twice.
    this.rootLog = o.logger ?? pino({ name: o.name });
    this.log = this.rootLog.child({ component: 'node' });
    this.machine = createMachine(o.genesis.stateMachine);
    this.pool = new TxPool(o.pool);
    const followUrls = o.p2p.peers.flatMap((p) => (p.rpc ? [p.rpc] : []));
    this.follow = followUrls.length > 0 ? new RpcFollowSource(followUrls) : null;
    this.verifier = o.verifierThreads === 0 ? new InlineVerifier() : new WorkerVerifier(o.verifierThreads);
    this.vouched = new Counter({ name: 'goodness_tx_vouched_total', help: 'transactions this node took as valid on f + 1 validators\' vouchers, without checking their signatures', registers: [this.registry] });
    this.admissions = new Counter({ name: 'goodness_tx_admissions_total', help: 'transactions offered to this node, by outcome', labelNames: ['result'], registers: [this.registry] });
    const requests = new Counter({
      name: 'goodness_signature_check_requests_total',
      help: `signature checks this node asked its verifier for, by reason: client (a client's transaction), designated (a peer's that this node vouches for), peer (a peer's, without vouching), block-unvouched (a proposal's pooled transaction short of vouchers), block-fetched (a proposal's transaction this node did not have), vouchers-late (a leader's, its vouchers ${VOUCHERS_WAIT_MS / 1000} s late), idle (unvouched for ${IDLE_VERIFY_AFTER_MS / 1000} s, workers idle)`,
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.checkRequests = Object.fromEntries(CHECK_REASONS.map((r) => [r, requests.labels(r)])) as Record<CheckReason, Counter.Internal>;
  }

  get rpcUrl(): string {
    return this.rpcServer!.url;
  }

  async start(): Promise<void> {
    mkdirSync(this.o.dataDir, { recursive: true });
    this.store = await ChainStore.open(await RocksKvStore.open(this.o.dataDir));
    this.pipeline = new BlockPipeline(this.o.genesis, this.store, this.machine, this.pool);
    await this.pipeline.open();
    this.log.info({ height: this.store.latestHeight(), appHash: this.pipeline.head.header.appHash, machine: this.machine.name }, 'chain loaded');
    this.p2p = await createP2PNode({
      privateKey: this.o.p2p.privateKey,
      listen: [this.o.p2p.listen],
      announce: [this.o.p2p.announce],
      validators: this.o.genesis.validators.map((v) => this.validatorPeer(v)),
      protocolPrefix: `/goodness/${this.o.genesis.chain}`,
      // Sync answers carry whole blocks (up to 4 MiB of transactions, base64 in JSON).
      maxFrameBytes: 16 * 1024 * 1024,
      logger: this.rootLog.child({ component: 'p2p' }),
    });
    this.gossip = new TxGossip(this.p2p, { onTx: (tx, from) => void this.admit(tx, 'peer', from), onVouch: (hash, from) => this.onVouch(to0x(hash), from) });
    this.engine = new PbftEngine({
      pipeline: this.pipeline,
      store: this.store,
      transport: this.p2p,
      blsSecretKey: this.o.blsSecretKey,
      blsPublicKey: to0x(blsPublicKeyOf(this.o.blsSecretKey)),
      params: this.o.genesis.consensus,
      logger: this.rootLog.child({ component: 'consensus' }),
      onFatal: (reason) => {
        this.log.fatal({ reason }, 'consensus stopped; the node exits so that it cannot fork from a half-known state');
        void this.stop().finally(() => process.exit(1));
      },
      // Governance changed the validators: p2p accepts (and dials, where this node knows an
      // address) exactly the ones that sign a height from the next on.
      onValidatorsChanged: (validators) => this.p2p.setValidators(validators.map((v) => this.validatorPeer(v))),
      follow: this.follow ?? undefined,
      admission: (hash) => this.expediteAdmission(hash),
      checkBlockTxs: (txs, proposedBy) => this.checkBlockTxs(txs, proposedBy),
    });
    await this.p2p.start();
    this.regossipTimer = setInterval(() => void this.regossipStale().catch((err: unknown) => this.log.warn({ err }, 're-gossip failed')), REGOSSIP_AFTER_MS / 2);
    this.regossipTimer.unref();
    this.pool.onCommitted((waited) => {
      let sum = 0;
      for (const w of waited) sum += w;
      this.recentPoolWaitMs = 0.8 * this.recentPoolWaitMs + 0.2 * (sum / waited.length);
    });
    this.vouchedTimer = setInterval(() => this.verifyVouched(), VOUCHED_TICK_MS);
    this.vouchedTimer.unref();
    this.registerMetrics();
    this.rpcServer = await startRpcServer({
      api: this.api(),
      host: this.o.rpc.host,
      port: this.o.rpc.port,
      maxBodyBytes: this.o.rpc.maxBodyBytes,
      maxBatch: this.o.rpc.maxBatch,
      registry: this.registry,
      onInternalError: (err: unknown, method: string) => this.log.error({ err, method }, 'rpc handler failed'),
    });
    await this.engine.start();
    if (this.o.adminSocket) {
      this.admin = await startAdminServer({ path: this.o.adminSocket, kv: this.store.kv, node: this.o.name, machine: this.o.genesis.stateMachine ?? 'goodness', log: this.rootLog.child({ component: 'admin' }) });
    }
    this.log.info({ rpc: this.rpcServer.url, validatorIndex: this.engine.validatorIndex() }, this.engine.validatorIndex() === -1 ? 'node started as an observer: it follows the chain until governance adds it as a validator' : 'node started');
  }

  /** A validator as p2p dials it: the address from config.json's peers, when this node has one for that peer. */
  private validatorPeer(v: { index: number; peerId: string }): { index: number; peerId: string; multiaddr?: string } {
    return { index: v.index, peerId: v.peerId, multiaddr: this.o.p2p.peers.find((p) => p.peerId === v.peerId)?.multiaddr };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // First: a backup in progress is aborted before the store it reads closes.
    await this.admin?.close();
    await this.rpcServer?.close();
    await this.engine?.stop();
    await this.follow?.close();
    clearInterval(this.regossipTimer);
    clearInterval(this.vouchedTimer);
    this.gossip?.stop();
    await this.p2p?.stop();
    await this.store?.close();
    await this.verifier.close();
    this.log.info('node stopped');
  }

  /**
   * Gossip is best effort (a peer's queue may drop batches, a connection may be down), and a
   * transaction only one validator holds is proposed only when that validator leads. So a
   * transaction still pending after REGOSSIP_AFTER_MS, and in no uncommitted block, is sent
   * again: to the current leader, the one that must propose it (to everyone when the leader is
   * unknown or unreachable; nothing when this node leads), each time after twice the wait, at
   * most REGOSSIP_MAX_PER_ROUND a round. Under a backlog every pending transaction is old
   * without being lost; broadcasting them all each round was a storm of copies that cut a
   * 4-validator cluster's throughput at max rate by a third. Sending them to the leader alone
   * still gave it 2,500 duplicates a second at max rate (2.4 for each transaction it committed),
   * so "stale" also means older than twice what committed transactions recently waited here.
   */
  private async regossipStale(): Promise<void> {
    const now = Date.now();
    const staleAfter = Math.max(REGOSSIP_AFTER_MS, 2 * this.recentPoolWaitMs);
    const forward = this.forwarding();
    const leader = this.engine.status().leader;
    const me = this.engine.validatorIndex();
    if (!forward && leader === me) return;
    const inFlight = this.pipeline.inFlightTxs();
    const stale = this.pool
      .olderThan(now - staleAfter, REGOSSIP_MAX_PER_ROUND * 4)
      // An unverified entry is never sent on: the copy would vouch for what this node did not check.
      .filter((e) => !e.unverified && !inFlight.has(e.hash) && (this.regossip.get(e.hash)?.next ?? 0) <= now)
      .slice(0, REGOSSIP_MAX_PER_ROUND);
    // A transaction admitted while its block was being committed elsewhere can outlive it here:
    // such stale entries are dropped rather than gossiped again.
    const committed = stale.length > 0 ? await this.store.committedAmong(stale.map((e) => e.hash)) : new Set<string>();
    if (committed.size > 0) this.pool.removeCommitted([...committed]);
    const toLeader = !forward && leader >= 0 && this.p2p.isConnected(leader);
    const batch: Uint8Array[] = [];
    const sendBatch = () => {
      if (batch.length > 0) this.p2p.send(leader, 'txs', encodeTxBatch(batch.splice(0)));
    };
    for (const e of stale) {
      if (committed.has(e.hash)) continue;
      if (forward) forward.forward(e.bytes);
      else if (toLeader) {
        batch.push(e.bytes);
        if (batch.length >= REGOSSIP_BATCH) sendBatch();
      } else this.gossip.add(e.bytes);
      const times = (this.regossip.get(e.hash)?.times ?? 0) + 1;
      this.regossip.set(e.hash, { times, next: now + REGOSSIP_AFTER_MS * 2 ** Math.min(times, REGOSSIP_MAX_DOUBLINGS) });
    }
    sendBatch();
    for (const h of this.regossip.keys()) if (!this.pool.has(h)) this.regossip.delete(h);
  }

  private regossipTimer?: NodeJS.Timeout;
  /** how long committed transactions waited in the pool, lately (ms; a moving average over blocks) */
  private recentPoolWaitMs = 0;
  /** per pending transaction: how often it was sent again, and when it may be next */
  private readonly regossip = new Map<string, { times: number; next: number }>();

  /** A client's transaction: admitted here, then gossiped to the other validators. */
  async submitTx(bytes: Uint8Array): Promise<SubmitResult> {
    const result = await this.admit(bytes, 'client');
    if (result.ok) {
      const forward = this.forwarding();
      if (forward) forward.forward(bytes);
      else this.gossip.add(bytes);
    }
    return result;
  }

  /**
   * Where a client's transaction goes when no validator is connected (an observer, a removed
   * validator): to the other nodes' JSON-RPC, since gossip would reach no one. Null while p2p
   * reaches a validator.
   */
  private forwarding(): RpcFollowSource | null {
    if (!this.follow || this.p2p.anyConnected()) return null;
    return this.follow;
  }

  /** Admission of a client's or a peer's transaction (a gossiped one is not gossiped again); `peer`: the validator that sent it. */
  private async admit(bytes: Uint8Array, from: 'client' | 'peer' = 'peer', peer?: number): Promise<SubmitResult> {
    const result = await this.check(bytes, from, peer);
    this.admissions.inc({ result: result.ok ? 'admitted' : result.error });
    // An honest validator sends on only what it verified or had vouchers for (vouching.ts).
    if (peer !== undefined && !result.ok && result.error === 'refused' && result.code === Code.BAD_SIGNATURE) this.p2p.penalize(peer, 'bad_signature');
    return result;
  }

  /**
   * Admissions under way, by transaction hash: a second copy (a client's and a peer's at once)
   * is a duplicate without a second signature check, and the engine waits for one before it
   * fetches a proposal's transaction from a peer (PbftEngineOptions.admission).
   */
  private readonly admitting = new Map<string, Admission>();

  private async check(bytes: Uint8Array, from: VerifyPriority, peer?: number): Promise<SubmitResult> {
    if (bytes.length > MAX_TX_BYTES) return { ok: false, error: 'refused', code: Code.MALFORMED, log: `transaction of ${bytes.length} bytes is over the limit of ${MAX_TX_BYTES}` };
    const hash = to0x(sha256(bytes));
    // Before the pool-full check: a full pool of unverified transactions needs these copies (their vouchers) most.
    if (this.pool.has(hash) || this.admitting.has(hash)) {
      if (peer !== undefined) this.addVoucher(hash, peer);
      return { ok: false, error: 'duplicate', log: `transaction ${hash} is already pending` };
    }
    if (this.noRoomFor(bytes.length, from)) return { ok: false, error: 'pool-full', log: POOL_FULL_LOG };
    const waiting: Pick<Admission, 'signature'> = {};
    const admission: Admission = Object.assign(waiting, { done: this.checkNew(bytes, hash, from, waiting, peer) });
    this.admitting.set(hash, admission);
    try {
      return await admission.done;
    } finally {
      this.admitting.delete(hash);
    }
  }

  /**
   * A proposal needs this transaction and its admission is under way: its signature check moves
   * ahead of the other admissions (it is done once), and the engine waits for the admission.
   */
  private expediteAdmission(hash: string): Promise<SubmitResult> | undefined {
    const admission = this.admitting.get(hash);
    if (admission?.signature) void this.verifier.verify(admission.signature, 'block');
    return admission?.done;
  }

  /** NodeApi.clientPoolFull: the pool-full refusal of check(), for a client, before decoding and hashing. */
  clientPoolFull(size: number): string | null {
    if (!this.noRoomFor(size, 'client')) return null;
    this.admissions.inc({ result: 'pool-full' });
    return POOL_FULL_LOG;
  }

  /** Whether the pool refuses a transaction of `size` bytes from `from` for want of room (-32002). */
  private noRoomFor(size: number, from: VerifyPriority): boolean {
    return this.pool.isFull(size) || (from === 'client' && this.clientsShareFull());
  }

  /**
   * Clients' transactions may fill a pool only up to its limit divided by the number of
   * validators: every pool holds every node's transactions, and a pool full of its own clients'
   * refused what gossip brought from the others. Those then lived at their first node only, were
   * proposed only when it led or when re-gossip reached the leader (seconds later), and the
   * backlog drained at a third of the speed.
   */
  private clientsShareFull(): boolean {
    const validators = Math.max(1, this.engine.validatorsAt(this.store.latestHeight() + 1).length);
    const { maxTxs, maxBytes } = this.pool.limits;
    return this.pool.size >= maxTxs / validators || this.pool.bytes >= maxBytes / validators;
  }

  /** `waiting.signature` is set while the signature waits for a worker (expediteAdmission). */
  private async checkNew(bytes: Uint8Array, hash: string, from: VerifyPriority, waiting: Pick<Admission, 'signature'>, peer?: number): Promise<SubmitResult> {
    // A client is told -32003 for a transaction already committed. A peer's copy skips that
    // store lookup: it was checked where it entered, and the store has the last word anyway
    // when a block is built (committedAmong) or validated (committedReplay), so a committed
    // one that a faulty peer sends again costs pool room until then, never a second execution.
    if (from === 'client' && (await this.store.hasTx(hash))) return { ok: false, error: 'duplicate', log: `transaction ${hash} is already committed` };
    const check = this.machine.checkTx(bytes, { height: this.store.latestHeight() + 1, hash });
    if (!check.ok) {
      if (check.code === Code.NONCE_USED) return { ok: false, error: 'duplicate', log: check.log };
      return { ok: false, error: 'refused', code: check.code, log: check.log };
    }
    // A peer's transaction is verified here only if this node is one of its designated
    // verifiers; otherwise it waits for other validators' vouchers (vouching.ts).
    const action = check.signature !== undefined && peer !== undefined ? gossipedTxAction(this.vouchView().view, hash, peer) : 'verify';
    const deferred = action === 'defer';
    if (check.signature && !deferred) {
      if (!this.verifier.canAcceptWork(from)) return { ok: false, error: 'pool-full', log: 'signature verification is saturated: back off and retry' };
      waiting.signature = check.signature;
      this.checkRequests[from === 'client' ? 'client' : action === 'verify-and-vouch' ? 'designated' : 'peer'].inc();
      if (!(await this.verifier.verify(check.signature, from))) return { ok: false, error: 'refused', code: Code.BAD_SIGNATURE, log: 'signature does not verify under tx.from' };
    }
    const unverified = deferred ? { checked: check.checked, signature: check.signature!, vouchers: [peer!] } : undefined;
    const holdUntil = from === 'client' && check.signature !== undefined ? this.clientTxHold(hash) : undefined;
    const added = this.pool.add({ hash, bytes, sender: check.sender, nonce: check.nonce, expires: check.expires, checked: deferred ? undefined : check.checked, unverified, holdUntil });
    if (added === 'ok') {
      if (action === 'verify-and-vouch') this.gossip.vouch(Buffer.from(hash.slice(2), 'hex'));
      // Taken in every case, so that vouches for what this node verified itself do not linger.
      for (const v of this.earlyVouches.take(hash)) this.addVoucher(hash, v);
      return { ok: true, hash };
    }
    if (added === 'duplicate') return { ok: false, error: 'duplicate', log: `(from, nonce) of ${hash} is already pending` };
    return { ok: false, error: 'pool-full', log: added === 'sender-cap' ? 'this sender has too many pending transactions: back off and retry' : POOL_FULL_LOG };
  }

  /**
   * Until when this node keeps a client's transaction out of its own proposals (undefined: it
   * does not). This node is the transaction's one voucher so far, and as its proposer it would
   * count once more but as the same validator: proposed at once, it would have to be verified by
   * every replica but its designated verifiers. So it waits for their vouch (addVoucher releases
   * it), or VOUCHERS_WAIT_MS if none comes (one faulty); not at all when one is not connected.
   */
  private clientTxHold(hash: string): number | undefined {
    const { view } = this.vouchView();
    if (!vouchingOn(view)) return undefined;
    for (const v of designatedVerifiers(hash, view.me, view.validators)) if (!this.p2p.isConnected(v)) return undefined;
    return Date.now() + VOUCHERS_WAIT_MS;
  }

  /**
   * A block's transactions that did not come through this node's admission (fetched from a
   * peer, or synced): their form is checked and their signatures verified in the worker threads
   * here, so that executing them does not verify one by one on the main thread. What admission
   * would refuse is left unchecked: the machine then decides it at execution, as before.
   */
  private async checkBlockTxs(txs: BlockTx[], proposedBy?: number): Promise<void> {
    const height = this.store.latestHeight() + 1;
    const verifying: Promise<void>[] = [];
    const validators = this.engine.validatorsAt(height).map((v) => v.index);
    for (const tx of txs) {
      if (tx.checked !== undefined) continue;
      const pooled = this.pool.get(tx.hash);
      const unverified = pooled?.unverified;
      if (pooled && unverified) {
        if (enoughVouchers([...unverified.vouchers, proposedBy], validators)) {
          tx.checked = unverified.checked;
          this.pool.markVerified(tx.hash);
          this.vouched.inc();
        } else verifying.push(this.verifyPooled(pooled, 'block', 'block-unvouched').then((ok) => void (ok && (tx.checked = unverified.checked))));
        continue;
      }
      const check = this.machine.checkTx(tx.bytes, { height, hash: tx.hash });
      if (!check.ok) continue;
      if (!check.signature) tx.checked = check.checked;
      else {
        this.checkRequests['block-fetched'].inc();
        verifying.push(this.verifier.verify(check.signature, 'block').then((ok) => void (ok && (tx.checked = check.checked))));
      }
    }
    await Promise.all(verifying);
  }

  private vouchViewCache: { at: number; view: VouchView; leader: number } | null = null;

  /** Who validates and who leads, refreshed at most every 50 ms (the set and the view change rarely). */
  private vouchView(): { view: VouchView; leader: number } {
    const now = Date.now();
    if (this.vouchViewCache && now - this.vouchViewCache.at < 50) return this.vouchViewCache;
    const view: VouchView = { me: this.engine.validatorIndex(), validators: this.engine.validatorsAt(this.store.latestHeight() + 1).map((v) => v.index) };
    this.vouchViewCache = { at: now, view, leader: this.engine.status().leader };
    return this.vouchViewCache;
  }

  private readonly earlyVouches = new EarlyVouches();

  /**
   * Another validator vouched for a transaction (it verified it): one more voucher for it here,
   * or, before it has arrived, one to count when it does. An admission under way needs none:
   * only those that verify wait (a deferred one is pooled at once).
   */
  private onVouch(hash: string, peer: number): void {
    if (this.pool.has(hash)) this.addVoucher(hash, peer);
    else if (!this.admitting.has(hash) && this.vouchView().view.validators.includes(peer)) this.earlyVouches.note(hash, peer);
  }

  /**
   * Another validator sent or vouched for a pending transaction: an unverified one with f + 1
   * vouchers needs no check; a held one (a client's, verified here) may now be proposed.
   */
  private addVoucher(hash: string, peer: number): void {
    const entry = this.pool.get(hash);
    if (entry?.holdUntil !== undefined) this.heldTxVouched(entry, peer);
    const unverified = entry?.unverified;
    if (!unverified || unverified.vouchers.includes(peer)) return;
    unverified.vouchers.push(peer);
    if (!enoughVouchers(unverified.vouchers, this.vouchView().view.validators)) return;
    this.pool.markVerified(hash);
    this.vouched.inc();
  }

  /** Who vouched so far for each held client transaction (weak: an entry that leaves the pool takes its list along). */
  private readonly heldTxVouchers = new WeakMap<PoolEntry, number[]>();

  /** A vouch for a held client transaction: once its f designated verifiers (or any f others) have vouched, it is proposable. */
  private heldTxVouched(entry: PoolEntry, peer: number): void {
    const { view } = this.vouchView();
    if (peer === view.me || !view.validators.includes(peer)) return;
    const vouchers = this.heldTxVouchers.get(entry) ?? [];
    if (!vouchers.includes(peer)) vouchers.push(peer);
    if (vouchers.length >= maxFaulty(view.validators.length)) this.pool.release(entry.hash);
    else this.heldTxVouchers.set(entry, vouchers);
  }

  private vouchedTimer?: NodeJS.Timeout;

  /**
   * Unverified entries: a leader verifies those whose vouchers did not come in time (a
   * designated verifier down or faulty must not keep them out of blocks for good), and any node
   * verifies those still unvouched after 4 s when it costs nothing (its workers idle), so
   * that a faulty validator's forgeries do not sit in the pool.
   */
  private verifyVouched(): void {
    if (this.pool.heldCount > 0) this.pool.releaseDue(Date.now());
    if (this.pool.unverifiedCount === 0) return;
    const { view, leader } = this.vouchView();
    if (view.me >= 0 && view.me === leader) {
      for (const entry of this.pool.unverified(this.pool.unverifiedCount, Date.now() - VOUCHERS_WAIT_MS)) void this.verifyPooled(entry, 'peer', 'vouchers-late');
    }
    if (this.verifier.backlog() > VOUCHED_IDLE_BACKLOG) return;
    for (const entry of this.pool.unverified(VOUCHED_PER_TICK, Date.now() - IDLE_VERIFY_AFTER_MS)) void this.verifyPooled(entry, 'peer', 'idle');
  }

  /**
   * Verifies a pooled unverified transaction: it becomes proposable, or it leaves the pool and
   * every validator that vouched for it is penalised (an honest one sends only what it verified).
   */
  private async verifyPooled(entry: PoolEntry, priority: VerifyPriority, reason: CheckReason): Promise<boolean> {
    const unverified = entry.unverified;
    if (!unverified) return true;
    if (!unverified.verifying) this.checkRequests[reason].inc();
    unverified.verifying = true;
    const ok = await this.verifier.verify(unverified.signature, priority);
    if (this.pool.get(entry.hash) !== entry || entry.unverified !== unverified) return ok;
    if (ok) this.pool.markVerified(entry.hash);
    else {
      this.pool.discard(entry.hash);
      this.admissions.inc({ result: 'vouched-bad-signature' });
      for (const v of unverified.vouchers) this.p2p.penalize(v, 'vouched_bad_signature');
      this.log.warn({ hash: entry.hash, vouchers: unverified.vouchers }, 'validators sent a transaction whose signature does not verify');
    }
    return ok;
  }

  private registerMetrics(): void {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'goodness_process_' });
    const height = new Gauge({ name: 'goodness_height', help: 'height of the latest committed block', registers: [r] });
    const pool = this.pool;
    // Sampled at scrape time so that the hot path pays nothing for it.
    new Gauge({ name: 'goodness_pool_transactions', help: 'transactions in the pool', registers: [r], collect() { this.set(pool.size); } });
    new Gauge({ name: 'goodness_pool_bytes', help: 'bytes of transactions in the pool', registers: [r], collect() { this.set(pool.bytes); } });
    new Gauge({ name: 'goodness_pool_unverified', help: 'pooled transactions still waiting for their vouchers or a signature check', registers: [r], collect() { this.set(pool.unverifiedCount); } });
    const verifier = this.verifier;
    let reported = 0;
    new Counter({
      name: 'goodness_signature_checks_total',
      help: 'transaction signatures this node verified (admission, designated, blocks, idle)',
      registers: [r],
      collect() {
        this.inc(verifier.completed - reported);
        reported = verifier.completed;
      },
    });
    const committed = new Counter({ name: 'goodness_transactions_committed_total', help: 'transactions committed, by receipt status', labelNames: ['status'], registers: [r] });
    const blockTxs = new Histogram({ name: 'goodness_block_transactions', help: 'transactions per committed block', buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000], registers: [r] });
    const commitInterval = new Histogram({ name: 'goodness_block_interval_seconds', help: 'time between consecutive commits', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [r] });
    height.set(this.store.latestHeight());
    // Consensus and p2p figures are read from their own counters at scrape time.
    const engine = () => this.engine;
    const p2p = () => this.p2p;
    new Gauge({ name: 'goodness_view', help: 'current PBFT view', registers: [r], collect() { if (engine().joined()) this.set(engine().status().view); } });
    new Gauge({
      name: 'goodness_consensus_dropped_messages',
      help: 'consensus messages dropped by the replica, by sending validator and reason',
      labelNames: ['peer', 'reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [key, n] of engine().counters.dropped) {
          const [peer, reason] = key.split(':');
          this.set({ peer: peer!, reason: reason! }, n);
        }
      },
    });
    new Gauge({ name: 'goodness_p2p_peers_connected', help: 'validators this node is connected to', registers: [r], collect() { this.set(p2p().peers().filter((x) => x.connected).length); } });
    const byPeerChannel = (name: string, help: string, pick: (s: ReturnType<P2PNode['stats']>['peers'][number], channel: 'consensus' | 'txs' | 'sync') => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['peer', 'channel'],
        registers: [r],
        collect() {
          for (const peer of p2p().stats().peers) for (const channel of ['consensus', 'txs', 'sync'] as const) this.set({ peer: String(peer.index), channel }, pick(peer, channel));
        },
      });
    byPeerChannel('goodness_p2p_sent_bytes', 'bytes sent, by peer and channel', (x, c) => x.sent[c].bytes);
    byPeerChannel('goodness_p2p_received_bytes', 'bytes received, by peer and channel', (x, c) => x.received[c].bytes);
    byPeerChannel('goodness_p2p_received_messages', 'messages received, by peer and channel', (x, c) => x.received[c].msgs);
    byPeerChannel('goodness_p2p_faults', 'malformed, oversized or unexpected frames and penalties, by peer and channel', (x, c) => Object.values(x.faults[c]).reduce((a, b) => a + b, 0));
    registerNodeMetrics(r, { engine, pool: this.pool, store: this.store });
    new Gauge({ name: 'goodness_p2p_peer_score', help: 'score of each validator peer (disconnected at 0)', labelNames: ['peer'], registers: [r], collect() { for (const x of p2p().stats().peers) this.set({ peer: String(x.index) }, x.score); } });
    let last = Date.now();
    this.pipeline.onBlock((block, receipts) => {
      height.set(block.header.number);
      const rejected = receipts.filter((x) => x.status === 'rejected').length;
      committed.inc({ status: 'ok' }, receipts.length - rejected);
      if (rejected) committed.inc({ status: 'rejected' }, rejected);
      blockTxs.observe(receipts.length);
      const now = Date.now();
      commitInterval.observe((now - last) / 1000);
      last = now;
    });
  }

  api(): NodeApi {
    const node = this;
    return {
      chain: this.o.genesis.chain,
      nodeId: this.o.peerId,
      version: VERSION,
      store: this.store,
      submitTx: (bytes) => node.submitTx(bytes),
      clientPoolFull: (size) => node.clientPoolFull(size),
      pendingCount: () => node.pool.size,
      validatorsAt: (height) => node.engine.validatorsAt(height),
      consensusStatus: () => node.engine.status(),
      syncStatus: () => node.engine.syncStatus(),
      peers: () => node.p2p.peers().map((p) => ({ peerId: p.peerId, addresses: p.addresses, validatorIndex: p.validatorIndex })),
      healthy: () => !node.stopped && node.engine.joined(),
      metrics: () => node.registry.metrics(),
      query: (path, caller) => node.machine.query(path, caller),
      onBlock: (listener) => node.pipeline.onBlock(listener),
    };
  }
}

/**
 * `goodness node --dir D`: loads the node folder, runs the node in the foreground, writes
 * `node.pid` and removes it when it stops on SIGINT or SIGTERM.
 */
export async function runNode(dir: string, opts: { logLevel?: string } = {}): Promise<GoodnessNode> {
  const loaded = loadNodeConfig(dir);
  const { config } = loaded;
  const logger = pino({ name: config.name, level: opts.logLevel ?? 'info' });
  const node = new GoodnessNode({
    name: config.name,
    genesis: loaded.genesis,
    peerId: loaded.keys.peerId,
    blsSecretKey: loaded.keys.blsSecretKey,
    dataDir: loaded.dataDir,
    rpc: { host: config.rpc.host, port: config.rpc.port, ...config.rpcLimits },
    pool: config.pool,
    p2p: { privateKey: loaded.keys.peerPrivateKey, listen: config.p2p.listen, announce: config.p2p.announce, peers: config.peers },
    logger,
    adminSocket: join(loaded.dir, ADMIN_SOCKET),
  });
  const pidFile = join(loaded.dir, PID_FILE);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.log.info({ signal }, 'stopping');
    node
      .stop()
      .then(() => {
        rmSync(pidFile, { force: true });
        process.exit(0);
      })
      .catch((err: unknown) => {
        node.log.error({ err }, 'stop failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  await node.start();
  writeFileSync(pidFile, `${process.pid}\n`);
  return node;
}
