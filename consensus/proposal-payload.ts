// The payload of a PBFT proposal as this chain fills it: the block header and the block's
// transaction hashes. Transactions travel by gossip (each validator admits and verifies them
// once); a proposal names them by hash, and a replica missing some asks the proposer.
// Bytes: u32 header length ‖ header JSON ‖ 32 bytes per transaction hash.
import { headerFields } from './chain/header.ts';
import type { Header } from './chain/types.ts';
import { fromUtf8, toHex, utf8 } from './crypto/encoding.ts';

export interface ProposalPayload {
  header: Header;
  txHashes: string[];
}

const HASH_RE = /^0x[0-9a-f]{64}$/;
const HEADER_KEYS = ['chain', 'number', 'parentHash', 'timestamp', 'proposer', 'txCount', 'txRoot', 'receiptRoot', 'appHash', 'validatorsHash', 'nextValidatorsHash'];

export function encodePayload(p: ProposalPayload): Uint8Array {
  const header = utf8(JSON.stringify(headerFields(p.header)));
  const out = Buffer.allocUnsafe(4 + header.length + 32 * p.txHashes.length);
  out.writeUInt32BE(header.length, 0);
  out.set(header, 4);
  p.txHashes.forEach((h, i) => out.write(h.slice(2), 4 + header.length + 32 * i, 'hex'));
  return out;
}

/** Strict: anything but a well-formed header and whole hashes is an error string. */
export function decodePayload(bytes: Uint8Array): ProposalPayload | string {
  if (bytes.length < 4) return 'payload too short';
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = b.readUInt32BE(0);
  if (4 + headerLength > b.length || (b.length - 4 - headerLength) % 32 !== 0) return 'payload lengths do not add up';
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(fromUtf8(b.subarray(4, 4 + headerLength))) as Record<string, unknown>;
  } catch {
    return 'payload header is not JSON';
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return 'payload header is not an object';
  const keys = Object.keys(header);
  if (keys.length !== HEADER_KEYS.length || !HEADER_KEYS.every((k) => k in header)) return 'payload header has other fields than chain.md';
  for (const k of ['number', 'timestamp', 'proposer', 'txCount']) if (!Number.isSafeInteger(header[k]) || (header[k] as number) < 0) return `header.${k} is not a non-negative integer`;
  for (const k of ['parentHash', 'txRoot', 'receiptRoot', 'appHash', 'validatorsHash', 'nextValidatorsHash']) if (typeof header[k] !== 'string' || !HASH_RE.test(header[k] as string)) return `header.${k} is not a hash`;
  if (typeof header.chain !== 'string') return 'header.chain is not a string';
  const count = (b.length - 4 - headerLength) / 32;
  if (count !== header.txCount) return 'txCount differs from the hashes carried';
  const txHashes: string[] = new Array(count);
  for (let i = 0; i < count; i++) txHashes[i] = '0x' + toHex(b.subarray(4 + headerLength + 32 * i, 4 + headerLength + 32 * (i + 1)));
  return { header: header as unknown as Header, txHashes };
}
