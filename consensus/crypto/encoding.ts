// Byte and text encodings shared by every layer: hex with and without 0x, SHA-256, and
// RFC 8785 JSON canonicalisation (JCS), the one serialisation that hashes and signatures use.
import { hash as oneShotHash } from 'node:crypto';
import canonicalizeImpl from 'canonicalize';

const canonicalize = canonicalizeImpl as unknown as (value: unknown) => string | undefined;

const HEX_RE = /^[0-9a-f]*$/;

/** Lowercase hex of bytes, no prefix. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** `0x` + lowercase hex: the form hashes, BLS keys and raw bytes take in the contract. */
export function to0x(bytes: Uint8Array): string {
  return '0x' + toHex(bytes);
}

/** Parses bare lowercase hex; returns null when it is not exactly that (odd length, upper case, junk). */
export function fromHex(hex: string, expectedBytes?: number): Uint8Array | null {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !HEX_RE.test(hex)) return null;
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) return null;
  return Buffer.from(hex, 'hex');
}

/** Parses `0x`-prefixed lowercase hex; null when malformed or of the wrong length. */
export function from0x(hex: string, expectedBytes?: number): Uint8Array | null {
  if (typeof hex !== 'string' || !hex.startsWith('0x')) return null;
  return fromHex(hex.slice(2), expectedBytes);
}

/** SHA-256 of the parts' concatenation. One-shot `crypto.hash` is the fastest path in Node 22. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return oneShotHash('sha256', data, 'buffer');
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strict UTF-8 decoding: throws on invalid sequences instead of inserting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** RFC 8785 canonical JSON text of a JSON value. Throws on values JSON cannot carry. */
export function jcs(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}

/**
 * Whether `text` is exactly JCS(value), for a `value` that JSON.parse made from `text`: the check
 * admission runs on every transaction. Re-serialising with the canonicalize library cost a third
 * of decoding a transaction; this asks the native JSON.stringify instead, which writes exactly
 * what JCS writes (ES number and string forms) as long as every object's members come in JCS
 * order. JSON.parse keeps the text's member order, except that V8 puts array-index names
 * ("0", "17") first in numeric order, so an object with such a name goes to the library.
 */
export function isJcsText(value: unknown, text: string): boolean {
  return membersInJcsOrder(value, 0) ? JSON.stringify(value) === text : canonicalize(value) === text;
}

const INDEX_NAME_RE = /^(?:0|[1-9][0-9]{0,9})$/;
/** Names start with a letter (the regular expression ran on each of a transaction's names: 1% of a node's main thread). */
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** Every object's member names strictly increase by UTF-16 code units, and none is an array index. */
function membersInJcsOrder(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object') return true;
  // Deeper than any contract object: leave such values to the library (and its own limits).
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (!membersInJcsOrder(v, depth + 1)) return false;
    return true;
  }
  let previous: string | null = null;
  for (const name in value) {
    if ((previous !== null && !(previous < name)) || (isDigit(name.charCodeAt(0)) && INDEX_NAME_RE.test(name) && Number(name) < 2 ** 32 - 1)) return false;
    if (!membersInJcsOrder((value as Record<string, unknown>)[name], depth + 1)) return false;
    previous = name;
  }
  return true;
}

/** SHA-256 of the UTF-8 bytes of JCS(value): the hash of every consensus object in chain.md. */
export function jcsHash(value: unknown): Uint8Array {
  return sha256(utf8(jcs(value)));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
