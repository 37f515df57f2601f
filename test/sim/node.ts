// One simulated node: the driver around a real Replica. It carries out each Ready the way the
// node's driver must (persist, then send; build, validate and sync asynchronously; commit in
// order), on a disk that survives crashes, and checks the core's side of the contract as it goes.
import { Replica } from '../../consensus/pbft/core.ts';
import { chainDigest, decodeRecord, encodeRecord, recordHeight, recordKey } from '../../consensus/pbft/messages.ts';
import type { CommitCertificate, Hash, Ready, ReplicaEvent, TimerId } from '../../consensus/pbft/types.ts';
import type { VoteCrypto } from '../../consensus/pbft/vote-crypto.ts';
import { isMessage, type Behaviour, type ByzContext, type Packet } from './byzantine.ts';
import { blockHash, decodePayload, encodePayload, executeBlock } from './executor.ts';
import type { Prng } from './prng.ts';
import type { Sim } from './run.ts';

export interface ChainEntry {
  height: number;
  hash: Hash;
  parentHash: Hash;
  payload: Uint8Array;
  certificate: CommitCertificate | null;
}

interface Speculative {
  height: number;
  parentHash: Hash;
  payload: Uint8Array;
  txs: number[];
}

const SEEN_LIMIT = 200;

export class SimNode {
  /** what survives a crash */
  readonly disk: { records: Map<string, { height: number; bytes: Uint8Array }>; chain: ChainEntry[] };
  replica: Replica | null = null;
  private incarnation = 0;
  private speculative = new Map<Hash, Speculative>();
  /** validations in flight; an abandon cancels its block's (the answer must not revive it) */
  private validating = new Map<Hash, number>();
  private validationToken = 0;
  private timers = new Map<TimerId, number>();
  private timerToken = 0;
  private syncTarget = 0;
  private syncing = false;
  private corePending = false;
  /** submitted transactions this node has not committed */
  readonly uncommitted = new Set<number>();
  private inSpeculative = new Map<number, number>();
  private lastView = -1;
  readonly seen: Uint8Array[] = [];
  readonly byzContext: ByzContext | null;
  private readonly prng: Prng;
  /** ms of simulated time at each commit, by height (for the liveness check) */
  readonly commitTimes = new Map<number, number>();

  constructor(
    private readonly sim: Sim,
    readonly index: number,
    readonly crypto: VoteCrypto,
    readonly behaviour: Behaviour | null,
    genesis: ChainEntry,
    forger: VoteCrypto,
  ) {
    this.disk = { records: new Map(), chain: [genesis] };
    this.prng = sim.prng.fork(`node-${index}`);
    this.byzContext = behaviour
      ? {
          index,
          peers: sim.nodeIndexes.filter((i) => i !== index),
          prng: this.prng.fork('byz'),
          crypto,
          forger,
          chainTag: chainDigest(sim.chain),
          view: () => this.replica?.status().view ?? 0,
          committedHeight: () => this.tip.height,
          tip: () => ({ height: this.tip.height, hash: this.tip.hash, certificate: this.tip.certificate }),
          seen: this.seen,
        }
      : null;
  }

  get honest(): boolean {
    return this.behaviour === null;
  }

  get running(): boolean {
    return this.replica !== null;
  }

