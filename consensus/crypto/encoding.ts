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
