// The bytes-only store (DESIGN.md `KvStore`): RocksDB in production. Everything typed sits
// above it in repositories; nothing above this file knows which database is underneath.
import { RocksLevel } from '@nxtedition/rocksdb';
import { BatchWriter } from './batch-writer.ts';

export type KvOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

export interface KvStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Applies all operations atomically: after a crash, all of them are there or none. */
  write(ops: KvOp[]): Promise<void>;
  /** Entries with gte <= key < lt, in key order. */
  range(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]>;
  /**
   * Every entry in key order, all read through one iterator and hence from one point in time
   * (RocksDB's implicit snapshot, taken when this is called): writes made while the scan runs
   * are not seen, so a store that commits each block as one batch is copied between two blocks.
   * Entries come in chunks of at most `maxEntries` and about `maxBytes`, read off the main
   * thread. Iterate to the end or break out: either closes the iterator.
   */
  scanSnapshot(opts?: { maxEntries?: number; maxBytes?: number }): AsyncIterable<[Uint8Array, Uint8Array][]>;
  close(): Promise<void>;
}

const BUFFERS = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/**
 * The binding's defaults compress the write-ahead log and every table with zstd (dictionary
 * training included): under a goodness load on one node that was about 45 µs of RocksDB
 * background CPU per transaction beside 104 µs of signature check, plus the log's compression
 * on the writing thread. 'level' is RocksDB's level-style tuning (OptimizeLevelStyleCompaction):
 * larger memtables, and compression only from level 2 on, where data is cold; the log is
 * written as it is.
 */
const ROCKS_OPTIONS = { compaction: 'level', walCompression: false } as const;

/**
 * RocksDB through @nxtedition/rocksdb (STACK.md: Level's `rocksdb` aborts on Node 22).
 * Writes are not fsynced: RocksDB's write-ahead log is written before a batch returns, so a
 * process killed with SIGKILL loses nothing; only a power loss of the host could drop the last
 * batches, which the other replicas hold too. Set `sync` for a stand-alone node that must
 * survive power loss.
 */
export class RocksKvStore implements KvStore {
  /** large batches go to a worker thread (batch-writer.ts); writes still land in call order */
  private readonly writer: BatchWriter | null;
  private tail: Promise<unknown> = Promise.resolve();
  private writesInFlight = 0;

  private constructor(
    private readonly db: RocksLevel,
    private readonly sync: boolean,
    offThread: boolean,
  ) {
    // `handle` is missing from the binding's type declarations.
    this.writer = offThread ? new BatchWriter((db as unknown as { handle: bigint }).handle) : null;
  }

  /** `offThread: false` writes every batch on the calling thread (tools that only read or copy). */
  static async open(path: string, opts: { sync?: boolean; offThread?: boolean } = {}): Promise<RocksKvStore> {
    const db = new RocksLevel(path, BUFFERS);
    await db.open({ createIfMissing: true, ...ROCKS_OPTIONS });
    return new RocksKvStore(db, opts.sync ?? false, opts.offThread ?? true);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    // getMany answers undefined for a missing key, where get() throws LEVEL_NOT_FOUND.
    const [v] = await this.getMany([key]);
    return v;
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const vs = (await this.db.getMany(keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength)), BUFFERS)) as (Buffer | undefined)[];
    return vs.map((v) => v ?? undefined);
  }

  async write(ops: KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    const offThread = this.writer !== null && isLarge(ops);
    // Nothing queued: a small batch is written at once, on this thread, as it always was.
    if (!offThread && this.writesInFlight === 0) return this.db.batch(ops, { ...BUFFERS, sync: this.sync });
    const run = () => (offThread ? this.writer!.write(ops, this.sync) : this.db.batch(ops, { ...BUFFERS, sync: this.sync }));
    // One queue, so that batches land in the order they were written.
    const done = this.tail.then(run, run);
    this.tail = done.catch(() => undefined);
    this.writesInFlight++;
    try {
      await done;
    } finally {
      this.writesInFlight--;
    }
  }

  async *range(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    const it = this.db.iterator({ gte: Buffer.from(gte), lt: Buffer.from(lt), ...BUFFERS });
    try {
      for await (const [k, v] of it as AsyncIterable<[Buffer, Buffer]>) yield [k, v];
    } finally {
      await it.close();
    }
  }

  scanSnapshot(opts: { maxEntries?: number; maxBytes?: number } = {}): AsyncIterable<[Uint8Array, Uint8Array][]> {
    // Made here rather than at the first read, so that the snapshot is the caller's moment.
    // nextv (unlike the entry-by-entry iterator, which reads 1000 entries on the main thread)
    // runs on the thread pool and stops at highWaterMarkBytes.
    const it = this.db.iterator({ ...BUFFERS, highWaterMarkBytes: opts.maxBytes ?? 1024 * 1024 }) as unknown as BatchIterator;
    const maxEntries = opts.maxEntries ?? 1000;
    return (async function* () {
      try {
        for (;;) {
          const entries = await it.nextv(maxEntries);
          if (entries.length === 0) return;
          yield entries;
        }
      } finally {
        await it.close();
      }
    })();
  }

  async close(): Promise<void> {
    await this.tail;
    await this.writer?.close();
    await this.db.close();
  }
}

/** Batches worth the trip to the writer thread: a block's commit, its kept transactions. */
const LARGE_OPS = 256;
const LARGE_BYTES = 256 * 1024;

function isLarge(ops: KvOp[]): boolean {
  if (ops.length >= LARGE_OPS) return true;
  let bytes = 0;
  for (const op of ops) {
    bytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
    if (bytes >= LARGE_BYTES) return true;
  }
  return false;
}

/** The part of an abstract-level iterator that scanSnapshot uses (rocksdb.d.ts leaves it out). */
interface BatchIterator {
  nextv(size: number): Promise<[Buffer, Buffer][]>;
  close(): Promise<void>;
}

/** The smallest key greater than every key that starts with `prefix` (for range scans). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}
