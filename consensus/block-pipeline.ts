// From pending transactions to a durable block: build (reap, execute, header), then commit
// (one atomic batch, the machine promoted, the pool cleared, listeners told). Engines decide
// when and by whom a block is made; this file is how, shared by every engine.
import { commitMessage, genesisHeader, headerHash, receiptHash, validatorsHash } from './chain/header.ts';
import { merkleRoot } from './chain/merkle.ts';
import type { CommitCertificate, Genesis, Header } from './chain/types.ts';
import { from0x, to0x } from './crypto/encoding.ts';
import type { TxPool } from './pool.ts';
import { ValidatorSchedule, type ScheduleRecord } from './validator-schedule.ts';
import { listWrites, type BlockContext, type BlockTx, type StateMachine, type StateWrites, type ValidatorUpdate } from '../state/machine.ts';
import type { ChainStore } from '../state/store/chain-store.ts';
import type { Receipt, StoredBlock } from '../state/store/types.ts';

export interface Proposal {
  block: StoredBlock;
  txs: Uint8Array[];
  receipts: Receipt[];
  writes: StateWrites;
  validatorUpdates: ValidatorUpdate[];
}

export type BlockListener = (block: StoredBlock, receipts: Receipt[]) => void;

/** The chain store's META entry holding the validator schedule, written in the batch of each block that changes it. */
const SCHEDULE_META = 'validator-schedule';

export class BlockPipeline {
  private listeners = new Set<BlockListener>();
  private tip!: StoredBlock;
  lastCommitTime: number | null = null;
  /** which validators sign which height: headers commit to it, commits of validator changes extend it */
  schedule!: ValidatorSchedule;

  constructor(
    readonly genesis: Genesis,
    readonly store: ChainStore,
    readonly machine: StateMachine,
    readonly pool: TxPool,
  ) {}

  /** Writes block 0 on a fresh store, checks that store and machine agree, loads the tip. */
  async open(): Promise<void> {
    const info = await this.machine.open(this.store.stateReader(), this.genesis);
    let genesisBlock = await this.store.getBlock(0);
    if (!genesisBlock) {
      const header = genesisHeader(this.genesis, info.appHash);
      genesisBlock = { header, hash: to0x(headerHash(header)), view: 0, txHashes: [] };
      await this.store.writeGenesis(genesisBlock);
    } else if (genesisBlock.header.chain !== this.genesis.chain || genesisBlock.header.timestamp !== this.genesis.genesisTime) {
      throw new Error(`the data directory holds chain ${genesisBlock.header.chain}, not the one of this genesis.json`);
    }
    const height = this.store.latestHeight();
    if (info.height !== height) {
      throw new Error(`state machine is at height ${info.height} but the chain store at ${height}: the data directory is damaged`);
    }
    this.tip = (await this.store.getBlock(height))!;
    if (this.tip.header.appHash !== info.appHash) throw new Error(`app hash at height ${height} differs from the stored header`);
    this.schedule = new ValidatorSchedule(this.genesis.validators, this.genesis.consensus.window, await this.store.getMeta<ScheduleRecord>(SCHEDULE_META));
    this.schedule.resumeAt(height);
  }

  get head(): StoredBlock {
    return this.tip;
  }

