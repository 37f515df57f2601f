// One subscription to the node's committed blocks, fanned out to everyone in the RPC layer who
// waits for a transaction's receipt or follows new blocks. Waiting by hash is a map lookup per
// receipt, so thousands of sendTransactionAndWait calls cost no more than one.
import type { Receipt, StoredBlock } from '../state/store/types.ts';
import type { NodeApi } from './node-api.ts';

export type BlockListener = (block: StoredBlock, receipts: Receipt[]) => void;

export interface ReceiptExpectation {
  /** resolves with the receipt when the transaction commits; never rejects */
  readonly receipt: Promise<Receipt>;
  cancel(): void;
}

export class CommitWatch {
  private readonly byHash = new Map<string, Set<(r: Receipt) => void>>();
  private readonly blockListeners = new Set<BlockListener>();
  private unsubscribe: (() => void) | null;

  constructor(private readonly api: NodeApi) {
    this.unsubscribe = api.onBlock((block, receipts) => this.onBlock(block, receipts));
  }

  /** Calls `listener` once when `hash` commits. Returns a cancel function. */
  watchTx(hash: string, listener: (r: Receipt) => void): () => void {
    let set = this.byHash.get(hash);
    if (!set) this.byHash.set(hash, (set = new Set()));
    set.add(listener);
    return () => {
      const s = this.byHash.get(hash);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.byHash.delete(hash);
    };
  }

  /**
   * Expects a transaction's receipt: registered before the caller submits, so a commit that
   * lands between submission and waiting is not missed.
   */
  expect(hash: string): ReceiptExpectation {
    let cancel: () => void = () => {};
    const receipt = new Promise<Receipt>((resolve) => {
      cancel = this.watchTx(hash, resolve);
    });
    return { receipt, cancel };
  }

  /**
   * Calls `listener` once with the receipt of `hash`: at once if it is already committed,
   * else when it commits. Returns a cancel function.
   */
  onceCommitted(hash: string, listener: (r: Receipt) => void): () => void {
    let done = false;
    const fire = (r: Receipt): void => {
      if (done) return;
      done = true;
      cancelWatch();
      listener(r);
    };
    const cancelWatch = this.watchTx(hash, fire);
    this.api.store.getReceipt(hash).then(
      (r) => {
        if (r) fire(r);
      },
      () => {
        // a failing store read leaves the watch in place: the commit notification still comes
      },
    );
    return () => {
      done = true;
      cancelWatch();
    };
  }

  onBlocks(listener: BlockListener): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  get waiting(): number {
    return this.byHash.size;
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.byHash.clear();
    this.blockListeners.clear();
  }

  /** Runs inside the node's commit path: nothing here may throw back into it. */
  private onBlock(block: StoredBlock, receipts: Receipt[]): void {
    if (this.byHash.size > 0) {
      for (const r of receipts) {
        const set = this.byHash.get(r.hash);
        if (!set) continue;
        this.byHash.delete(r.hash);
        for (const listener of set) safely(() => listener(r));
      }
    }
    for (const listener of this.blockListeners) safely(() => listener(block, receipts));
  }
}

function safely(f: () => void): void {
  try {
    f();
  } catch {
    // a listener's failure is its own; the commit path and the other listeners go on
  }
}
