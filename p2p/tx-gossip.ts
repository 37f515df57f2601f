// Transaction gossip: admitted transactions are batched (by count, bytes and time) and
// broadcast on the `txs` channel; received batches are split and each transaction handed to
// the node, which runs admission on it. Validators form a full mesh, so a received transaction
// is never gossiped again: its origin already sent it to everyone.
//
// Batch body: u32 count, then per transaction u32 length and the bytes (all big-endian).
import type { Transport } from './types.ts';

/** What gossip needs of a transport (an in-memory network can provide it too). */
export type GossipTransport = Pick<Transport, 'broadcast' | 'onMessage'> & Partial<Pick<Transport, 'penalize'>>;

export interface TxGossipOptions {
  /** called for each transaction received from a peer */
  onTx: (tx: Uint8Array, fromIndex: number) => void;
  /** flush when this many transactions are waiting */
  maxBatchTxs?: number;
  /** flush when the batch body would pass this many bytes (keep it under the frame limit) */
  maxBatchBytes?: number;
  /** flush what is waiting this long after the first transaction of a batch */
  flushMs?: number;
}

export interface TxGossipStats {
  batchesSent: number;
  txsSent: number;
  batchesReceived: number;
  txsReceived: number;
  malformedBatches: number;
  /** transactions too large for a batch on their own */
  oversizedDropped: number;
}

const COUNT_BYTES = 4;
const LENGTH_BYTES = 4;

export function encodeTxBatch(txs: readonly Uint8Array[]): Uint8Array {
  let total = COUNT_BYTES;
  for (const tx of txs) total += LENGTH_BYTES + tx.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, txs.length);
  let at = COUNT_BYTES;
  for (const tx of txs) {
    view.setUint32(at, tx.length);
    out.set(tx, at + LENGTH_BYTES);
    at += LENGTH_BYTES + tx.length;
  }
  return out;
}

/** Splits a batch body; null if it is not exactly a well-formed batch. */
export function decodeTxBatch(body: Uint8Array): Uint8Array[] | null {
  if (body.length < COUNT_BYTES) return null;
  const view = new DataView(body.buffer, body.byteOffset, body.length);
  const count = view.getUint32(0);
  // Each transaction takes at least its length field: reject absurd counts before looping.
  if (count > (body.length - COUNT_BYTES) / LENGTH_BYTES) return null;
  const txs: Uint8Array[] = [];
  let at = COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + LENGTH_BYTES > body.length) return null;
    const len = view.getUint32(at);
    at += LENGTH_BYTES;
    if (len === 0 || at + len > body.length) return null;
    txs.push(body.subarray(at, at + len));
    at += len;
  }
  return at === body.length ? txs : null;
}

export class TxGossip {
  private pending: Uint8Array[] = [];
  private pendingBytes = COUNT_BYTES;
  private timer?: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly maxBatchTxs: number;
  private readonly maxBatchBytes: number;
  private readonly flushMs: number;
  private readonly counters: TxGossipStats = { batchesSent: 0, txsSent: 0, batchesReceived: 0, txsReceived: 0, malformedBatches: 0, oversizedDropped: 0 };

  constructor(
    private readonly transport: GossipTransport,
    private readonly opts: TxGossipOptions,
  ) {
    this.maxBatchTxs = opts.maxBatchTxs ?? 1024;
    this.maxBatchBytes = opts.maxBatchBytes ?? 512 * 1024;
    this.flushMs = opts.flushMs ?? 10;
    this.unsubscribe = transport.onMessage('txs', (from, body) => this.receive(from, body));
  }

  /** Queues an admitted transaction for the next batch. The bytes must not change afterwards. */
  add(tx: Uint8Array): void {
    const size = LENGTH_BYTES + tx.length;
    if (COUNT_BYTES + size > this.maxBatchBytes) {
      this.counters.oversizedDropped++;
      return;
    }
    if (this.pendingBytes + size > this.maxBatchBytes) this.flush();
    this.pending.push(tx);
    this.pendingBytes += size;
    if (this.pending.length >= this.maxBatchTxs) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Broadcasts whatever is waiting now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = encodeTxBatch(this.pending);
    this.counters.batchesSent++;
    this.counters.txsSent += this.pending.length;
    this.pending = [];
    this.pendingBytes = COUNT_BYTES;
    this.transport.broadcast('txs', batch);
  }

  /** Sends what is waiting and stops listening. */
  stop(): void {
    this.flush();
    this.unsubscribe();
  }

  stats(): TxGossipStats {
    return { ...this.counters };
  }

  private receive(fromIndex: number, body: Uint8Array): void {
    const txs = decodeTxBatch(body);
    if (!txs) {
      this.counters.malformedBatches++;
      this.transport.penalize?.(fromIndex, 'malformed_tx_batch');
      return;
    }
    this.counters.batchesReceived++;
    this.counters.txsReceived += txs.length;
    for (const tx of txs) {
      try {
        this.opts.onTx(tx, fromIndex);
      } catch {
        // admission problems are the node's to report; one bad transaction must not stop the batch
      }
    }
  }
}
