// A block's state writes as the ledger hands them to the engine: the change list already
// encoded for the app hash (one buffer, offsets), what to store for each deleted key, and the
// `_meta` record. The engine holds a block's writes until its commit certificate arrives; as
// two views per write they would outlive young-generation collections and be copied by each,
// so the list of writes is made only when the chain store asks for it (listWrites).
//
// Once a block whose writes were listed is committed, its writes are on disk: the ledger takes
// their buffers back (release) and encodes a later block into them. A block's buffer is
// megabytes of external memory, and V8 gives external memory back only in a full collection
// of the heap (the whole state); a new buffer per block made one such collection every few
// blocks. Writes must therefore be listed before their block is committed (the engine does).
import type { EncodedChangeList, EncodingSpace } from '../app-hash.ts';
import type { StateWrite } from '../machine.ts';

/** Per change, what to store: its value, nothing (the key is removed), or a tombstone for a key genesis implies. */
export const Deleted = { NO: 0, REMOVE: 1, TOMBSTONE: 2 } as const;

export class LedgerWrites {
  private listed = false;
  private released = false;

  constructor(
    readonly height: number,
    private readonly changes: EncodedChangeList,
    /** per change, a Deleted; null when the block deleted nothing */
    private readonly deleted: Uint8Array | null,
    private readonly tombstone: Uint8Array,
    private readonly meta: StateWrite,
  ) {}

  /** The writes, as views into the block's buffer: store them before the block is committed. */
  toArray(): StateWrite[] {
    if (this.released) throw new Error(`goodness: the writes of block ${this.height} were listed after it was committed (their buffer is reused)`);
    this.listed = true;
    const changes = this.changes;
    const n = changes.count;
    const deleted = this.deleted;
    const out = new Array<StateWrite>(n + 1);
    for (let i = 0; i < n; i++) {
      const d = deleted === null ? Deleted.NO : deleted[i]!;
      out[i] = [changes.key(i), d === Deleted.NO ? changes.value(i) : d === Deleted.TOMBSTONE ? this.tombstone : null];
    }
    out[n] = this.meta;
    return out;
  }

  /**
   * The block is committed: gives back the buffers for a later block when the writes were
   * listed (and so stored); otherwise keeps them, for whoever holds these writes, and gives null.
   */
  release(): EncodingSpace | null {
    if (!this.listed || this.released) return null;
    this.released = true;
    return this.changes.space;
  }
}
