// Test fixtures: an in-memory chain of real blocks (headers hashed as chain.md says, Merkle
// roots over real receipts, commit certificates aggregated from real BLS signatures). For the
// RPC and light-client tests, which pin protocol behaviour without a running cluster; the node
// with its RocksDB store is tested end to end elsewhere.
import { headerHash, receiptHash, commitMessage, validatorsHash, ZERO_HASH } from '../consensus/chain/header.ts';
import { quorumSize } from '../consensus/chain/certificate.ts';
import { merkleRoot } from '../consensus/chain/merkle.ts';
import type { CommitCertificate, Event, Header, Validator } from '../consensus/chain/types.ts';
import { BlsSigner, blsAggregateSignatures, blsKeygen } from '../consensus/crypto/bls.ts';
import { from0x, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import type { ChainReader, Receipt, StoredBlock, StoredTx, TxTotals } from '../state/store/types.ts';
import { txHash } from '../state/tx.ts';

export interface TestValidatorSet {
  validators: Validator[];
  signers: Map<number, BlsSigner>;
}

/** `n` validators with indexes from `firstIndex`, keys derived from `seed` so runs repeat. */
export function makeValidatorSet(n: number, firstIndex = 0, seed = 'goodness-test'): TestValidatorSet {
  const validators: Validator[] = [];
  const signers = new Map<number, BlsSigner>();
  for (let i = firstIndex; i < firstIndex + n; i++) {
    const keys = blsKeygen(sha256(utf8(`${seed}/validator/${i}`)));
    validators.push({ index: i, peerId: `12D3KooWTestValidator${i}`, blsPublicKey: to0x(keys.publicKey) });
    signers.set(i, new BlsSigner(keys.secretKey));
  }
  return { validators, signers };
}

/** A certificate for `blockHash` signed by the listed members of `set`. */
export function certify(set: TestValidatorSet, number: number, blockHash: string, signerIndexes: number[], view = 0): CommitCertificate {
  const message = commitMessage(from0x(blockHash, 32)!);
  const sigs = signerIndexes.map((i) => {
    const s = set.signers.get(i);
    if (!s) throw new Error(`validator ${i} is not in the set`);
    return s.sign(message);
  });
  return { number, blockHash, view, signers: [...signerIndexes], aggregateSignature: to0x(blsAggregateSignatures(sigs)!) };
}

export interface TxOutcome {
  status: 'ok' | 'rejected';
  code: number;
  log: string;
  events: Event[];
}

export interface CommitOptions {
  /** the set that signs the next block, when it changes */
  nextSet?: TestValidatorSet;
  /** who signs this block's certificate (default: the first quorum of the set) */
  signers?: number[];
  outcomes?: TxOutcome[];
  timestamp?: number;
}

export class MemoryChain implements ChainReader {
  readonly blocks: StoredBlock[] = [];
  readonly certificates = new Map<number, CommitCertificate>();
  readonly txs = new Map<string, StoredTx>();
  readonly receipts = new Map<string, Receipt>();
  readonly receiptsByBlock = new Map<number, Receipt[]>();
  /** sets[h] signs block h */
  private readonly sets: TestValidatorSet[] = [];
  private readonly totalsNow: TxTotals = { transactions: 0, rejected: 0 };

  constructor(
    readonly chain: string,
    genesisSet: TestValidatorSet,
    readonly genesisTime = 1_700_000_000_000,
  ) {
    const vh = validatorsHash(genesisSet.validators);
    const empty = to0x(sha256());
    const header: Header = {
      chain,
      number: 0,
      parentHash: ZERO_HASH,
      timestamp: genesisTime,
      proposer: 0,
      txCount: 0,
      txRoot: empty,
      receiptRoot: empty,
      appHash: to0x(sha256(utf8('app/0'))),
      validatorsHash: vh,
      nextValidatorsHash: vh,
    };
    this.blocks.push({ header, hash: to0x(headerHash(header)), view: 0, txHashes: [] });
    this.sets.push(genesisSet, genesisSet);
    this.receiptsByBlock.set(0, []);
  }

  get genesisHash(): string {
    return this.blocks[0]!.hash;
  }

  setAt(height: number): TestValidatorSet {
    const s = this.sets[height];
    if (!s) throw new Error(`no validator set known for block ${height}`);
    return s;
  }

  validatorsAt(height: number): Validator[] {
    return this.setAt(height).validators;
  }

  /** Appends a block of `txs` with a real certificate; returns what a node's onBlock would see. */
  commit(txs: Uint8Array[], options: CommitOptions = {}): { block: StoredBlock; receipts: Receipt[]; certificate: CommitCertificate } {
    const number = this.blocks.length;
    const parent = this.blocks[number - 1]!;
    const set = this.setAt(number);
    const next = options.nextSet ?? set;
    const hashes = txs.map(txHash);
    const receipts: Receipt[] = hashes.map((hash, index) => {
      const o = options.outcomes?.[index] ?? { status: 'ok' as const, code: 0, log: '', events: [{ type: 'test', attributes: { n: String(index) } }] };
      return { hash, blockNumber: number, index, status: o.status, code: o.code, log: o.log, events: o.events };
    });
    const header: Header = {
      chain: this.chain,
      number,
      parentHash: parent.hash,
      timestamp: options.timestamp ?? this.genesisTime + number * 1000,
      proposer: set.validators[number % set.validators.length]!.index,
      txCount: txs.length,
      txRoot: to0x(merkleRoot(hashes.map((h) => from0x(h, 32)!))),
      receiptRoot: to0x(merkleRoot(receipts.map((r) => receiptHash({ txHash: r.hash, status: r.status, code: r.code, log: r.log, events: r.events })))),
      appHash: to0x(sha256(utf8(`app/${number}`))),
      validatorsHash: validatorsHash(set.validators),
      nextValidatorsHash: validatorsHash(next.validators),
    };
    const block: StoredBlock = { header, hash: to0x(headerHash(header)), view: 0, txHashes: hashes };
    const quorum = quorumSize(set.validators.length);
    const signers = options.signers ?? set.validators.slice(0, quorum).map((v) => v.index);
    const certificate = certify(set, number, block.hash, signers);
    this.blocks.push(block);
    this.certificates.set(number, certificate);
    this.sets[number + 1] = next;
    txs.forEach((bytes, index) => this.txs.set(hashes[index]!, { blockNumber: number, index, bytes }));
    for (const r of receipts) {
      this.receipts.set(r.hash, r);
      this.totalsNow.transactions++;
      if (r.status === 'rejected') this.totalsNow.rejected++;
    }
    this.receiptsByBlock.set(number, receipts);
    return { block, receipts, certificate };
  }

  latestHeight(): number {
    return this.blocks.length - 1;
  }
  async getBlock(height: number): Promise<StoredBlock | null> {
    return this.blocks[height] ?? null;
  }
  async getHeightByHash(hash: string): Promise<number | null> {
    const i = this.blocks.findIndex((b) => b.hash === hash);
    return i < 0 ? null : i;
  }
  async getCertificate(height: number): Promise<CommitCertificate | null> {
    return this.certificates.get(height) ?? null;
  }
  async getTx(hash: string): Promise<StoredTx | null> {
    return this.txs.get(hash) ?? null;
  }
  async hasTx(hash: string): Promise<boolean> {
    return this.txs.has(hash);
  }
  async getReceipt(hash: string): Promise<Receipt | null> {
    return this.receipts.get(hash) ?? null;
  }
  async getBlockReceipts(height: number): Promise<Receipt[]> {
    return this.receiptsByBlock.get(height) ?? [];
  }
  totals(): TxTotals {
    return { ...this.totalsNow };
  }
}
