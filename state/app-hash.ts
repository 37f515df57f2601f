// The app hash both machines put in block headers. It commits to the whole state without a
// state tree: each block's hash chains the previous one with a digest of that block's changes,
//   appHash_h = SHA-256("goodness/app/v1" || appHash_{h-1} || SHA-256(JCS(changes_h)))
// with changes_h the list of [key, value] pairs sorted by key (value null when deleted), and
//   appHash_0 = SHA-256(JCS(genesis app section, or {} when there is none)).
// Two nodes with the same genesis that applied the same changes in the same blocks therefore
// hold the same state exactly when their app hashes agree.
import { hash } from 'node:crypto';
import { from0x, jcsHash, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';

const APP_HASH_DOMAIN = utf8('goodness/app/v1');

/**
 * One change of a block with its value already in JCS form ('null' when the key is deleted):
 * machines serialise each value once and use the text both for the hash and for the write.
 */
export type CanonicalChange = [key: string, valueJcs: string];

export function genesisAppHash(app: unknown): string {
  return to0x(jcsHash(app === undefined || app === null ? {} : app));
}

/**
 * Sorts changes by key in UTF-16 code-unit order (the order JCS gives object members), so
 * that the digest does not depend on the order in which a block touched its keys.
 */
export function sortChanges<T extends [string, unknown]>(changes: T[]): T[] {
  return changes.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * JCS of the list `[[key, value], ...]`, assembled from the values' JCS texts: JCS of an array
 * is its elements' JCS joined by commas in brackets, and JCS of a string is JSON.stringify's.
 */
export function changesJcs(sorted: readonly CanonicalChange[]): string {
  const parts = new Array<string>(sorted.length);
  for (let i = 0; i < sorted.length; i++) {
    const [key, value] = sorted[i]!;
    // Keys of printable ASCII without '"' or '\\' (all the machines' keys) need no escaping.
    parts[i] = (PLAIN_KEY.test(key) ? '["' + key + '",' : '[' + JSON.stringify(key) + ',') + value + ']';
  }
  return '[' + parts.join(',') + ']';
}

const PLAIN_KEY = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

export function nextAppHash(previous: string, sorted: readonly CanonicalChange[]): string {
  const prev = from0x(previous, 32);
  if (!prev) throw new TypeError(`app hash ${previous} is not 32 bytes of 0x hex`);
  // crypto.hash encodes the string as UTF-8 itself: no intermediate copy of a block's changes.
  const digest = hash('sha256', changesJcs(sorted), 'buffer');
  return to0x(sha256(APP_HASH_DOMAIN, prev, digest));
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isPlainKeyBytes(key: Uint8Array): boolean {
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    if (b < 0x20 || b > 0x7e || b === QUOTE || b === BACKSLASH) return false;
  }
  return true;
}

/**
 * nextAppHash over changes already in bytes: `keys[i]` the UTF-8 key, `values[i]` the UTF-8 of
 * the value's JCS (or of `null`), sorted by key. It lays out exactly the bytes of changesJcs in
 * one buffer, so a machine that encodes its writes anyway hashes them without building the
 * block's change list as a string.
 */
export function nextAppHashOfBytes(previous: string, keys: readonly Uint8Array[], values: readonly Uint8Array[]): string {
  const prev = from0x(previous, 32);
  if (!prev) throw new TypeError(`app hash ${previous} is not 32 bytes of 0x hex`);
  const quoted: (Uint8Array | null)[] = new Array(keys.length);
  let total = 2 + Math.max(0, keys.length - 1);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    // A key that JSON would escape is quoted by JSON.stringify; others are framed by hand.
    const q = isPlainKeyBytes(key) ? null : Buffer.from(JSON.stringify(Buffer.from(key).toString('utf8')));
    quoted[i] = q;
    total += 3 + (q ? q.length : key.length + 2) + values[i]!.length;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  out[at++] = 0x5b; // [
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    out[at++] = 0x5b;
    const q = quoted[i];
    if (q) {
      out.set(q, at);
      at += q.length;
    } else {
      out[at++] = QUOTE;
      out.set(keys[i]!, at);
      at += keys[i]!.length;
      out[at++] = QUOTE;
    }
    out[at++] = 0x2c;
    out.set(values[i]!, at);
    at += values[i]!.length;
    out[at++] = 0x5d; // ]
  }
  out[at++] = 0x5d;
  return to0x(sha256(APP_HASH_DOMAIN, prev, hash('sha256', out, 'buffer')));
}

export interface EncodedChanges {
  appHash: string;
  /** length of the encoded list */
  bytes: number;
  /** UTF-8 of each key, and of each value's JCS text: views into the one buffer that was hashed */
  keyBytes: Uint8Array[];
  valueBytes: Uint8Array[];
}

/**
 * nextAppHash, and the bytes of every key and value, from one encoding of the block's change
 * list: `keys` sorted, `texts[i]` the JCS of the value of `keys[i]` ('null' when deleted).
 */
export function encodeChanges(previous: string, keys: readonly string[], texts: readonly string[]): EncodedChanges {
  let chars = 0;
  for (let i = 0; i < keys.length; i++) chars += keys[i]!.length + texts[i]!.length + 6;
  const encoder = new ChangesEncoder(keys.length, chars);
  for (let i = 0; i < keys.length; i++) encoder.add(keys[i]!, texts[i]!);
  const { appHash, bytes, list } = encoder.finish(previous);
  const keyBytes = new Array<Uint8Array>(list.count);
  const valueBytes = new Array<Uint8Array>(list.count);
  for (let i = 0; i < list.count; i++) {
    keyBytes[i] = list.key(i);
    valueBytes[i] = list.value(i);
  }
  return { appHash, bytes, keyBytes, valueBytes };
}

/**
 * A block's change list as encoded for its app hash: the one buffer that was hashed, and where
 * each key and value lies in it. Keys and values are views made when asked for, so that a block
 * waiting for its commit holds these few objects instead of two views per change (held for that
 * long, the views outlive young-generation collections and are copied by each).
 */
export class EncodedChangeList {
  constructor(
    /** the buffers the list lies in (the encoded list is at the start of `bytes`) */
    readonly space: EncodingSpace,
    readonly count: number,
    private readonly ownKeys: Map<number, Uint8Array> | null,
  ) {}

  // Plain Uint8Array views: cheaper to make than Buffer slices, and all a write needs.

  /** UTF-8 of the i-th key: a view into the buffer, or its own bytes when JSON escapes it. */
  key(i: number): Uint8Array {
    const { bytes, offsets } = this.space;
    const end = offsets[4 * i + 1]!;
    return end >= 0 ? new Uint8Array(bytes.buffer, bytes.byteOffset + offsets[4 * i]!, end - offsets[4 * i]!) : this.ownKeys!.get(i)!;
  }

  /** UTF-8 of the i-th value's JCS text: a view into the buffer. */
  value(i: number): Uint8Array {
    const { bytes, offsets } = this.space;
    return new Uint8Array(bytes.buffer, bytes.byteOffset + offsets[4 * i + 2]!, offsets[4 * i + 3]! - offsets[4 * i + 2]!);
  }
}

/** Where a ChangesEncoder writes: the encoded list, and per change the offsets of its key and value in it. */
export interface EncodingSpace {
  bytes: Buffer;
  /** per change: key start, key end (-1: the key is escaped, its bytes kept apart), value start, value end */
  offsets: Int32Array;
}

/**
 * Lays out the JCS of a block's change list as UTF-8 in one buffer, change by change, then
 * hashes it: the app hash, and each key and value as a view into that buffer (no copy per
 * write). Changes are added sorted by key, each value as its JCS text ('null' when deleted).
 *
 * Written piece by piece, as each value is serialised, rather than as one joined string: a
 * block's list is megabytes, and joining it and then encoding it costs two more copies of it,
 * a string as large on the heap, and every value's text held until the end.
 */
export class ChangesEncoder {
  private out: Buffer;
  private pos = 0;
  private count = 0;
  /** per change: where its key starts and ends (end -1: its bytes are in `ownKeys`), where its value starts and ends */
  private at: Int32Array;
  /** keys whose JSON form needs escapes: their UTF-8 is not a slice of the buffer */
  private ownKeys: Map<number, Uint8Array> | null = null;

  /**
   * `expected` changes of about `bytes` bytes in all: a hint, the buffers grow past it. `space`
   * (the space of a list no longer needed) is written over when it is large enough: a machine
   * that reuses the space of committed blocks makes no new buffer per block, and so no
   * external memory that only a full collection would give back.
   */
  constructor(expected: number, bytes: number, space?: EncodingSpace) {
    this.out = space !== undefined && space.bytes.length >= bytes + 2 ? space.bytes : Buffer.allocUnsafe(Math.max(256, bytes + 2));
    this.at = space !== undefined && space.offsets.length >= 4 * expected ? space.offsets : new Int32Array(4 * Math.max(1, expected));
    this.out[this.pos++] = 0x5b; // [
  }

  /** Room for `bytes` more bytes. */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.pos + bytes));
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  add(key: string, text: string): void {
    const i = this.count++;
    if (4 * this.count > this.at.length) {
      const bigger = new Int32Array(2 * this.at.length);
      bigger.set(this.at);
      this.at = bigger;
    }
    // A key JSON would escape is written as JSON.stringify gives it (escapes can be 6 characters).
    const quoted = PLAIN_KEY.test(key) ? null : JSON.stringify(key);
    // Enough for the worst case (3 UTF-8 bytes per UTF-16 code unit) and the framing.
    this.room(3 * ((quoted === null ? key.length + 2 : quoted.length) + text.length) + 16);
    const out = this.out;
    const at = this.at;
    let pos = this.pos;
    if (i > 0) out[pos++] = 0x2c; // ,
    out[pos++] = 0x5b; // [
    if (quoted === null) {
      // Printable ASCII: one byte per character, and JSON needs no escape.
      out[pos++] = QUOTE;
      at[4 * i] = pos;
      pos += out.write(key, pos, 'latin1');
      at[4 * i + 1] = pos;
      out[pos++] = QUOTE;
    } else {
      pos += out.write(quoted, pos, 'utf8');
      at[4 * i + 1] = -1;
      (this.ownKeys ??= new Map()).set(i, utf8(key));
    }
    out[pos++] = 0x2c; // ,
    at[4 * i + 2] = pos;
    pos += out.write(text, pos, 'utf8');
    at[4 * i + 3] = pos;
    out[pos++] = 0x5d; // ]
    this.pos = pos;
  }

  finish(previous: string): { appHash: string; bytes: number; list: EncodedChangeList } {
    const prev = from0x(previous, 32);
    if (!prev) throw new TypeError(`app hash ${previous} is not 32 bytes of 0x hex`);
    this.room(1);
    this.out[this.pos++] = 0x5d; // ]
    const used = this.pos;
    const appHash = to0x(sha256(APP_HASH_DOMAIN, prev, hash('sha256', this.out.subarray(0, used), 'buffer')));
    return { appHash, bytes: used, list: new EncodedChangeList({ bytes: this.out, offsets: this.at }, this.count, this.ownKeys) };
  }
}
