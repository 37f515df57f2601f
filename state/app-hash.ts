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
  /** UTF-8 of each key, and of each value's JCS text: views into the one buffer that was hashed */
  keyBytes: Uint8Array[];
  valueBytes: Uint8Array[];
}

/**
 * nextAppHash, and the bytes of every key and value, from one encoding of the block's change
 * list: the JCS text of the list is assembled once, encoded to UTF-8 once and hashed, and each
 * key and value is a view into those bytes (no copy per write). `keys` sorted, `texts[i]` the
 * JCS of the value of `keys[i]` ('null' when deleted).
 */
export function encodeChanges(previous: string, keys: readonly string[], texts: readonly string[]): EncodedChanges {
  const prev = from0x(previous, 32);
  if (!prev) throw new TypeError(`app hash ${previous} is not 32 bytes of 0x hex`);
  const plain = new Array<boolean>(keys.length);
  const parts = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    plain[i] = PLAIN_KEY.test(key);
    parts[i] = (plain[i] ? '["' + key + '",' : '[' + JSON.stringify(key) + ',') + texts[i]! + ']';
  }
  const all = Buffer.from('[' + parts.join(',') + ']');
  const keyBytes = new Array<Uint8Array>(keys.length);
  const valueBytes = new Array<Uint8Array>(keys.length);
  let at = 1;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    let quotedLength: number;
    if (plain[i]) {
      // Printable ASCII: one byte per character.
      quotedLength = key.length + 2;
      keyBytes[i] = all.subarray(at + 2, at + 2 + key.length);
    } else {
      quotedLength = Buffer.byteLength(JSON.stringify(key));
      keyBytes[i] = Buffer.from(key);
    }
    const valueStart = at + 1 + quotedLength + 1;
    const valueEnd = valueStart + Buffer.byteLength(texts[i]!);
    valueBytes[i] = all.subarray(valueStart, valueEnd);
    at = valueEnd + 2; // past "]" and ","
  }
  return { appHash: to0x(sha256(APP_HASH_DOMAIN, prev, hash('sha256', all, 'buffer'))), keyBytes, valueBytes };
}
