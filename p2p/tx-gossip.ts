// Transaction gossip: admitted transactions are batched (by count, bytes and time) and
// broadcast on the `txs` channel; received batches are split and each transaction handed to
// the node, which runs admission on it. Validators form a full mesh, so a received transaction
// is never gossiped again: its origin already sent it to everyone.
//
// Vouches travel on the same channel: a validator designated to verify a transaction
// (cluster/vouching.ts) tells the others "I verified the transaction with this hash" in 32
// bytes, instead of sending the transaction itself a second time (which doubled the gossip's
// bytes and cost every receiver a decryption, a hash and a pool lookup per copy).
//
// Batch body: u32 count, then per transaction u32 length and the bytes (all big-endian).
// Vouch body: u32 0, then one or more 32-byte SHA-256 transaction hashes. (A count of 0 with
// nothing after it is an empty transaction batch.)
import type { Transport } from './types.ts';

/** What gossip needs of a transport (an in-memory network can provide it too). */
export type GossipTransport = Pick<Transport, 'broadcast' | 'onMessage'> & Partial<Pick<Transport, 'penalize'>>;

export interface TxGossipOptions {
  /** called for each transaction received from a peer */
  onTx: (tx: Uint8Array, fromIndex: number) => void;
  /** called for each transaction hash a peer vouched for (it verified that transaction) */
  onVouch?: (txHash: Uint8Array, fromIndex: number) => void;
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
  vouchesSent: number;
  vouchesReceived: number;
}

const COUNT_BYTES = 4;
const LENGTH_BYTES = 4;
const HASH_BYTES = 32;
/** vouches per message at most (32 KiB of hashes) */
const MAX_VOUCHES = 1024;

/** A vouch message: the tag (a count of 0), then the hashes. */
export function encodeVouchBatch(hashes: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(COUNT_BYTES + hashes.length * HASH_BYTES);
  hashes.forEach((h, i) => {
    if (h.length !== HASH_BYTES) throw new Error(`a vouch is a ${HASH_BYTES}-byte hash, got ${h.length} bytes`);
    out.set(h, COUNT_BYTES + i * HASH_BYTES);
  });
  return out;
}

/** The hashes of a vouch message; null when the body is not one (a transaction batch, or malformed). */
export function decodeVouchBatch(body: Uint8Array): Uint8Array[] | null {
  const n = (body.length - COUNT_BYTES) / HASH_BYTES;
  if (!isVouchBody(body) || !Number.isInteger(n)) return null;
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(body.subarray(COUNT_BYTES + i * HASH_BYTES, COUNT_BYTES + (i + 1) * HASH_BYTES));
  return out;
}

/** Whether a `txs` body is tagged as vouches (a count of 0 followed by more bytes). */
function isVouchBody(body: Uint8Array): boolean {
  return body.length > COUNT_BYTES && body[0] === 0 && body[1] === 0 && body[2] === 0 && body[3] === 0;
}

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
  private pendingVouches: Uint8Array[] = [];
  private timer?: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly maxBatchTxs: number;
  private readonly maxBatchBytes: number;
  private readonly flushMs: number;
  private readonly counters: TxGossipStats = { batchesSent: 0, txsSent: 0, batchesReceived: 0, txsReceived: 0, malformedBatches: 0, oversizedDropped: 0, vouchesSent: 0, vouchesReceived: 0 };

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
    if (this.pendingBytes + size > this.maxBatchBytes) this.flushTxs();
    this.pending.push(tx);
    this.pendingBytes += size;
    if (this.pending.length >= this.maxBatchTxs) this.flushTxs();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Queues a vouch (a verified transaction's 32-byte hash) for the next message. */
  vouch(txHash: Uint8Array): void {
    if (txHash.length !== HASH_BYTES) throw new Error(`a vouch is a ${HASH_BYTES}-byte hash, got ${txHash.length} bytes`);
    this.pendingVouches.push(txHash);
    if (this.pendingVouches.length >= MAX_VOUCHES) this.flushVouches();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Broadcasts whatever is waiting now. */
  flush(): void {
    this.stopTimer();
    // Transactions first: a vouch for one is useful only where the transaction has arrived.
    this.flushTxs();
    this.flushVouches();
  }

  private flushVouches(): void {
    if (this.pendingVouches.length === 0) return;
    const batch = encodeVouchBatch(this.pendingVouches);
    this.counters.vouchesSent += this.pendingVouches.length;
    this.pendingVouches = [];
    this.transport.broadcast('txs', batch);
    if (this.pending.length === 0) this.stopTimer();
  }

  private flushTxs(): void {
    if (this.pending.length === 0) return;
    const batch = encodeTxBatch(this.pending);
    this.counters.batchesSent++;
    this.counters.txsSent += this.pending.length;
    this.pending = [];
    this.pendingBytes = COUNT_BYTES;
    this.transport.broadcast('txs', batch);
    // Nothing left waiting: the timer would cut the next batch short.
    if (this.pendingVouches.length === 0) this.stopTimer();
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
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
    if (isVouchBody(body)) {
      this.receiveVouches(fromIndex, body);
      return;
    }
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

  private receiveVouches(fromIndex: number, body: Uint8Array): void {
    const hashes = decodeVouchBatch(body);
    if (!hashes) {
      this.counters.malformedBatches++;
      this.transport.penalize?.(fromIndex, 'malformed_vouch_batch');
      return;
    }
    this.counters.vouchesReceived += hashes.length;
    for (const h of hashes) {
      try {
        this.opts.onVouch?.(h, fromIndex);
      } catch {
        // as for transactions: one bad vouch must not stop the batch
      }
    }
  }
}
