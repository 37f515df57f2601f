// BLS12-381 behind one small interface (keys in G1, signatures in G2, Ethereum's POP
// ciphersuite). Votes and certificates use the native @chainsafe/blst, about 40x the
// pure-JS libraries. blst's binding hard-codes the signing tag, so the proof of possession,
// which needs the other tag (BLS_POP_...), is made and checked with @noble/curves: it runs
// only at genesis and at validator.add, where 30-120 ms does not matter.
import * as blst from '@chainsafe/blst';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { randomBytes } from 'node:crypto';

export const BLS_PUBLIC_KEY_BYTES = 48;
export const BLS_SIGNATURE_BYTES = 96;
export const BLS_SECRET_KEY_BYTES = 32;
const POP_TAG = 'BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_';

export interface BlsKeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function blsKeygen(ikm: Uint8Array = randomBytes(32)): BlsKeyPair {
  const sk = blst.SecretKey.fromKeygen(ikm);
  return { secretKey: sk.toBytes(), publicKey: sk.toPublicKey().toBytes(true) };
}

export function blsPublicKeyOf(secretKey: Uint8Array): Uint8Array {
  return blst.SecretKey.fromBytes(secretKey).toPublicKey().toBytes(true);
}

/** A signer holds the parsed secret key, so that signing a vote does not parse it again. */
export class BlsSigner {
  private readonly sk: blst.SecretKey;
  readonly publicKey: Uint8Array;
  constructor(secretKey: Uint8Array) {
    this.sk = blst.SecretKey.fromBytes(secretKey);
    this.publicKey = this.sk.toPublicKey().toBytes(true);
  }
  sign(message: Uint8Array): Uint8Array {
    return this.sk.sign(message).toBytes(true);
  }
}

/** Parses and subgroup-checks a compressed public key; null when invalid. */
export function parsePublicKey(bytes: Uint8Array): blst.PublicKey | null {
  if (bytes.length !== BLS_PUBLIC_KEY_BYTES) return null;
  try {
    return blst.PublicKey.fromBytes(bytes, true);
  } catch {
    return null;
  }
}

function parseSignature(bytes: Uint8Array): blst.Signature | null {
  if (bytes.length !== BLS_SIGNATURE_BYTES) return null;
  try {
    return blst.Signature.fromBytes(bytes, true);
  } catch {
    return null;
  }
}

/** A public key parsed and subgroup-checked once: about 60 µs each time otherwise, beside 1.3 ms for a check. */
export type ParsedBlsPublicKey = blst.PublicKey;

export function blsVerify(message: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean {
  const pk = parsePublicKey(publicKey);
  return pk !== null && blsVerifyParsed(message, pk, signature);
}

export function blsVerifyParsed(message: Uint8Array, publicKey: ParsedBlsPublicKey, signature: Uint8Array): boolean {
  const sig = parseSignature(signature);
  if (!sig) return false;
  try {
    return blst.verify(message, publicKey, sig);
  } catch {
    return false;
  }
}

/** Aggregates compressed signatures; null when any is malformed. */
export function blsAggregateSignatures(signatures: Uint8Array[]): Uint8Array | null {
  if (signatures.length === 0) return null;
  const parsed: blst.Signature[] = [];
  for (const s of signatures) {
    const sig = parseSignature(s);
    if (!sig) return null;
    parsed.push(sig);
  }
  return blst.aggregateSignatures(parsed).toBytes(true);
}

/**
 * One pairing check of an aggregate signature over one message against the given public
 * keys (all signed the same message). Safe only for keys with a checked proof of possession.
 */
export function blsFastAggregateVerify(message: Uint8Array, publicKeys: Uint8Array[], aggregate: Uint8Array): boolean {
  const pks: ParsedBlsPublicKey[] = [];
  for (const k of publicKeys) {
    const pk = parsePublicKey(k);
    if (!pk) return false;
    pks.push(pk);
  }
  return blsFastAggregateVerifyParsed(message, pks, aggregate);
}

export function blsFastAggregateVerifyParsed(message: Uint8Array, publicKeys: ParsedBlsPublicKey[], aggregate: Uint8Array): boolean {
  if (publicKeys.length === 0) return false;
  const sig = parseSignature(aggregate);
  if (!sig) return false;
  try {
    return blst.fastAggregateVerify(message, publicKeys, sig);
  } catch {
    return false;
  }
}

/** PopProve of the IETF BLS draft: the key's signature over its own 48-byte public key. */
export function blsPopProve(secretKey: Uint8Array): Uint8Array {
  const L = bls12_381.longSignatures;
  const pk = blsPublicKeyOf(secretKey);
  return L.sign(L.hash(pk, POP_TAG), secretKey).toBytes(true);
}

export function blsPopVerify(publicKey: Uint8Array, pop: Uint8Array): boolean {
  if (publicKey.length !== BLS_PUBLIC_KEY_BYTES || pop.length !== BLS_SIGNATURE_BYTES) return false;
  if (!parsePublicKey(publicKey)) return false;
  const L = bls12_381.longSignatures;
  try {
    return L.verify(pop, L.hash(publicKey, POP_TAG), publicKey);
  } catch {
    return false;
  }
}
