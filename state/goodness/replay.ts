// Replay protection (tx.md): (from, nonce) is accepted at most once while the transaction has
// not expired. Each accepted pair is a state record holding its `expires`, so it survives
// restarts; a block at height h deletes the records that expired before h (no transaction with
// such an `expires` can be included any more), so the records stay bounded by what can still
// be replayed. Which records go depends only on the state, never on this index's history.
import type { BlockChanges } from './state.ts';

export class ReplayIndex {
  /** expires -> record keys; may hold stale keys (from re-executed blocks): pruning rechecks the state */
  private readonly byExpiry = new Map<number, string[]>();

  clear(): void {
    this.byExpiry.clear();
  }

  add(expires: number, key: string): void {
    const bucket = this.byExpiry.get(expires);
    if (bucket) bucket.push(key);
    else this.byExpiry.set(expires, [key]);
  }

  /** Deletes, in the block being executed, every record that expired before its height. */
  prune(block: BlockChanges): void {
    for (const [expires, keys] of this.byExpiry) {
      if (expires >= block.height) continue;
      for (const key of keys) {
        const recorded = block.get(key);
        if (typeof recorded === 'number' && recorded < block.height) block.delete(key);
      }
    }
  }

  /** Once block `height` is committed, the records it pruned are gone from the committed state. */
  forgetBefore(height: number): void {
    for (const expires of [...this.byExpiry.keys()]) if (expires < height) this.byExpiry.delete(expires);
  }
}
