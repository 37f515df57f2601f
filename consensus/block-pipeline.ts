// From pending transactions to a durable block: build (reap, execute, header), then commit
// (one atomic batch, the machine promoted, the pool cleared, listeners told). Engines decide
// when and by whom a block is made; this file is how, shared by every engine.
import { commitMessage, genesisHeader, headerHash, receiptHash, validatorsHash } from './chain/header.ts';
import { merkleRoot } from './chain/merkle.ts';
import type { CommitCertificate, Genesis, Header, Validator } from './chain/types.ts';
import { from0x, to0x } from './crypto/encoding.ts';
import type { TxPool } from './pool.ts';
import type { StateMachine, ValidatorUpdate } from '../state/machine.ts';
import type { ChainStore } from '../state/store/chain-store.ts';
import type { Receipt, StoredBlock } from '../state/store/types.ts';

export interface Proposal {
  block: StoredBlock;
  txs: Uint8Array[];
  receipts: Receipt[];
  writes: [Uint8Array, Uint8Array | null][];
  validatorUpdates: ValidatorUpdate[];
}

export type BlockListener = (block: StoredBlock, receipts: Receipt[]) => void;

export class BlockPipeline {
  private listeners = new Set<BlockListener>();
  private tip!: StoredBlock;
  lastCommitTime: number | null = null;

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
  }

  get head(): StoredBlock {
    return this.tip;
  }

  onBlock(listener: BlockListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Builds the next block from the pool: reaps, drops what is already committed, executes on
   * top of the committed state, and fills the header. Null when nothing is pending.
   */
  async build(proposer: number, timestamp: number, validators: Validator[], maxTxs: number, maxBytes: number): Promise<Proposal | null> {
    const height = this.tip.header.number + 1;
    const reaped = this.pool.reap(maxTxs, maxBytes, height);
    if (reaped.length === 0) return null;
    // The pool deduplicates what is pending; the store is the last word on what is committed.
    const committed = await this.store.committedAmong(reaped.map((t) => t.hash));
    const entries = committed.size === 0 ? reaped : reaped.filter((t) => !committed.has(t.hash));
    if (committed.size > 0) this.pool.removeCommitted([...committed]);
    if (entries.length === 0) return null;
    const ctx = { height, timestamp: Math.max(timestamp, this.tip.header.timestamp + 1), proposer };
    const result = this.machine.executeBlock(ctx, entries);
    const txHashes = entries.map((t) => t.hash);
    const receipts: Receipt[] = result.receipts.map((r, index) => ({ hash: r.txHash, blockNumber: height, index, status: r.status, code: r.code, log: r.log, events: r.events }));
    const vh = validatorsHash(validators);
    const header: Header = {
      chain: this.genesis.chain,
      number: height,
      parentHash: this.tip.hash,
      timestamp: ctx.timestamp,
      proposer,
      txCount: entries.length,
      txRoot: to0x(merkleRoot(txHashes.map((h) => from0x(h, 32)!))),
      receiptRoot: to0x(merkleRoot(result.receipts.map(receiptHash))),
      appHash: result.appHash,
      validatorsHash: vh,
      // Validator changes take effect through the PBFT engine (its issue); until then the set is fixed.
      nextValidatorsHash: vh,
    };
    return {
      block: { header, hash: to0x(headerHash(header)), view: 0, txHashes },
      txs: entries.map((t) => t.bytes),
      receipts,
      writes: result.writes,
      validatorUpdates: result.validatorUpdates,
    };
  }

  /** The message validators sign to commit this proposal. */
  static commitMessageOf(p: Proposal): Uint8Array {
    return commitMessage(from0x(p.block.hash, 32)!);
  }

  /** Makes a certified proposal durable in one batch, then promotes state and tells listeners. */
  async commit(p: Proposal, certificate: CommitCertificate): Promise<void> {
    await this.store.commitBlock({ block: p.block, certificate, txs: p.txs, receipts: p.receipts, stateWrites: p.writes });
    this.machine.commit(p.block.header.number);
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
