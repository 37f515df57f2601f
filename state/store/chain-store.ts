// Typed repositories over the bytes-only store, one 1-byte key prefix each (DESIGN.md), heights
// big-endian so that range scans come back in order. A committed block is one atomic batch:
// block and certificate, then transactions and receipts, then state, then the head record. A
// process killed at any moment restarts with every committed block and never half of one.
import type { CommitCertificate } from '../../consensus/chain/types.ts';
import { from0x, fromUtf8, utf8 } from '../../consensus/crypto/encoding.ts';
import type { StateReader } from '../machine.ts';
import { prefixEnd, type KvOp, type KvStore } from './kv-store.ts';
import type { BlockCommit, ChainReader, Receipt, StoredBlock, StoredTx, TxTotals } from './types.ts';

/** One byte per bucket; the letters make a raw dump readable. */
export const Bucket = {
  META: 0x4d, // 'M' name -> JSON
  BLOCK: 0x48, // 'H' height -> StoredBlock JSON
  BLOCK_BY_HASH: 0x4e, // 'N' block hash -> height
  CERTIFICATE: 0x43, // 'C' height -> CommitCertificate JSON
  TX: 0x54, // 'T' tx hash -> height (8) ‖ index (4) ‖ tx length (4) ‖ tx bytes ‖ receipt core JSON
  STATE: 0x53, // 'S' machine-owned key -> value
  CONSENSUS: 0x56, // 'V' the replica's own promises (votes, prepared certificates): PBFT
} as const;

interface Head extends TxTotals {
  height: number;
}

function key(bucket: number, suffix: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + suffix.length);
  k[0] = bucket;
  k.set(suffix, 1);
  return k;
}

function heightBytes(height: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(height));
  return b;
}

function hashBytes(hash: string): Uint8Array | null {
  return from0x(hash, 32);
}

