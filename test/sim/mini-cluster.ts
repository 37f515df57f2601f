// A small synchronous cluster for rule-level tests: real replicas, an instant FIFO network the
// test can filter, a clock and timers the test advances by hand, and a driver that answers
// builds and validations at once. The seeded simulator (run.ts) is for randomized runs.
import type { Validator } from '../../consensus/chain/types.ts';
import { blsKeygen } from '../../consensus/crypto/bls.ts';
import { sha256, to0x, utf8 } from '../../consensus/crypto/encoding.ts';
import { Replica } from '../../consensus/pbft/core.ts';
import { decodeRecord, encodeRecord, recordKey } from '../../consensus/pbft/messages.ts';
import type { CommitCertificate, Drop, Hash, Message, Ready, ReplicaEvent, TimerId } from '../../consensus/pbft/types.ts';
import { emptyReady } from '../../consensus/pbft/types.ts';
import { BlsVoteCrypto, SimKeyring, type VoteCrypto } from '../../consensus/pbft/vote-crypto.ts';
import { blockHash, encodePayload, executeBlock } from './executor.ts';

export const GENESIS: Hash = to0x(sha256(utf8('mini-genesis')));

export interface MiniNode {
  index: number;
  replica: Replica;
  crypto: VoteCrypto;
  records: Map<string, Uint8Array>;
  chain: { height: number; hash: Hash; certificate: CommitCertificate | null }[];
  timers: Map<TimerId, number>;
  drops: Drop[];
  sent: Message[];
  syncs: number[];
  aborted: Hash[];
  down: boolean;
  readies: Ready[];
}

export interface MiniOptions {
  n: number;
  crypto?: 'sim' | 'bls';
  baseTimeoutMs?: number;
  window?: number;
  validatorsAt?: (h: number) => number[];
  /** pending work at every replica from the start */
  pending?: boolean;
  /** transactions per block before the builders say there is nothing more */
  blocks?: number;
}

export class MiniCluster {
  readonly nodes: MiniNode[] = [];
  now = 0;
  readonly keyring: SimKeyring;
  readonly validators: Validator[] = [];
  private queue: (() => void)[] = [];
  /** return false to drop a message */
  filter: (from: number, to: number, msg: Message) => boolean = () => true;
  /** hashes the executor refuses */
  readonly invalid = new Set<Hash>();
  private built = 0;
  private readonly cryptoOf: (i: number) => VoteCrypto;

  constructor(readonly opts: MiniOptions) {
    const ids = Array.from({ length: opts.n }, (_, i) => i);
    this.keyring = new SimKeyring('mini', ids);
    if (opts.crypto === 'bls') {
      const keys = ids.map((i) => blsKeygen(sha256(utf8(`mini-bls/${i}`))));
      for (const i of ids) this.validators.push({ index: i, peerId: `peer-${i}`, blsPublicKey: to0x(keys[i]!.publicKey) });
      this.cryptoOf = (i) => BlsVoteCrypto.fromValidators(keys[i]!.secretKey, this.validators);
    } else {
      this.cryptoOf = (i) => this.keyring.cryptoFor(i);
    }
    for (const i of ids) {
      const node: MiniNode = { index: i, replica: null!, crypto: this.cryptoOf(i), records: new Map(), chain: [{ height: 0, hash: GENESIS, certificate: null }], timers: new Map(), drops: [], sent: [], syncs: [], aborted: [], down: false, readies: [] };
      node.replica = this.makeReplica(node);
      this.nodes.push(node);
    }
  }

  validatorsAt(h: number): number[] {
    return this.opts.validatorsAt ? this.opts.validatorsAt(h) : this.nodes.map((n) => n.index);
  }

  private makeReplica(node: MiniNode): Replica {
    const tip = node.chain[node.chain.length - 1]!;
    return new Replica(
      { index: node.index, chain: 'mini', genesisHash: GENESIS, validatorsAt: (h) => this.validatorsAt(h), crypto: node.crypto, window: this.opts.window ?? 4, baseTimeoutMs: this.opts.baseTimeoutMs ?? 1000 },
      { committedHeight: tip.height, committedHash: tip.hash, committedCertificate: tip.certificate, records: [...node.records.values()].map((b) => decodeRecord(b)) },
    );
  }

