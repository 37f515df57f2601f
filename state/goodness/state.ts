// The ledger's state: one cell per key holding the committed value and the values that blocks
// executed but not yet committed gave it (so the next block can execute before the previous one
// is durable), and on top the writes of the transaction being executed, which are kept only if
// it succeeds. A deleted key is a change to null.
//
// Why cells rather than a map of changes per block over a committed map: a block touches tens of
// thousands of keys spread over maps of millions, and each first touch of a key is a cache miss.
// With cells a read is one lookup (not one per layer), a write finds its cell once, and commit
// walks the block's list of cells without looking anything up.

export interface StateView {
  get(key: string): unknown;
}

/** No block has written the cell (h0 is a height otherwise). */
const NONE = -1;

interface LaterValue {
  height: number;
  value: unknown;
}

/**
 * One key: its committed value (undefined when absent) and its uncommitted values, oldest first.
 * The oldest sits in h0/v0, any later ones in `later` (only when blocks execute ahead of commits),
 * so the usual cell allocates nothing but itself. A value null means the block deleted the key.
 */
interface Cell {
  readonly key: string;
  committed: unknown;
  h0: number;
  v0: unknown;
  later: LaterValue[] | null;
}

/**
 * A new cell. An object literal rather than a class: its one allocation site lets V8 see that
 * nearly every cell outlives many collections and allocate cells straight in the old generation
 * (allocation-site pretenuring), instead of copying each of them twice on its way there.
 */
function newCell(key: string, committed: unknown): Cell {
  return { key, committed, h0: NONE, v0: undefined, later: null };
}

/** The newest value of a cell, as a read sees it (undefined when absent or deleted). */
function current(cell: Cell): unknown {
  const later = cell.later;
  const v = later !== null && later.length > 0 ? later[later.length - 1]!.value : cell.h0 !== NONE ? cell.v0 : cell.committed;
  return v === null ? undefined : v;
}

/** The newest uncommitted value (null when deleted); only for a cell a pending or open block wrote. */
function newest(cell: Cell): unknown {
  const later = cell.later;
  return later !== null && later.length > 0 ? later[later.length - 1]!.value : cell.v0;
}

/** Records `value` for block `height`; true when this is the block's first write of the cell. */
function write(cell: Cell, height: number, value: unknown): boolean {
  const later = cell.later;
  if (later !== null && later.length > 0) {
    const last = later[later.length - 1]!;
    if (last.height === height) {
      last.value = value;
      return false;
    }
    later.push({ height, value });
    return true;
  }
  if (cell.h0 === height) {
    cell.v0 = value;
    return false;
  }
  if (cell.h0 === NONE) {
    cell.h0 = height;
    cell.v0 = value;
  } else {
    cell.later = [{ height, value }];
  }
  return true;
}

/** Forgets the values of blocks at `height` and above (they are being replaced). */
function dropFrom(cell: Cell, height: number): void {
  if (cell.h0 !== NONE && cell.h0 >= height) {
    cell.h0 = NONE;
    cell.v0 = undefined;
    cell.later = null;
  } else if (cell.later !== null) {
    cell.later = cell.later.filter((l) => l.height < height);
  }
}

function isEmpty(cell: Cell): boolean {
  return cell.committed === undefined && cell.h0 === NONE;
}

/**
 * The cells: one Map per first character of the key (the key's kind: `a/` accounts, `d/` deeds,
 * `n/` replay records, ...). A block reads mostly accounts, schemes and consents; kept apart
 * from the millions of deed, evidence and replay records, their tables stay small enough to be
 * found in the CPU's caches.
 */
class CellMap {
  private readonly shards: (Map<string, Cell> | undefined)[] = new Array(128);

  find(key: string): Cell | undefined {
    return this.shards[key.length === 0 ? 0 : key.charCodeAt(0) & 127]?.get(key);
  }

  findOrCreate(key: string): Cell {
    const i = key.length === 0 ? 0 : key.charCodeAt(0) & 127;
    let m = this.shards[i];
    if (!m) this.shards[i] = m = new Map();
    let cell = m.get(key);
    if (cell === undefined) {
      cell = newCell(key, undefined);
      m.set(key, cell);
    }
    return cell;
  }