  onBlock(listener: BlockListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A block that is executed (built here or validated) but not committed, by hash. */
  private readonly speculative = new Map<string, Proposal>();
  /** Hashes the machine holds executed-but-uncommitted state for, lowest height first. */
  private executed: string[] = [];

  /** The header of a committed tip or of a speculative block; null when unknown. */
  parentHeader(hash: string): StoredBlock | null {
    if (hash === this.tip.hash) return this.tip;
    return this.speculative.get(hash)?.block ?? null;
  }

  speculativeBlock(hash: string): Proposal | undefined {
    return this.speculative.get(hash);
  }

  /** Transactions already in uncommitted blocks: a leader must not propose them twice. */
  inFlightTxs(): Set<string> {
    const out = new Set<string>();
    for (const p of this.speculative.values()) for (const h of p.block.txHashes) out.add(h);
    return out;
  }

  /**
   * Builds the next block from the pool on `parentHash` (the committed tip or a speculative
   * block): reaps what is not already in flight or committed (and, with `addedBy`, was admitted
   * by then, pool clock), executes it on the parent's state, and fills the header. Null when
   * nothing is pending.
   */
  async build(opts: { proposer: number; timestamp: number; maxTxs: number; maxBytes: number; parentHash?: string; view?: number; addedBy?: number }): Promise<Proposal | null> {
    const parent = this.parentHeader(opts.parentHash ?? this.tip.hash);
    if (!parent) throw new Error(`build: parent ${opts.parentHash} is neither the tip nor a speculative block`);
    const height = parent.header.number + 1;
    const inFlight = this.speculative.size > 0 ? this.inFlightTxs() : null;
    const reaped = this.pool.reap(opts.maxTxs + (inFlight?.size ?? 0), opts.maxBytes, height, opts.addedBy).filter((t) => !inFlight?.has(t.hash)).slice(0, opts.maxTxs);
    if (reaped.length === 0) return null;
    // The pool deduplicates what is pending; the store is the last word on what is committed.
    const committed = await this.store.committedAmong(reaped.map((t) => t.hash));
    const entries = committed.size === 0 ? reaped : reaped.filter((t) => !committed.has(t.hash));
    if (committed.size > 0) this.pool.removeCommitted([...committed]);
    if (entries.length === 0) return null;
    const timestamp = Math.max(opts.timestamp, parent.header.timestamp + 1);
    return this.execute(parent, { height, timestamp, proposer: opts.proposer }, entries, opts.view ?? 0);
  }

  /**
   * Executes another validator's proposal on its parent's state and checks that the header it
   * carries is exactly the one this node computes. The transactions come from the pool
   * (admitted here, signatures checked) or, missing there, as bytes the machine checks itself.
   */
  validate(header: Header, txs: BlockTx[], view = 0): { ok: true; proposal: Proposal } | { ok: false; reason: string } {
    const parent = this.parentHeader(header.parentHash);
    if (!parent) return { ok: false, reason: `unknown parent ${header.parentHash}` };
    if (header.number !== parent.header.number + 1) return { ok: false, reason: `height ${header.number} does not follow its parent ${parent.header.number}` };
    if (header.chain !== this.genesis.chain) return { ok: false, reason: 'another chain' };
    if (!(header.timestamp > parent.header.timestamp)) return { ok: false, reason: 'timestamp does not increase' };
    if (header.txCount !== txs.length) return { ok: false, reason: 'txCount differs from the transactions' };
    const replay = this.repeatedTx(header.parentHash, txs);
    if (replay) return { ok: false, reason: replay };
    if (!this.schedule.at(header.number + 1)) return { ok: false, reason: `block ${header.number} is beyond the validator sets this node knows (through ${this.schedule.knownThrough})` };
    const proposal = this.execute(parent, { height: header.number, timestamp: header.timestamp, proposer: header.proposer }, txs, view);
    const mine = proposal.block.header;
    for (const k of Object.keys(mine) as (keyof Header)[]) {
      if (mine[k] !== header[k]) {
        this.forget(proposal.block.hash);
        return { ok: false, reason: `${k} is ${String(header[k])}, this node computes ${String(mine[k])}` };
      }
    }
    return { ok: true, proposal };
  }

  /**
   * A transaction is in the chain once: not twice in a block, nor again after an uncommitted
   * ancestor (a leader replaying one would make the machine run it twice and the store point its
   * hash at the second block). Committed ones are the caller's check (`committedAmong`, async).
   */
  private repeatedTx(parentHash: string, txs: BlockTx[]): string | null {
    const seen = new Set<string>();
    for (const t of txs) {
      if (seen.has(t.hash)) return `transaction ${t.hash} appears twice in the block`;
      seen.add(t.hash);
    }
    for (let hash = parentHash; hash !== this.tip.hash; ) {
      const p = this.speculative.get(hash);
      if (!p) break;
      for (const h of p.block.txHashes) if (seen.has(h)) return `transaction ${h} is already in block ${p.block.header.number}`;
      hash = p.block.header.parentHash;
    }
    return null;
  }

  /**
   * A refusal when one of these transactions is already committed: a block may not replay one.
   * Callers hold the machine lock, so that no commit lands between this check and validate().
   */
  async committedReplay(hashes: string[]): Promise<string | null> {
    if (hashes.length === 0) return null;
    const committed = await this.store.committedAmong(hashes);
    if (committed.size === 0) return null;
    const first = committed.values().next().value!;
    return `transaction ${first} is already committed${committed.size > 1 ? ` (and ${committed.size - 1} more)` : ''}`;
  }

  private execute(parent: StoredBlock, ctx: BlockContext, entries: BlockTx[], view: number): Proposal {
    // Both sets are final here: an engine builds or validates only within its window (validator-schedule.ts).
    const validators = this.schedule.require(ctx.height);
    const nextValidators = this.schedule.require(ctx.height + 1);
    this.rewindTo(parent.hash);
    const result = this.machine.executeBlock(ctx, entries);
    const height = ctx.height;
    const txHashes = entries.map((t) => t.hash);
    const receipts: Receipt[] = result.receipts.map((r, index) => ({ hash: r.txHash, blockNumber: height, index, status: r.status, code: r.code, log: r.log, events: r.events }));
    const header: Header = {
      chain: this.genesis.chain,
      number: height,
      parentHash: parent.hash,
      timestamp: ctx.timestamp,
      proposer: ctx.proposer,
      txCount: entries.length,
      txRoot: to0x(merkleRoot(txHashes.map((h) => Buffer.from(h.slice(2), 'hex')))),
      receiptRoot: to0x(merkleRoot(result.receipts.map(receiptHash))),
      appHash: result.appHash,
      validatorsHash: validatorsHash(validators),
      nextValidatorsHash: validatorsHash(nextValidators),
    };
    const proposal: Proposal = {
      block: { header, hash: to0x(headerHash(header)), view, txHashes },
      txs: entries.map((t) => t.bytes),
      receipts,
      writes: result.writes,
      validatorUpdates: result.validatorUpdates,
    };
    this.speculative.set(proposal.block.hash, proposal);
    this.executed.push(proposal.block.hash);
    return proposal;
  }

  /**
   * Makes the machine's executed-but-uncommitted chain end at `hash` (the tip or a speculative
   * block) so that the next execution builds on it. A machine executing a height replaces what
   * it held there and above; a speculative block whose state was replaced by a sibling's is
   * executed again from its recorded transactions.
   */
  private rewindTo(hash: string): void {
    if (hash === this.tip.hash) {
      this.executed = [];
      return;
    }
    const at = this.executed.indexOf(hash);
    if (at >= 0) {
      this.executed = this.executed.slice(0, at + 1);
      return;
    }
    const p = this.speculative.get(hash);
    if (!p) throw new Error(`rewind: ${hash} is neither the tip nor a speculative block`);
    this.rewindTo(p.block.header.parentHash);
    const h = p.block.header;
    this.machine.executeBlock({ height: h.number, timestamp: h.timestamp, proposer: h.proposer }, p.txs.map((bytes, i) => ({ hash: p.block.txHashes[i]!, bytes })));
    this.executed.push(hash);
  }

  /** The engine will never commit this block: drop it (its descendants go when their height is re-executed). */
  forget(hash: string): void {
    this.speculative.delete(hash);
    const at = this.executed.indexOf(hash);
    if (at >= 0) this.executed = this.executed.slice(0, at);
  }

  /** The message validators sign to commit this proposal. */
  static commitMessageOf(p: Proposal): Uint8Array {
    return commitMessage(from0x(p.block.hash, 32)!);
  }

  /**
   * Makes a certified proposal durable in one batch, then promotes state and tells listeners.
   * The machine's pending state must be this very block: when it holds another branch (the
   * engine moved on and back), the block is executed again first.
   */
  async commit(p: Proposal, certificate: CommitCertificate): Promise<void> {
    if (p.block.header.parentHash !== this.tip.hash) throw new Error(`commit: block ${p.block.header.number} does not extend the tip`);
    if (this.executed[0] !== p.block.hash) {
      this.speculative.set(p.block.hash, p);
      this.rewindTo(p.block.hash);
    }
    const schedule = this.schedule.commit(p.block.header.number, p.validatorUpdates);
    await this.store.commitBlock({ block: p.block, certificate, txs: p.txs, receipts: p.receipts, stateWrites: listWrites(p.writes), meta: schedule ? [{ name: SCHEDULE_META, value: schedule }] : undefined });
    this.machine.commit(p.block.header.number);
    this.executed.shift();
    this.speculative.delete(p.block.hash);
    // Siblings of the committed block can never commit now.
    for (const [hash, other] of this.speculative) if (other.block.header.number <= p.block.header.number) this.speculative.delete(hash);
    this.tip = p.block;
    this.lastCommitTime = Date.now();
    this.pool.removeCommitted(p.block.txHashes, p.block.header.number + 1);
    for (const l of this.listeners) {
      try {
        l(p.block, p.receipts);
      } catch {
        // A listener (an RPC subscription) must never stop the chain.
      }
    }
  }
}
