// Ed25519 through node:crypto. Building a KeyObject from raw bytes costs as much as a verify
// (STACK.md), so public keys are parsed once and kept in a bounded cache.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { fromHex, toHex } from './encoding.ts';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const KEY_CACHE_LIMIT = 100_000;
const publicKeys = new Map<string, KeyObject>();

export interface Ed25519KeyPair {
  /** 32-byte seed, lowercase hex */
  secretKey: string;
  /** 32-byte public key, lowercase hex: the account id of tx.md */
  publicKey: string;
}

export function ed25519Keygen(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { secretKey: seed.toString('hex'), publicKey: pub.toString('hex') };
}

/** The public key (account id) of a 32-byte hex seed. */
export function ed25519PublicKeyOf(secretKeyHex: string): string {
  const key = createPublicKey(privateKeyObject(secretKeyHex));
  return toHex(key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
}

function privateKeyObject(secretKeyHex: string): KeyObject {
  const seed = fromHex(secretKeyHex, 32);
  if (!seed) throw new TypeError('an Ed25519 secret key is 64 lowercase hex characters');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** Holds a parsed private key so that a client signing thousands of transactions parses it once. */
export class Ed25519Signer {
  private readonly key: KeyObject;
  readonly publicKey: string;
  constructor(secretKeyHex: string) {
    this.key = privateKeyObject(secretKeyHex);
    this.publicKey = toHex(createPublicKey(this.key).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
  }
  /** Signature as 128 lowercase hex characters. */
  sign(message: Uint8Array): string {
    return sign(null, message, this.key).toString('hex');
  }
}

function publicKeyObject(publicKeyHex: string): KeyObject | null {
  let key = publicKeys.get(publicKeyHex);
  if (key) return key;
  const raw = fromHex(publicKeyHex, 32);
  if (!raw) return null;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
  if (publicKeys.size >= KEY_CACHE_LIMIT) publicKeys.delete(publicKeys.keys().next().value!);
  publicKeys.set(publicKeyHex, key);
  return key;
}

/** Verifies a hex signature under a hex public key; false for any malformed input. */
export function ed25519Verify(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
  const sig = fromHex(signatureHex, 64);
  if (!sig) return false;
  const key = publicKeyObject(publicKeyHex);
  if (!key) return false;
  try {
    return verify(null, message, key, sig);
  } catch {
    return false;
  }
}
