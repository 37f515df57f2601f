// The simulator's stand-in for the state machine: a block's hash is H(parentHash, height,
// payload), its payload a small JSON object of transaction ids, and executing it fails only
// when a Byzantine leader marked it invalid. Deterministic, like the real machine must be.
import { concatBytes, fromUtf8, sha256, to0x, utf8 } from '../../consensus/crypto/encoding.ts';
import { hashBytes } from '../../consensus/pbft/messages.ts';
import type { Hash } from '../../consensus/pbft/types.ts';

export interface SimPayload {
  proposer: number;
  view: number;
  nonce: number;
  txs: number[];
  invalid: boolean;
}

export function encodePayload(p: SimPayload): Uint8Array {
  return utf8(JSON.stringify(p));
}

export function decodePayload(bytes: Uint8Array): SimPayload | null {
  try {
    const p = JSON.parse(fromUtf8(bytes)) as SimPayload;
    if (!p || !Array.isArray(p.txs) || !p.txs.every((t) => Number.isInteger(t)) || typeof p.invalid !== 'boolean') return null;
    return p;
  } catch {
    return null;
  }
}

export function blockHash(parentHash: Hash, height: number, payload: Uint8Array): Hash {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setBigUint64(0, BigInt(height));
  return to0x(sha256(concatBytes(utf8('goodness-sim-block'), hashBytes(parentHash), h, payload)));
}

/** What the driver's validation does: the header (here, the hash) matches and execution succeeds. */
export function executeBlock(height: number, hash: Hash, parentHash: Hash, payload: Uint8Array): boolean {
  if (blockHash(parentHash, height, payload) !== hash) return false;
  const p = decodePayload(payload);
  return p !== null && !p.invalid;
}