function json(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

function parse<T>(bytes: Uint8Array | undefined): T | null {
  return bytes === undefined ? null : (JSON.parse(fromUtf8(bytes)) as T);
}

const HEAD_KEY = key(Bucket.META, utf8('head'));

/** Hashes the node made itself (not a client's input): decoded without re-validating. */
function trustedHashBytes(hash: string): Uint8Array {
  return Buffer.from(hash.slice(2), 'hex');
}

/**
 * A transaction and its receipt share one record: one put per transaction on the commit path,
 * and one read for either. The receipt keeps only what its key and position do not already say.
 */
function encodeTxRecord(height: number, index: number, tx: Uint8Array, r: Receipt): Uint8Array {
  const receipt = Buffer.from(JSON.stringify([r.status, r.code, r.log, r.events]));
  const out = Buffer.allocUnsafe(16 + tx.length + receipt.length);
  out.writeBigUInt64BE(BigInt(height), 0);
  out.writeUInt32BE(index, 8);
  out.writeUInt32BE(tx.length, 12);
  out.set(tx, 16);
  out.set(receipt, 16 + tx.length);
  return out;
}

function decodeTxRecord(hash: string, v: Uint8Array): { tx: StoredTx; receipt: Receipt } {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const blockNumber = Number(b.readBigUInt64BE(0));
  const index = b.readUInt32BE(8);
  const txLength = b.readUInt32BE(12);
  const [status, code, log, events] = JSON.parse(b.subarray(16 + txLength).toString('utf8')) as [Receipt['status'], number, string, Receipt['events']];
  return { tx: { blockNumber, index, bytes: b.subarray(16, 16 + txLength) }, receipt: { hash, blockNumber, index, status, code, log, events } };
}

/** What a write was for: a committed block's batch, or the replica's own records (votes, views, block transactions). */
export type StoreWriteKind = 'block' | 'consensus';

/** Told the duration of each timed write (seconds); the node turns it into a histogram. */
export type StoreWriteObserver = (kind: StoreWriteKind, seconds: number) => void;

export class ChainStore implements ChainReader {
  private head: Head = { height: 0, transactions: 0, rejected: 0 };
  private writeObserver: StoreWriteObserver | null = null;

  private constructor(readonly kv: KvStore) {}

  static async open(kv: KvStore): Promise<ChainStore> {
    const store = new ChainStore(kv);
    store.head = parse<Head>(await kv.get(HEAD_KEY)) ?? store.head;
    return store;
  }

  /** Times every block commit and consensus-record write from now on (one observer; null stops it). */
  observeWrites(observer: StoreWriteObserver | null): void {
    this.writeObserver = observer;
  }

  /** One atomic batch, timed for the observer when there is one. */
  private async timedWrite(kind: StoreWriteKind, ops: KvOp[]): Promise<void> {
    const observer = this.writeObserver;
    if (!observer) return this.kv.write(ops);
    const started = performance.now();
    await this.kv.write(ops);
    try {
      observer(kind, (performance.now() - started) / 1000);
    } catch {
      // A metrics observer must never fail a durable write.
    }
  }

  latestHeight(): number {
    return this.head.height;
  }

  totals(): TxTotals {
    return { transactions: this.head.transactions, rejected: this.head.rejected };
  }

  async getBlock(height: number): Promise<StoredBlock | null> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.head.height) return null;
    return parse<StoredBlock>(await this.kv.get(key(Bucket.BLOCK, heightBytes(height))));
  }

  async getHeightByHash(hash: string): Promise<number | null> {
    const h = hashBytes(hash);
    if (!h) return null;
    const v = await this.kv.get(key(Bucket.BLOCK_BY_HASH, h));
    return v ? Number(new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0)) : null;
  }

  async getCertificate(height: number): Promise<CommitCertificate | null> {
    if (!Number.isSafeInteger(height) || height < 1 || height > this.head.height) return null;
    return parse<CommitCertificate>(await this.kv.get(key(Bucket.CERTIFICATE, heightBytes(height))));
  }

  async getTx(hash: string): Promise<StoredTx | null> {
    const h = hashBytes(hash);
    if (!h) return null;
    const v = await this.kv.get(key(Bucket.TX, h));
    return v ? decodeTxRecord(hash, v).tx : null;
  }

  /**
   * Whether a transaction is committed. Admission asks this once per transaction; the
   * lookups made in one tick (a JSON-RPC batch) go to RocksDB as one multi-get, since a
   * RocksDB call costs far more than a key.
   */
  hasTx(hash: string): Promise<boolean> {
    const h = hashBytes(hash);
    if (!h) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      if (this.pendingLookups.length === 0) setImmediate(() => this.flushLookups());
      this.pendingLookups.push({ key: key(Bucket.TX, h), resolve, reject });
    });
  }

  private pendingLookups: { key: Uint8Array; resolve: (found: boolean) => void; reject: (err: unknown) => void }[] = [];

  private flushLookups(): void {
    const lookups = this.pendingLookups;
    this.pendingLookups = [];
    this.kv.getMany(lookups.map((l) => l.key)).then(
      (values) => values.forEach((v, i) => lookups[i]!.resolve(v !== undefined)),
      (err: unknown) => lookups.forEach((l) => l.reject(err)),
    );
  }

  /** Which of these hashes are already committed (one round trip for a whole proposal). */
  async committedAmong(hashes: string[]): Promise<Set<string>> {
    const keys = hashes.map((h) => key(Bucket.TX, hashBytes(h) ?? new Uint8Array(32)));
    const found = await this.kv.getMany(keys);
    const out = new Set<string>();
    found.forEach((v, i) => v !== undefined && out.add(hashes[i]!));
    return out;
  }

  async getReceipt(hash: string): Promise<Receipt | null> {
    const h = hashBytes(hash);
    const v = h ? await this.kv.get(key(Bucket.TX, h)) : undefined;
    return v ? decodeTxRecord(hash, v).receipt : null;
  }

  async getBlockReceipts(height: number): Promise<Receipt[]> {
    const block = await this.getBlock(height);
    if (!block || block.txHashes.length === 0) return [];
    const values = await this.kv.getMany(block.txHashes.map((h) => key(Bucket.TX, trustedHashBytes(h))));
    return values.map((v, i) => {
      if (!v) throw new Error(`store is missing transaction ${block.txHashes[i]} of block ${height}`);
      return decodeTxRecord(block.txHashes[i]!, v).receipt;
    });
  }

  /** The machine's view of its own bucket. */
  stateReader(): StateReader {
    return {
      get: (k) => this.kv.get(key(Bucket.STATE, k)),
      entries: (prefix) => this.stateEntries(prefix),
    };
  }

  private async *stateEntries(prefix: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    const from = key(Bucket.STATE, prefix);
    for await (const [k, v] of this.kv.range(from, prefixEnd(from))) yield [k.subarray(1), v];
  }

  /** Writes a committed block and everything it produced in one atomic batch. */
  async commitBlock(c: BlockCommit): Promise<void> {
    const height = c.block.header.number;
    if (height !== this.head.height + 1) throw new Error(`commitBlock: expected height ${this.head.height + 1}, got ${height}`);
    if (c.txs.length !== c.block.txHashes.length || c.receipts.length !== c.txs.length) {
      throw new Error('commitBlock: transactions, hashes and receipts differ in number');
    }
    const hb = heightBytes(height);
    const ops: KvOp[] = [
      { type: 'put', key: key(Bucket.BLOCK, hb), value: json(c.block) },
      { type: 'put', key: key(Bucket.BLOCK_BY_HASH, hashBytes(c.block.hash)!), value: hb },
      { type: 'put', key: key(Bucket.CERTIFICATE, hb), value: json(c.certificate) },
    ];
    let rejected = 0;
    for (let i = 0; i < c.txs.length; i++) {
      const r = c.receipts[i]!;
      ops.push({ type: 'put', key: key(Bucket.TX, trustedHashBytes(c.block.txHashes[i]!)), value: encodeTxRecord(height, i, c.txs[i]!, r) });
      if (r.status === 'rejected') rejected++;
    }
    for (const [k, v] of c.stateWrites) {
      ops.push(v === null ? { type: 'del', key: key(Bucket.STATE, k) } : { type: 'put', key: key(Bucket.STATE, k), value: v });
    }
    for (const m of c.meta ?? []) ops.push({ type: 'put', key: key(Bucket.META, utf8(m.name)), value: json(m.value) });
    const head: Head = { height, transactions: this.head.transactions + c.txs.length, rejected: this.head.rejected + rejected };
    ops.push({ type: 'put', key: HEAD_KEY, value: json(head) });
    await this.timedWrite('block', ops);
    this.head = head;
  }

  /** Writes block 0 (the genesis header) once, on a fresh store. */
  async writeGenesis(block: StoredBlock): Promise<void> {
    const hb = heightBytes(0);
    await this.kv.write([
      { type: 'put', key: key(Bucket.BLOCK, hb), value: json(block) },
      { type: 'put', key: key(Bucket.BLOCK_BY_HASH, hashBytes(block.hash)!), value: hb },
      { type: 'put', key: HEAD_KEY, value: json(this.head) },
    ]);
  }

  /**
   * The replica's own promises (votes, prepared certificates, its view), written before the
   * messages that depend on them are sent. One atomic batch per call.
   */
  async putConsensusRecords(records: { key: string; bytes: Uint8Array }[], deleteKeys: string[] = []): Promise<void> {
    const ops: KvOp[] = deleteKeys.map((k) => ({ type: 'del', key: key(Bucket.CONSENSUS, utf8(k)) }));
    for (const r of records) ops.push({ type: 'put', key: key(Bucket.CONSENSUS, utf8(r.key)), value: r.bytes });
    await this.timedWrite('consensus', ops);
  }

  async consensusRecord(name: string): Promise<Uint8Array | undefined> {
    return this.kv.get(key(Bucket.CONSENSUS, utf8(name)));
  }

  async consensusRecords(): Promise<{ key: string; bytes: Uint8Array }[]> {
    const from = new Uint8Array([Bucket.CONSENSUS]);
    const out: { key: string; bytes: Uint8Array }[] = [];
    for await (const [k, v] of this.kv.range(from, prefixEnd(from))) out.push({ key: fromUtf8(k.subarray(1)), bytes: v });
    return out;
  }

  async getMeta<T>(name: string): Promise<T | null> {
    return parse<T>(await this.kv.get(key(Bucket.META, utf8(name))));
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    await this.kv.write([{ type: 'put', key: key(Bucket.META, utf8(name)), value: json(value) }]);
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