  get tip(): ChainEntry {
    return this.disk.chain[this.disk.chain.length - 1]!;
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle

  start(): void {
    const tip = this.tip;
    const records = [...this.disk.records.values()].map((r) => decodeRecord(r.bytes));
    this.replica = new Replica(
      {
        index: this.index,
        chain: this.sim.chain,
        genesisHash: this.disk.chain[0]!.hash,
        validatorsAt: (h) => this.sim.validatorsAt(h),
        crypto: this.crypto,
        window: this.sim.scenario.window,
        baseTimeoutMs: this.sim.scenario.baseTimeoutMs,
        maxTimeoutDoublings: this.sim.scenario.maxTimeoutDoublings,
        retransmitMs: this.sim.scenario.retransmitMs,
      },
      { committedHeight: tip.height, committedHash: tip.hash, committedCertificate: tip.certificate, records },
    );
    this.incarnation++;
    this.uncommitted.clear();
    const committed = new Set(this.disk.chain.flatMap((e) => decodePayload(e.payload)?.txs ?? []));
    for (const t of this.sim.submitted) if (!committed.has(t)) this.uncommitted.add(t);
    this.corePending = false;
    this.step({ type: 'start' });
    this.refreshPending();
    if (this.behaviour?.tick) this.scheduleTick(this.incarnation);
  }

  crash(): void {
    if (!this.replica) return;
    this.replica = null;
    this.incarnation++;
    this.speculative.clear();
    this.inSpeculative.clear();
    this.validating.clear();
    this.timers.clear();
    this.syncing = false;
    this.syncTarget = 0;
    this.sim.trace(`crash ${this.index}`);
  }

  private scheduleTick(inc: number): void {
    this.sim.queue.after(this.sim.scenario.byzTickMs, () => {
      if (inc !== this.incarnation || !this.replica) return;
      for (const p of this.behaviour!.tick!(this.byzContext!)) this.sim.net.send(this.index, p.to, p.bytes);
      this.scheduleTick(inc);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  deliver(from: number, bytes: Uint8Array): void {
    if (!this.replica) return;
    if (this.behaviour?.name === 'replay' && isMessage(bytes)) this.remember(bytes);
    this.step({ type: 'message', from, bytes });
  }

  private remember(bytes: Uint8Array): void {
    this.seen.push(bytes);
    if (this.seen.length > SEEN_LIMIT) this.seen.shift();
  }

  onTxSubmitted(id: number): void {
    this.uncommitted.add(id);
    if (this.replica) this.refreshPending();
  }

  step(event: ReplicaEvent): void {
    if (!this.replica) return;
    const ready = this.replica.step(event, this.sim.queue.now);
    const view = this.replica.status().view;
    if (view !== this.lastView) {
      this.lastView = view;
      this.sim.trace(`view ${this.index} ${view}`);
    }
    this.apply(ready);
  }

  /** The pool's state as the core sees it: transactions neither committed nor in a live speculative block. */
  private pending(): boolean {
    for (const t of this.uncommitted) if (!this.inSpeculative.has(t)) return true;
    return false;
  }

  private refreshPending(): void {
    const p = this.pending();
    if (p !== this.corePending) {
      this.corePending = p;
      this.step({ type: 'pendingWork', pending: p });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Effects, in the order the real driver performs them

  private apply(r: Ready): void {
    const inc = this.incarnation;
    if (r.fatal) this.sim.violation(`node ${this.index} halted: ${r.fatal}`, this.honest);
    for (const rec of r.persist) this.disk.records.set(recordKey(rec), { height: recordHeight(rec), bytes: encodeRecord(rec) });
    // A crash after the records are durable but before anything is sent or committed.
    if (r.persist.length > 0 && this.sim.crashMidReady(this)) {
      this.crash();
      this.sim.scheduleRestart(this);
      return;
    }
    for (const s of r.send) {
      const to = s.to === 'all' ? this.sim.nodeIndexes.filter((i) => i !== this.index) : [s.to];
      const packets: Packet[] = this.behaviour?.outgoing ? this.behaviour.outgoing(this.byzContext!, to, s.msg, s.bytes) : to.map((t) => ({ to: t, bytes: s.bytes }));
      for (const p of packets) {
        if (this.behaviour?.name === 'replay') this.remember(p.bytes);
        this.sim.net.send(this.index, p.to, p.bytes);
      }
    }
    for (const c of r.commit) this.commit(c.height, c.hash, c.certificate);
    if (r.prune !== null) for (const [k, rec] of this.disk.records) if (rec.height > 0 && rec.height <= r.prune) this.disk.records.delete(k);
    for (const a of r.abandon) this.abandon(a.height, a.hash);
    for (const v of r.validate) this.validate(inc, v.height, v.hash, v.parentHash, v.payload);
    if (r.build) this.build(inc, r.build.view, r.build.height, r.build.parentHash);
    for (const id of r.cancelTimers) this.timers.delete(id);
    for (const t of r.timers) this.setTimer(inc, t.id, t.at);
    if (r.sync) this.startSync(inc, r.sync.targetHeight);
    for (const d of r.dropped) this.sim.onDrop(this, d.from, d.reason, d.fault, d.detail);
    if (inc === this.incarnation && this.replica) this.refreshPending();
  }

  private setTimer(inc: number, id: TimerId, at: number): void {
    const token = ++this.timerToken;
    this.timers.set(id, token);
    this.sim.queue.schedule(at, () => {
      if (inc !== this.incarnation || this.timers.get(id) !== token) return;
      this.timers.delete(id);
      this.step({ type: 'timer', id });
    });
  }

  private addSpeculative(hash: Hash, s: Speculative): void {
    if (this.speculative.has(hash)) return;
    this.speculative.set(hash, s);
    for (const t of s.txs) this.inSpeculative.set(t, (this.inSpeculative.get(t) ?? 0) + 1);
  }

  private dropSpeculative(hash: Hash): void {
    const s = this.speculative.get(hash);
    if (!s) return;
    this.speculative.delete(hash);
    for (const t of s.txs) {
      const n = (this.inSpeculative.get(t) ?? 1) - 1;
      if (n <= 0) this.inSpeculative.delete(t);
      else this.inSpeculative.set(t, n);
    }
  }

  /** A state to execute on: the committed tip or a live speculative block. */
  private hasState(height: number, hash: Hash): boolean {
    if (height === this.tip.height) return hash === this.tip.hash;
    return this.speculative.get(hash)?.height === height;
  }

  private build(inc: number, view: number, height: number, parentHash: Hash): void {
    if (!this.hasState(height - 1, parentHash)) this.sim.violation(`node ${this.index}: build at ${height} on a parent it has no state for`, this.honest);
    this.sim.queue.after(this.prng.range(this.sim.scenario.buildMs[0], this.sim.scenario.buildMs[1]), () => {
      if (inc !== this.incarnation || !this.replica) return;
      const txs: number[] = [];
      for (const t of this.uncommitted) {
        if (txs.length >= this.sim.scenario.maxTxsPerBlock) break;
        if (!this.inSpeculative.has(t)) txs.push(t);
      }
      if (txs.length === 0 || !this.hasState(height - 1, parentHash)) {
        this.corePending = false;
        this.step({ type: 'proposalBuilt', view, height, parentHash, block: null });
        return;
      }
      const payload = encodePayload({ proposer: this.index, view, nonce: this.prng.next(), txs, invalid: this.behaviour?.invalidBlocks === true });
      const hash = blockHash(parentHash, height, payload);
      this.addSpeculative(hash, { height, parentHash, payload, txs });
      this.step({ type: 'proposalBuilt', view, height, parentHash, block: { hash, payload } });
    });
  }

  private validate(inc: number, height: number, hash: Hash, parentHash: Hash, payload: Uint8Array): void {
    if (!this.hasState(height - 1, parentHash)) this.sim.violation(`node ${this.index}: asked to execute ${height} on a parent it has no state for`, this.honest);
    const token = ++this.validationToken;
    this.validating.set(hash, token);
    this.sim.queue.after(this.prng.range(this.sim.scenario.validateMs[0], this.sim.scenario.validateMs[1]), () => {
      if (inc !== this.incarnation || !this.replica || this.validating.get(hash) !== token) return;
      this.validating.delete(hash);
      const ok = this.hasState(height - 1, parentHash) && executeBlock(height, hash, parentHash, payload);
      if (ok) this.addSpeculative(hash, { height, parentHash, payload, txs: decodePayload(payload)!.txs });
      this.step({ type: 'validated', height, hash, ok });
    });
  }

  private abandon(height: number, hash: Hash): void {
    if (this.disk.chain[height]?.hash === hash) this.sim.violation(`node ${this.index}: abandoned committed block ${height}`, this.honest);
    this.validating.delete(hash);
    this.dropSpeculative(hash);
  }

  private commit(height: number, hash: Hash, certificate: CommitCertificate): void {
    const spec = this.speculative.get(hash);
    const tip = this.tip;
    if (!spec || spec.height !== height) return this.sim.violation(`node ${this.index}: commit of ${height} ${hash} it never executed`, this.honest);
    if (height !== tip.height + 1 || spec.parentHash !== tip.hash) return this.sim.violation(`node ${this.index}: commit of ${height} does not extend its chain`, this.honest);
    const bad = this.sim.checkCertificate(height, hash, certificate);
    if (bad) return this.sim.violation(`node ${this.index}: certificate of ${height} is invalid: ${bad}`, this.honest);
    this.dropSpeculative(hash);
    this.appendChain({ height, hash, parentHash: spec.parentHash, payload: spec.payload, certificate });
  }

  private appendChain(e: ChainEntry): void {
    this.disk.chain.push(e);
    for (const t of decodePayload(e.payload)?.txs ?? []) this.uncommitted.delete(t);
    this.commitTimes.set(e.height, this.sim.queue.now);
    this.sim.onCommit(this, e);
  }

  // -------------------------------------------------------------------------------------------
  // Sync: fetch certified blocks from a peer, check them, apply them, report each.

  private startSync(inc: number, target: number): void {
    this.syncTarget = Math.max(this.syncTarget, target);
    if (this.syncing) return;
    this.syncing = true;
    this.sim.trace(`sync ${this.index} ${target}`);
    this.sim.queue.after(this.prng.range(5, 30), () => this.syncStep(inc));
  }

  private syncStep(inc: number): void {
    if (inc !== this.incarnation || !this.replica) return;
    const tip = this.tip;
    const sources = this.sim.nodes.filter((n) => n !== this && n.running && n.tip.height > tip.height);
    if (sources.length === 0) {
      this.syncing = false;
      this.step({ type: 'syncDone' });
      return;
    }
    const src = this.prng.pick(sources);
    const e = src.disk.chain[tip.height + 1]!;
    if (e.parentHash !== tip.hash || blockHash(e.parentHash, e.height, e.payload) !== e.hash) {
      this.syncing = false;
      return this.sim.violation(`node ${this.index}: sync from ${src.index} got a block that does not extend its chain at ${e.height}`, this.honest && src.honest);
    }
    const bad = this.sim.checkCertificate(e.height, e.hash, e.certificate!);
    if (bad) {
      this.syncing = false;
      return this.sim.violation(`node ${this.index}: synced certificate at ${e.height} invalid: ${bad}`, true);
    }
    this.dropSpeculative(e.hash);
    this.appendChain({ ...e });
    this.sim.trace(`synced ${this.index} ${e.height}`);
    this.step({ type: 'syncedCommit', height: e.height, hash: e.hash, parentHash: e.parentHash, certificate: e.certificate! });
    if (inc !== this.incarnation) return;
    if (this.tip.height < this.syncTarget || this.sim.nodes.some((n) => n.running && n.tip.height > this.tip.height + this.sim.scenario.window)) {
      this.sim.queue.after(this.prng.range(1, 5), () => this.syncStep(inc));
    } else {
      this.syncing = false;
      this.step({ type: 'syncDone' });
    }
  }
}
