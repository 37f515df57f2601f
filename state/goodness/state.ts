// The ledger's state as layers: the committed map at the bottom, one layer of changes per block
// that is executed but not yet committed (so the next block can execute before the previous one
// is durable), the block being executed, and on top the writes of the transaction being
// executed, which are kept only if it succeeds. A deleted key is a change to null.

export interface StateView {
  get(key: string): unknown;
}

interface PendingLayer {
  height: number;
  appHash: string;
  changes: Map<string, unknown>;
}

export class LedgerState {
  private committed = new Map<string, unknown>();
  private pending: PendingLayer[] = [];
  height = 0;
  appHash = '';

  /** Replaces everything: `entries` is the committed state at `height`. */
  reset(entries: Map<string, unknown>, height: number, appHash: string): void {
    this.committed = entries;
    this.pending = [];
    this.height = height;
    this.appHash = appHash;
  }

  getCommitted(key: string): unknown {
    return this.committed.get(key);
  }

  /** Committed entries whose key starts with `prefix` (load-time indexing; not for the hot path). */
  *committedEntries(prefix: string): Iterable<[string, unknown]> {
    for (const entry of this.committed) if (entry[0].startsWith(prefix)) yield entry;
  }

  /**
   * Starts executing block `height`: pending blocks at that height or above are dropped (a
   * re-execution replaces them), and the block reads through the remaining ones.
   */
  beginBlock(height: number): BlockChanges {
    this.pending = this.pending.filter((l) => l.height < height);
    const tip = this.pending.at(-1);
    const tipHeight = tip ? tip.height : this.height;
    if (height !== tipHeight + 1) throw new Error(`goodness: cannot execute block ${height} on top of ${tipHeight}`);
    const below = [...this.pending].reverse();
    const committed = this.committed;
    const read = (key: string): unknown => {
      for (const layer of below) {
        if (layer.changes.has(key)) {
          const v = layer.changes.get(key);
          return v === null ? undefined : v;
        }
      }
      return committed.get(key);
    };
    return new BlockChanges(height, tip ? tip.appHash : this.appHash, read);
  }

  /** Keeps an executed block as pending until the engine commits it. */
  addPending(block: BlockChanges, appHash: string): void {
    this.pending.push({ height: block.height, appHash, changes: block.changes });
  }

  commit(height: number): void {
    const layer = this.pending[0];
    if (!layer || layer.height !== height) {
      throw new Error(`goodness: commit(${height}) but the oldest executed block is ${layer ? layer.height : 'none'}`);
    }
    this.pending.shift();
    for (const [key, value] of layer.changes) {
      if (value === null) this.committed.delete(key);
      else this.committed.set(key, value);
    }
    this.height = height;
    this.appHash = layer.appHash;
  }
}

/** The changes of the block being executed, over the state below it. */
export class BlockChanges implements StateView {
  readonly changes = new Map<string, unknown>();
  constructor(
    readonly height: number,
    readonly previousAppHash: string,
    private readonly below: (key: string) => unknown,
  ) {}

  get(key: string): unknown {
    const v = this.changes.get(key);
    if (v !== undefined) return v === null ? undefined : v;
    return this.below(key);
  }

  put(key: string, value: unknown): void {
    if (value === null || value === undefined) throw new TypeError(`state value for ${key} must not be null`);
    this.changes.set(key, value);
  }

  delete(key: string): void {
    this.changes.set(key, null);
  }
}

/** One transaction's writes: applied to the block only when the transaction succeeds. */
export class TxScope implements StateView {
  private readonly writes = new Map<string, unknown>();
  constructor(private readonly block: BlockChanges) {}

  get(key: string): unknown {
    const v = this.writes.get(key);
    if (v !== undefined) return v === null ? undefined : v;
    return this.block.get(key);
  }

  put(key: string, value: unknown): void {
    if (value === null || value === undefined) throw new TypeError(`state value for ${key} must not be null`);
    this.writes.set(key, value);
  }

  delete(key: string): void {
    this.writes.set(key, null);
  }

  /** Keeps the transaction's writes: called only when it succeeded. */
  apply(): void {
    for (const [key, value] of this.writes) this.block.changes.set(key, value);
  }
}
