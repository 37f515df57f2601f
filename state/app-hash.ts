// The app hash both machines put in block headers. It commits to the whole state without a
// state tree: each block's hash chains the previous one with a digest of that block's changes,
//   appHash_h = SHA-256("goodness/app/v1" || appHash_{h-1} || SHA-256(JCS(changes_h)))
// with changes_h the list of [key, value] pairs sorted by key (value null when deleted), and
//   appHash_0 = SHA-256(JCS(genesis app section, or {} when there is none)).
// Two nodes with the same genesis that applied the same changes in the same blocks therefore
// hold the same state exactly when their app hashes agree.
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
    parts[i] = '[' + JSON.stringify(key) + ',' + value + ']';
  }
  return '[' + parts.join(',') + ']';
}

export function nextAppHash(previous: string, sorted: readonly CanonicalChange[]): string {
  const prev = from0x(previous, 32);
  if (!prev) throw new TypeError(`app hash ${previous} is not 32 bytes of 0x hex`);
  return to0x(sha256(APP_HASH_DOMAIN, prev, sha256(utf8(changesJcs(sorted)))));
}
