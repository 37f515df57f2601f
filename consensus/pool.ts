// The transaction pool: admitted transactions waiting for a block. Bounded by count and bytes
// (a full pool is the engine's backpressure, -32002), one pending transaction per hash and per
// (sender, nonce) (-32003), at most `maxPerSender` pending per sender so that one busy client
// cannot crowd out the rest, and reaped in arrival order. Every operation is O(1) per
// transaction: a Map keeps arrival order and deletes in place.

import type { SignatureJob } from './crypto/verifier.ts';

export interface PoolEntryInput {
  hash: string;
  bytes: Uint8Array;
  /** the sender, when the state machine has senders (CheckResult.sender) */
  sender?: string;
  nonce?: string;
  /** the last height the transaction may be included at */
  expires?: number;
  /** CheckResult.checked, handed back to the machine at execution; undefined while `unverified` */
  checked: unknown;
  /**
   * Set when the signature was not verified here: validators vouched for the transaction
   * instead (cluster/node.ts, "Vouched transactions"). Such an entry is never reaped into a
   * block until it is verified (markVerified).
   */
  unverified?: UnverifiedTx;
  /**
   * This node does not propose the transaction before then (ms, pool clock) unless `release`
   * comes first. A node holds what its own clients gave it until the validators designated to
   * verify it vouch for it (cluster/node.ts): proposed at once, it would make the other replicas
   * verify it.
   */
  holdUntil?: number;
}

/** A transaction admitted on other validators' word: what verifying it takes, and who vouched. */
export interface UnverifiedTx {
  /** the machine's check, apart from the signature (CheckResult.checked) */
  checked: unknown;
  /** the signature still to verify */
  signature: SignatureJob;
  /** validator indices that sent it (an honest validator gossips only what it verified) */
  vouchers: number[];
  /** a verification is under way */
  verifying?: boolean;
}

export interface PoolEntry extends PoolEntryInput {
  size: number;
  /** ms, from the pool's clock */
  addedAt: number;
}

/** 'full' and 'sender-cap' are backpressure (-32002), 'duplicate' is -32003. */
export type AddResult = 'ok' | 'full' | 'duplicate' | 'sender-cap';

export const ADD_RESULT_RPC_CODE = { full: -32002, 'sender-cap': -32002, duplicate: -32003 } as const;

export interface PoolLimits {
  maxTxs: number;
  maxBytes: number;
  /** pending transactions one sender may have; transactions without a sender are not counted */
  maxPerSender: number;
}

export interface PoolStats {
  size: number;
  bytes: number;
  senders: number;
  added: number;
  refusedDuplicate: number;
  refusedFull: number;
  refusedSenderCap: number;
  removedCommitted: number;
  removedExpired: number;
}

export class TxPool {
  /** arrival order: a Map iterates in insertion order */
  private readonly byHash = new Map<string, PoolEntry>();
  private readonly bySenderNonce = new Map<string, string>();
  private readonly pendingPerSender = new Map<string, number>();
  private readonly byExpiry = new Map<number, Set<string>>();
  /** the entries with `unverified`, in arrival order */
  private readonly unverifiedHashes = new Set<string>();
  /** the entries with `holdUntil`, in arrival order */
  private readonly heldHashes = new Set<string>();
  private readonly listeners = new Set<(entry: PoolEntry) => void>();
  private readonly committedListeners = new Set<(waitedMs: readonly number[]) => void>();
  private totalBytes = 0;
  private readonly counters = { added: 0, refusedDuplicate: 0, refusedFull: 0, refusedSenderCap: 0, removedCommitted: 0, removedExpired: 0 };