  remove(key: string): void {
    this.shards[key.length === 0 ? 0 : key.charCodeAt(0) & 127]?.delete(key);
  }

  *cells(): Iterable<Cell> {
    for (const m of this.shards) if (m) yield* m.values();
  }
}

interface PendingLayer {
  height: number;
  appHash: string;
  cells: Cell[];
}

export class LedgerState {
  private cells = new CellMap();
  private pending: PendingLayer[] = [];
  /** the block being executed, until it becomes pending */
  private open: BlockChanges | null = null;
  height = 0;
  appHash = '';

  /** Replaces everything: `entries` is the committed state at `height`. */
  reset(entries: Map<string, unknown>, height: number, appHash: string): void {
    this.cells = new CellMap();
    for (const [key, value] of entries) this.cells.findOrCreate(key).committed = value;
    this.pending = [];
    this.open = null;
    this.height = height;
    this.appHash = appHash;
  }

  getCommitted(key: string): unknown {
    return this.cells.find(key)?.committed;
  }

  /** Committed entries whose key starts with `prefix` (load-time indexing; not for the hot path). */
  *committedEntries(prefix: string): Iterable<[string, unknown]> {
    for (const cell of this.cells.cells()) {
      if (cell.committed !== undefined && cell.key.startsWith(prefix)) yield [cell.key, cell.committed];
    }
  }

  /**
   * Starts executing block `height`: pending blocks at that height or above are dropped (a
   * re-execution replaces them), and the block reads through the remaining ones.
   */
  beginBlock(height: number): BlockChanges {
    // A block whose execution never finished (it threw) leaves nothing behind.
    if (this.open) this.drop(this.open.touched, this.open.height);
    this.open = null;
    while (this.pending.length > 0 && this.pending.at(-1)!.height >= height) this.drop(this.pending.pop()!.cells, height);
    const tip = this.pending.at(-1);
    const tipHeight = tip ? tip.height : this.height;
    if (height !== tipHeight + 1) throw new Error(`goodness: cannot execute block ${height} on top of ${tipHeight}`);
    this.open = new BlockChanges(height, tip ? tip.appHash : this.appHash, this.cells);
    return this.open;
  }

  private drop(cells: Cell[], height: number): void {
    for (const cell of cells) {
      dropFrom(cell, height);
      if (isEmpty(cell)) this.cells.remove(cell.key);
    }
  }

  /** Keeps an executed block as pending until the engine commits it. */
  addPending(block: BlockChanges, appHash: string): void {
    if (block !== this.open) throw new Error(`goodness: block ${block.height} is not the block being executed`);
    this.open = null;
    this.pending.push({ height: block.height, appHash, cells: block.touched });
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
    for (const cell of layer.cells) {
      const value = cell.v0;
      const before = cell.committed;
      const later = cell.later;
      if (later !== null && later.length > 0) {
        const next = later.shift()!;
        cell.h0 = next.height;
        cell.v0 = next.value;
      } else {
        cell.h0 = NONE;
        cell.v0 = undefined;
      }
      if (value === null) {
        cell.committed = undefined;
        if (cell.h0 === NONE) this.cells.remove(cell.key);
      } else {
        cell.committed = value;
        if (watch && before === undefined && cell.key.startsWith(watch.prefix)) watch.onNew(cell.key, value);
      }
    }
    this.height = height;
    this.appHash = layer.appHash;
  }
}

/** The changes of the block being executed, over the state below it. */
export class BlockChanges implements StateView {
  /** the cells this block wrote, in the order it first wrote them */
  readonly touched: Cell[] = [];
  constructor(
    readonly height: number,
    readonly previousAppHash: string,
    private readonly cells: CellMap,
  ) {}

  get(key: string): unknown {
    const cell = this.cells.find(key);
    return cell === undefined ? undefined : current(cell);
  }

  put(key: string, value: unknown): void {
    if (value === null || value === undefined) throw new TypeError(`state value for ${key} must not be null`);
    this.set(key, value);
  }