  start(): void {
    for (const n of this.nodes) this.step(n.index, { type: 'start' });
    if (this.opts.pending !== false) for (const n of this.nodes) this.step(n.index, { type: 'pendingWork', pending: true });
    this.run();
  }

  /** Crash and restart from exactly what was persisted, plus the committed chain. */
  restart(i: number): void {
    const node = this.nodes[i]!;
    node.timers.clear();
    node.replica = this.makeReplica(node);
    node.down = false;
    this.step(i, { type: 'start' });
  }

  /** A node that is down does nothing at all (its clock, builds and timers stop too). */
  step(i: number, event: ReplicaEvent): Ready {
    const node = this.nodes[i]!;
    if (node.down) return emptyReady();
    const ready = node.replica.step(event, this.now);
    node.readies.push(ready);
    this.apply(node, ready);
    return ready;
  }

  deliver(to: number, from: number, bytes: Uint8Array): Ready {
    return this.step(to, { type: 'message', from, bytes });
  }

  private apply(node: MiniNode, r: Ready): void {
    if (r.fatal) throw new Error(`node ${node.index} halted: ${r.fatal}`);
    for (const rec of r.persist) node.records.set(recordKey(rec), encodeRecord(rec));
    for (const s of r.send) {
      node.sent.push(s.msg);
      const to = s.to === 'all' ? this.nodes.map((n) => n.index).filter((j) => j !== node.index) : [s.to];
      for (const j of to) {
        if (node.down || this.nodes[j]!.down || !this.filter(node.index, j, s.msg)) continue;
        this.queue.push(() => {
          if (!this.nodes[j]!.down) this.deliver(j, node.index, s.bytes);
        });
      }
    }
    for (const c of r.commit) {
      const tip = node.chain[node.chain.length - 1]!;
      if (c.height !== tip.height + 1) throw new Error(`node ${node.index} committed ${c.height} after ${tip.height}`);
      node.chain.push({ height: c.height, hash: c.hash, certificate: c.certificate });
    }
    for (const a of r.abandon) node.aborted.push(a.hash);
    for (const v of r.validate) {
      const ok = !this.invalid.has(v.hash) && executeBlock(v.height, v.hash, v.parentHash, v.payload);
      this.queue.push(() => this.step(node.index, { type: 'validated', height: v.height, hash: v.hash, ok }));
    }
    if (r.build) {
      const b = r.build;
      const more = this.opts.blocks === undefined || this.built < this.opts.blocks;
      const payload = encodePayload({ proposer: node.index, view: b.view, nonce: this.built++, txs: [this.built], invalid: false });
      const block = more ? { hash: blockHash(b.parentHash, b.height, payload), payload } : null;
      this.queue.push(() => this.step(node.index, { type: 'proposalBuilt', view: b.view, height: b.height, parentHash: b.parentHash, block }));
    }
    for (const id of r.cancelTimers) node.timers.delete(id);
    for (const t of r.timers) node.timers.set(t.id, t.at);
    if (r.sync) node.syncs.push(r.sync.targetHeight);
    node.drops.push(...r.dropped);
  }

  /** Delivers everything in flight (and what that causes), in order. */
  run(limit = 100_000): void {
    for (let i = 0; i < limit && this.queue.length > 0; i++) this.queue.shift()!();
    if (this.queue.length > 0) throw new Error('mini cluster did not settle');
  }

  /** Moves the clock to t, firing due timers (earliest first) and running what they cause. */
  advance(t: number): void {
    for (;;) {
      let next: { node: MiniNode; id: TimerId; at: number } | null = null;
      for (const n of this.nodes) {
        if (n.down) continue;
        for (const [id, at] of n.timers) if (at <= t && (!next || at < next.at)) next = { node: n, id, at };
      }
      if (!next) break;
      this.now = Math.max(this.now, next.at);
      next.node.timers.delete(next.id);
      this.step(next.node.index, { type: 'timer', id: next.id });
      this.run();
    }
    this.now = t;
  }

  height(i: number): number {
    return this.nodes[i]!.chain.length - 1;
  }
}
