// Ed25519: keys and signing through node:crypto, verification through libsodium
// (sodium-native). On this project's machine libsodium verifies about twice as fast as
// node:crypto's OpenSSL (19,000-20,000 against 9,500-9,900 a second on one core), and a
// signed transaction's verification is a quarter of a cluster's CPU. libsodium's rules are
// stricter than RFC 8032's minimum and are what a node accepts: it refuses a non-canonical
// S (>= L, as OpenSSL does), and public keys and R that are of small order or not canonical.
// Signatures made by any RFC 8032 signer with an honestly generated key verify alike.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { fromHex, toHex } from './encoding.ts';

const require = createRequire(import.meta.url);

/** The one libsodium call used here (sodium-native ships no types of its own). */
interface Sodium {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** sodium-native's entry file, for worker threads that load it themselves (verifier.ts). */
export const SODIUM_MODULE = require.resolve('sodium-native');
const sodium = require(SODIUM_MODULE) as Sodium;

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

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

/** A raw public key (64 hex) as a node:crypto KeyObject, for checks by OpenSSL beside libsodium's (the bench's comparison, tests). */
export function nodeCryptoPublicKey(publicKeyHex: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKeyHex, 'hex')]), format: 'der', type: 'spki' });
}

/** Verifies a hex signature under a hex public key; false for any malformed input. */
export function ed25519Verify(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
  const sig = fromHex(signatureHex, 64);
  if (!sig) return false;
  const key = fromHex(publicKeyHex, 32);
  if (!key) return false;
  return sodium.crypto_sign_verify_detached(sig, message, key);
}
