// Large RocksDB batches written on a worker thread. @nxtedition/rocksdb writes a batch
// synchronously on the calling thread (STACK.md), so committing a block of 5,000 transactions
// held a node's event loop for 100-700 ms under load: consensus messages, RPC and gossip all
// waited, and replicas took each other for dead. The worker opens the same database through the
// binding's shared handle (no second open: RocksDB would refuse the lock), so a write there is
// the same atomic write; the main thread only packs the batch into one buffer and waits.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { KvOp } from './kv-store.ts';

// Plain JavaScript, given as source, so that it loads the same way from tsx or compiled files.
const WRITER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
// Named for top, perf and /proc (Linux; elsewhere this does nothing): all of a node's threads are "node" otherwise.
try { require('node:fs').writeFileSync('/proc/thread-self/comm', 'gdn:writer'); } catch {}
const { RocksLevel } = require(workerData.module);
// Attached by handle: the database is the main thread's; this thread never closes it.
const db = new RocksLevel(workerData.handle);
const ready = db.open();
const BUFFERS = { keyEncoding: 'buffer', valueEncoding: 'buffer' };
parentPort.on('message', async ({ id, packed, sync }) => {
  try {
    await ready;
    const bytes = Buffer.from(packed);
    const ops = [];
    let at = 4;
    const count = bytes.readUInt32BE(0);
    for (let i = 0; i < count; i++) {
      const type = bytes[at];
      const keyLength = bytes.readUInt32BE(at + 1);
      const key = bytes.subarray(at + 5, at + 5 + keyLength);
      at += 5 + keyLength;
      if (type === 0) {
        ops.push({ type: 'del', key });
        continue;
      }
      const valueLength = bytes.readUInt32BE(at);
      ops.push({ type: 'put', key, value: bytes.subarray(at + 4, at + 4 + valueLength) });
      at += 4 + valueLength;
    }
    await db.batch(ops, { ...BUFFERS, sync });
    // RocksDB has copied the batch: the buffer goes back, for the next one.
    parentPort.postMessage({ id, packed }, [packed]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.stack || err) });
  }
});
`;

/**
 * One buffer for the whole batch: crossing threads copies nothing else (the buffer is
 * transferred). Written into `spare` when it is large enough (the count says where the batch
 * ends); otherwise into a new buffer with room to grow, so that the next block's batch fits.
 */
export function packOps(ops: readonly KvOp[], spare: ArrayBuffer | null = null): ArrayBuffer {
  let size = 4;
  for (const op of ops) size += 5 + op.key.length + (op.type === 'put' ? 4 + op.value.length : 0);
  const out = spare !== null && spare.byteLength >= size ? Buffer.from(spare) : Buffer.allocUnsafeSlow(spare === null ? size : Math.ceil(size * 1.25));
  out.writeUInt32BE(ops.length, 0);
  let at = 4;
  for (const op of ops) {
    out[at] = op.type === 'put' ? 1 : 0;
    out.writeUInt32BE(op.key.length, at + 1);
    out.set(op.key, at + 5);
    at += 5 + op.key.length;
    if (op.type === 'put') {
      out.writeUInt32BE(op.value.length, at);
      out.set(op.value, at + 4);
      at += 4 + op.value.length;
    }
  }
  return out.buffer as ArrayBuffer;
}

export class BatchWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  /**
   * The last batch's buffer, given back by the thread: the next batch is packed into it. A
   * block's batch is megabytes, and a fresh buffer each time is fresh memory the kernel must
   * map and zero page by page (perf: about 1% of the machine, in packOps, at the maximum rate).
   */
  private spare: ArrayBuffer | null = null;
  /** a buffer larger than this (a block synced in bulk) is let go rather than kept */
  private static readonly MAX_SPARE_BYTES = 64 * 2 ** 20;

  /** `handle`: RocksLevel#handle of an open database, which must stay open until close() has returned. */
  constructor(handle: bigint) {
    const module = createRequire(import.meta.url).resolve('@nxtedition/rocksdb');
    this.worker = new Worker(WRITER_SOURCE, { eval: true, workerData: { module, handle } });
    this.worker.on('message', ({ id, error, packed }: { id: number; error?: string; packed?: ArrayBuffer }) => {
      if (packed !== undefined && packed.byteLength <= BatchWriter.MAX_SPARE_BYTES) this.spare = packed;
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (error) p.reject(new Error(`batch write failed: ${error}`));
      else p.resolve();
      if (this.pending.size === 0) this.worker.unref();
    });
    // A writer that dies fails every write it owed, and every later one: the node must not go on
    // as if blocks were stored.
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the batch writer thread exited (code ${code})`)));
    this.worker.unref();
  }

  write(ops: readonly KvOp[], sync: boolean): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const packed = packOps(ops, this.spare);
    this.spare = null;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Holds the process open only while a write is owed.
      this.worker.ref();
      this.worker.postMessage({ id, packed, sync }, [packed]);
    });
  }

  /** Stops the thread; call once no write is pending (the store awaits its writes first). */
  async close(): Promise<void> {
    this.failure ??= new Error('the batch writer is closed');
    await this.worker.terminate();
  }
}