  constructor(
    readonly limits: PoolLimits,
    private readonly now: () => number = Date.now,
  ) {
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`pool limit ${name} must be a positive integer, got ${v}`);
    }
  }

  get size(): number {
    return this.byHash.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(hash: string): PoolEntry | undefined {
    return this.byHash.get(hash);
  }

  has(hash: string): boolean {
    return this.byHash.has(hash);
  }

  hasSenderNonce(sender: string, nonce: string): boolean {
    return this.bySenderNonce.has(senderNonceKey(sender, nonce));
  }

  /** Whether a transaction of `size` bytes would be refused as 'full' now (a cheap early answer). */
  isFull(size = 0): boolean {
    return this.byHash.size >= this.limits.maxTxs || this.totalBytes + size > this.limits.maxBytes;
  }

  add(input: PoolEntryInput): AddResult {
    const snKey = input.sender !== undefined && input.nonce !== undefined ? senderNonceKey(input.sender, input.nonce) : null;
    if (this.byHash.has(input.hash) || (snKey !== null && this.bySenderNonce.has(snKey))) {
      this.counters.refusedDuplicate++;
      return 'duplicate';
    }
    if (input.sender !== undefined && (this.pendingPerSender.get(input.sender) ?? 0) >= this.limits.maxPerSender) {
      this.counters.refusedSenderCap++;
      return 'sender-cap';
    }
    const size = input.bytes.length;
    if (this.isFull(size)) {
      this.counters.refusedFull++;
      return 'full';
    }
    const entry: PoolEntry = { ...input, size, addedAt: this.now() };
    this.byHash.set(entry.hash, entry);
    this.totalBytes += size;
    if (snKey !== null) this.bySenderNonce.set(snKey, entry.hash);
    if (entry.sender !== undefined) this.pendingPerSender.set(entry.sender, (this.pendingPerSender.get(entry.sender) ?? 0) + 1);
    if (entry.expires !== undefined) {
      const bucket = this.byExpiry.get(entry.expires);
      if (bucket) bucket.add(entry.hash);
      else this.byExpiry.set(entry.expires, new Set([entry.hash]));
    }
    this.counters.added++;
    if (entry.unverified) this.unverifiedHashes.add(entry.hash);
    if (entry.holdUntil !== undefined) this.heldHashes.add(entry.hash);
    if (this.proposable(entry)) this.notifyAdded(entry);
    return 'ok';
  }

  private notifyAdded(entry: PoolEntry): void {
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch {
        // A listener (the block producer waking up) must never make admission fail.
      }
    }
  }

  /** Whether this node may put the entry into a block (listeners hear of an entry when it becomes so). */
  private proposable(entry: PoolEntry): boolean {
    return entry.unverified === undefined && entry.holdUntil === undefined;
  }

  /** An unverified entry's signature verified: it may now go into a block (listeners hear of it as added). */
  markVerified(hash: string): void {
    const entry = this.byHash.get(hash);
    if (!entry?.unverified) return;
    entry.checked = entry.unverified.checked;
    entry.unverified = undefined;
    this.unverifiedHashes.delete(hash);
    if (this.proposable(entry)) this.notifyAdded(entry);
  }

  /** Ends a held entry's hold (its vouches came); nothing for any other. */
  release(hash: string): void {
    const entry = this.byHash.get(hash);
    if (entry?.holdUntil === undefined) return;
    entry.holdUntil = undefined;
    this.heldHashes.delete(hash);
    if (this.proposable(entry)) this.notifyAdded(entry);
  }

  /** Ends the holds that are over at `now` (pool clock); returns how many. */
  releaseDue(now = this.now()): number {
    let released = 0;
    // Arrival order is hold order as long as every hold is as long; a longer one only delays those
    // behind it. Deleting the entry being visited from a Set does not disturb the iteration.
    for (const hash of this.heldHashes) {
      if (this.byHash.get(hash)!.holdUntil! > now) break;
      this.release(hash);
      released++;
    }
    return released;
  }

  get heldCount(): number {
    return this.heldHashes.size;
  }

  /** Drops a pending transaction (an unverified one whose signature failed); true if it was here. */
  discard(hash: string): boolean {
    return this.remove(hash) !== undefined;
  }

  /** Unverified entries not being verified already, oldest first, at most `max`; with `addedBefore`, only those admitted before then (pool clock). */
  unverified(max: number, addedBefore = Infinity): PoolEntry[] {
    const out: PoolEntry[] = [];
    for (const hash of this.unverifiedHashes) {
      if (out.length >= max) break;
      const entry = this.byHash.get(hash)!;
      if (entry.addedAt >= addedBefore) break;
      if (!entry.unverified!.verifying) out.push(entry);
    }
    return out;
  }

  get unverifiedCount(): number {
    return this.unverifiedHashes.size;
  }

  /**
   * The transactions for the next block, oldest first, without removing them: at most `maxTxs`
   * and `maxBytes`. With `height`, transactions that expire before it are skipped. Reaping stops
   * at the first transaction that does not fit, so that arrival order is kept; one that could
   * never fit a block is skipped, as are unverified and held ones. With `addedBy`, only
   * transactions admitted by then (pool clock).
   */
  reap(maxTxs: number, maxBytes: number, height?: number, addedBy?: number): PoolEntry[] {
    const out: PoolEntry[] = [];
    let bytes = 0;
    if (maxTxs <= 0) return out;
    for (const entry of this.byHash.values()) {
      // Arrival order: every later entry was added later still.
      if (addedBy !== undefined && entry.addedAt > addedBy) break;
      if (!this.proposable(entry)) continue;
      if (height !== undefined && entry.expires !== undefined && entry.expires < height) continue;
      if (entry.size > maxBytes) continue;
      if (bytes + entry.size > maxBytes) break;
      out.push(entry);
      bytes += entry.size;
      if (out.length >= maxTxs) break;
    }
    return out;
  }

  /**
   * After a block commits: drops its transactions, and with `nextHeight` every transaction that
   * can no longer be included (expires < nextHeight). Returns how many left the pool.
   */
  removeCommitted(hashes: Iterable<string>, nextHeight?: number): number {
    let removed = 0;
    // Waiting times are gathered only when someone listens (the commit latency histogram).
    const waited: number[] | null = this.committedListeners.size > 0 ? [] : null;
    const now = waited ? this.now() : 0;
    for (const hash of hashes) {
      const entry = this.remove(hash);
      if (!entry) continue;
      removed++;
      waited?.push(now - entry.addedAt);
    }
    this.counters.removedCommitted += removed;
    if (waited && waited.length > 0) {
      for (const listener of this.committedListeners) {
        try {
          listener(waited);
        } catch {
          // Metrics must never make a commit fail.
        }
      }
    }
    if (nextHeight !== undefined) removed += this.pruneExpired(nextHeight);
    return removed;
  }

  /** Drops every transaction whose `expires` is below `nextHeight`. */
  pruneExpired(nextHeight: number): number {
    let removed = 0;
    for (const [expires, hashes] of [...this.byExpiry]) {
      if (expires >= nextHeight) continue;
      for (const hash of [...hashes]) if (this.remove(hash)) removed++;
    }
    this.counters.removedExpired += removed;
    return removed;
  }

  /** Calls back after each transaction added (the block producer wakes up); returns an unsubscribe function. */
  onAdded(listener: (entry: PoolEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls back once per removeCommitted with how long each committed transaction waited here
   * since admission (ms, the pool's clock), in one array: a commit of 10,000 transactions is one
   * call. Returns an unsubscribe function.
   */
  onCommitted(listener: (waitedMs: readonly number[]) => void): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }

  /** Pending transactions that arrived before `before` (ms), oldest first, at most `max`. */
  olderThan(before: number, max: number): PoolEntry[] {
    const out: PoolEntry[] = [];
    for (const e of this.byHash.values()) {
      if (e.addedAt >= before || out.length >= max) break;
      out.push(e);
    }
    return out;
  }

  /** Arrival time of the oldest pending transaction, for the block-time cut; now when empty (nothing has waited). */
  oldestAddedAt(): number {
    for (const entry of this.byHash.values()) return entry.addedAt;
    return this.now();
  }

  stats(): PoolStats {
    return { size: this.byHash.size, bytes: this.totalBytes, senders: this.pendingPerSender.size, ...this.counters };
  }

  private remove(hash: string): PoolEntry | undefined {
    const entry = this.byHash.get(hash);
    if (!entry) return undefined;
    this.byHash.delete(hash);
    this.unverifiedHashes.delete(hash);
    this.heldHashes.delete(hash);
    this.totalBytes -= entry.size;
    if (entry.sender !== undefined) {
      if (entry.nonce !== undefined) this.bySenderNonce.delete(senderNonceKey(entry.sender, entry.nonce));
      const left = (this.pendingPerSender.get(entry.sender) ?? 1) - 1;
      if (left === 0) this.pendingPerSender.delete(entry.sender);
      else this.pendingPerSender.set(entry.sender, left);
    }
    if (entry.expires !== undefined) {
      const bucket = this.byExpiry.get(entry.expires);
      if (bucket) {
        bucket.delete(hash);
        if (bucket.size === 0) this.byExpiry.delete(entry.expires);
      }
    }
    return entry;
  }
}

function senderNonceKey(sender: string, nonce: string): string {
  // A NUL cannot occur in an account id or a tx.md nonce, so the pair is unambiguous.
  return sender + '\u0000' + nonce;
}