  delete(key: string): void {
    this.set(key, null);
  }

  /** `value` null deletes. */
  set(key: string, value: unknown): void {
    const cell = this.cells.findOrCreate(key);
    if (write(cell, this.height, value)) this.touched.push(cell);
  }

  /**
   * The block's changes sorted by key in UTF-16 code-unit order (the order JCS gives object
   * members, app-hash.ts): keys, and values with null for a deleted key.
   */
  sortedChanges(): { keys: string[]; values: unknown[] } {
    const cells = sortByKey(this.touched);
    const keys = new Array<string>(cells.length);
    const values = new Array<unknown>(cells.length);
    for (let i = 0; i < cells.length; i++) {
      keys[i] = cells[i]!.key;
      values[i] = newest(cells[i]!);
    }
    return { keys, values };
  }
}

/**
 * Sorts cells by key. Keys that differ in their first character are in the order of that
 * character, so the cells are first dealt by it (the key's kind: thousands of accounts, deeds,
 * replay records) and each kind is sorted alone: fewer comparisons, and no comparison between
 * keys of different kinds. Only when every key starts with an ASCII character (all of the
 * ledger's do); otherwise one sort of the lot.
 */
function sortByKey(cells: Cell[]): Cell[] {
  const kinds: (Cell[] | undefined)[] = new Array(128);
  for (let i = 0; i < cells.length; i++) {
    const key = cells[i]!.key;
    const first = key.length === 0 ? 0 : key.charCodeAt(0);
    if (first >= 128) return cells.sort(byKey);
    const kind = kinds[first];
    if (kind) kind.push(cells[i]!);
    else kinds[first] = [cells[i]!];
  }
  let n = 0;
  for (let k = 0; k < 128; k++) {
    const kind = kinds[k];
    if (!kind) continue;
    if (kind.length > 1) kind.sort(byKey);
    for (let i = 0; i < kind.length; i++) cells[n++] = kind[i]!;
  }
  return cells;
}

/** A block's cells have distinct keys, so one string comparison decides (not `<` and then `>`). */
function byKey(a: Cell, b: Cell): number {
  return a.key < b.key ? -1 : a === b ? 0 : 1;
}

/**
 * One transaction's writes: applied to the block only when the transaction succeeds. Most
 * transactions write a handful of keys, so they are kept in two small arrays (no Map per
 * transaction); a transaction that writes many (clearing.close) moves them to a Map. The ledger
 * reuses one scope for every transaction (`reuse`), so the arrays are allocated once: `count`
 * says how many of their slots the current transaction uses.
 */
export class TxScope implements StateView {
  private readonly keys: string[] = [];
  private readonly values: unknown[] = [];
  private count = 0;
  private map: Map<string, unknown> | null = null;
  private static readonly SMALL = 16;
  constructor(private block: BlockChanges) {}

  /** Empties the scope for the next transaction of `block`. */
  reuse(block: BlockChanges): this {
    this.block = block;
    // Drop references to the previous transaction's records, keep the slots.
    for (let i = 0; i < this.count; i++) this.values[i] = undefined;
    this.count = 0;
    this.map = null;
    return this;
  }

  private find(key: string): number {
    const keys = this.keys;
    for (let i = this.count - 1; i >= 0; i--) if (keys[i] === key) return i;
    return -1;
  }

  get(key: string): unknown {
    if (this.map) {
      const v = this.map.get(key);
      if (v !== undefined) return v === null ? undefined : v;
    } else if (this.count > 0) {
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
    if (this.count === TxScope.SMALL) {
      this.map = new Map();
      for (let j = 0; j < this.count; j++) this.map.set(this.keys[j]!, this.values[j]);
      this.map.set(key, value);
      return;
    }
    this.keys[this.count] = key;
    this.values[this.count] = value;
    this.count++;
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
    const block = this.block;
    if (this.map) {
      for (const [key, value] of this.map) block.set(key, value);
      return;
    }
    for (let i = 0; i < this.count; i++) block.set(this.keys[i]!, this.values[i]);
  }
}
