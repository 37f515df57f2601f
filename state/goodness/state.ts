// The ledger's state as layers: the committed map at the bottom, one layer of changes per block
// that is executed but not yet committed (so the next block can execute before the previous one
// is durable), the block being executed, and on top the writes of the transaction being
// executed, which are kept only if it succeeds. A deleted key is a change to null.

export interface StateView {
  get(key: string): unknown;
}

/**
 * The committed state: one Map per first character of the key (the key's kind: `a/` accounts,
 * `d/` deeds, `n/` replay records, ...). A block reads mostly accounts, schemes and consents;
 * kept apart from the millions of deed, evidence and replay records, their tables stay small
 * enough to be found in the CPU's caches.
 */
class ShardedMap {
  private readonly shards: (Map<string, unknown> | undefined)[] = new Array(128);

  private shard(key: string, create: true): Map<string, unknown>;
  private shard(key: string, create: false): Map<string, unknown> | undefined;
  private shard(key: string, create: boolean): Map<string, unknown> | undefined {
    const i = key.length === 0 ? 0 : key.charCodeAt(0) & 127;
    let m = this.shards[i];
    if (!m && create) this.shards[i] = m = new Map();
    return m;
  }

  get(key: string): unknown {
    return this.shard(key, false)?.get(key);
  }

  has(key: string): boolean {
    return this.shard(key, false)?.has(key) ?? false;
  }

  set(key: string, value: unknown): void {
    this.shard(key, true).set(key, value);
  }

  delete(key: string): void {
    this.shard(key, false)?.delete(key);
  }

  *entries(): Iterable<[string, unknown]> {
    for (const m of this.shards) if (m) yield* m;
  }
}

interface PendingLayer {
  height: number;
  appHash: string;
  changes: Map<string, unknown>;
}

export class LedgerState {
  private committed = new ShardedMap();
  private pending: PendingLayer[] = [];
  height = 0;
  appHash = '';

  /** Replaces everything: `entries` is the committed state at `height`. */
  reset(entries: Map<string, unknown>, height: number, appHash: string): void {
    this.committed = new ShardedMap();
    for (const [key, value] of entries) this.committed.set(key, value);
    this.pending = [];
    this.height = height;
    this.appHash = appHash;
  }

  getCommitted(key: string): unknown {
    return this.committed.get(key);
  }

  /** Committed entries whose key starts with `prefix` (load-time indexing; not for the hot path). */
  *committedEntries(prefix: string): Iterable<[string, unknown]> {
    for (const entry of this.committed.entries()) if (entry[0].startsWith(prefix)) yield entry;
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
    // With nothing pending (the engine committed the previous block), reads go straight down.
    const read = below.length === 0 ? (key: string): unknown => committed.get(key) : (key: string): unknown => {
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

  /**
   * Makes the oldest executed block committed; `watch.onNew` sees each key under `watch.prefix`
   * that did not exist before.
   */
  commit(height: number, watch?: { prefix: string; onNew(key: string, value: unknown): void }): void {
    const layer = this.pending[0];
    if (!layer || layer.height !== height) {
      throw new Error(`goodness: commit(${height}) but the oldest executed block is ${layer ? layer.height : 'none'}`);
    }
    this.pending.shift();
    for (const [key, value] of layer.changes) {
      if (value === null) this.committed.delete(key);
      else {
        if (watch && key.startsWith(watch.prefix) && !this.committed.has(key)) watch.onNew(key, value);
        this.committed.set(key, value);
      }
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

/**
 * One transaction's writes: applied to the block only when the transaction succeeds. Most
 * transactions write a handful of keys, so they are kept in two small arrays (no Map per
 * transaction); a transaction that writes many (clearing.close) moves them to a Map.
 */
export class TxScope implements StateView {
  private keys: string[] = [];
  private values: unknown[] = [];
  private map: Map<string, unknown> | null = null;
  private static readonly SMALL = 16;
  constructor(private readonly block: BlockChanges) {}

  private find(key: string): number {
    const keys = this.keys;
    for (let i = keys.length - 1; i >= 0; i--) if (keys[i] === key) return i;
    return -1;
  }

  get(key: string): unknown {
    if (this.map) {
      const v = this.map.get(key);
      if (v !== undefined) return v === null ? undefined : v;
    } else if (this.keys.length > 0) {
      const i = this.find(key);
      if (i >= 0) {
        const v = this.values[i];
        return v === null ? undefined : v;
      }
    }
    return this.block.get(key);
  }

  private set(key: string, value: unknown): void {
    if (this.map) {
      this.map.set(key, value);
      return;
    }
    const i = this.find(key);
    if (i >= 0) {
      this.values[i] = value;
      return;
    }
    this.keys.push(key);
    this.values.push(value);
    if (this.keys.length > TxScope.SMALL) {
      this.map = new Map();
      for (let j = 0; j < this.keys.length; j++) this.map.set(this.keys[j]!, this.values[j]);
    }
  }

  put(key: string, value: unknown): void {
    if (value === null || value === undefined) throw new TypeError(`state value for ${key} must not be null`);
    this.set(key, value);
  }

  delete(key: string): void {
    this.set(key, null);
  }

  /** Keeps the transaction's writes: called only when it succeeded. */
  apply(): void {
    const changes = this.block.changes;
    if (this.map) {
      for (const [key, value] of this.map) changes.set(key, value);
      return;
    }
    for (let i = 0; i < this.keys.length; i++) changes.set(this.keys[i]!, this.values[i]);
  }
}
