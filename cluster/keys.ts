// A node's keys (its libp2p identity and its BLS voting key with the proof of possession) and
// account key pairs for `goodness keygen`. Secret material is written with mode 0600.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { blsKeygen, blsPopProve, blsPopVerify, blsPublicKeyOf, BLS_PUBLIC_KEY_BYTES, BLS_SECRET_KEY_BYTES, BLS_SIGNATURE_BYTES } from '../consensus/crypto/bls.ts';
import { ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { bytesEqual, from0x, fromHex, to0x, toHex } from '../consensus/crypto/encoding.ts';

/** A libp2p private key (Ed25519 for nodes), as @libp2p/crypto parses it. */
export type PeerPrivateKey = ReturnType<typeof privateKeyFromProtobuf>;

/** `node-key.json`: what one validator holds secret. */
export interface NodeKeyFile {
  /** libp2p peer id (base58btc), derived from peerPrivateKey */
  peerId: string;
  /** libp2p private key as protobuf bytes (lowercase hex), for privateKeyFromProtobuf */
  peerPrivateKey: string;
  /** 32-byte BLS secret key, 0x hex */
  blsSecretKey: string;
  /** 48-byte compressed G1 public key, 0x hex */
  blsPublicKey: string;
  /** proof of possession of blsSecretKey, 96 bytes, 0x hex */
  pop: string;
}

/** The key file parsed and cross-checked, ready for p2p and consensus. */
export interface NodeKeys {
  peerId: string;
  peerPrivateKey: PeerPrivateKey;
  blsSecretKey: Uint8Array;
  blsPublicKey: Uint8Array;
  pop: Uint8Array;
}

/** `goodness keygen` and DIR/accounts/*.json: an Ed25519 account key pair (tx.md). */
export interface AccountKeyFile {
  accountId: string;
  did: string;
  /** same as accountId: the 32-byte public key, lowercase hex */
  publicKey: string;
  /** 32-byte Ed25519 seed, lowercase hex */
  secretKey: string;
}

export const NODE_KEY_FILE = 'node-key.json';

export async function generateNodeKeys(): Promise<NodeKeyFile> {
  const peerKey = await generateKeyPair('Ed25519');
  const bls = blsKeygen();
  return {
    peerId: peerIdFromPrivateKey(peerKey).toString(),
    peerPrivateKey: toHex(privateKeyToProtobuf(peerKey)),
    blsSecretKey: to0x(bls.secretKey),
    blsPublicKey: to0x(bls.publicKey),
    pop: to0x(blsPopProve(bls.secretKey)),
  };
}

export function generateAccountKey(): AccountKeyFile {
  const { publicKey, secretKey } = ed25519Keygen();
  return { accountId: publicKey, did: `did:goodness:${publicKey}`, publicKey, secretKey };
}

/** Writes a JSON file readable by its owner only, refusing to replace an existing file. */
export function writeSecretJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  // The mode given to open() is filtered by the umask; make sure it is exactly 0600.
  chmodSync(path, 0o600);
}

/**
 * Parses and cross-checks a node key file: the peer id must be that of the private key, the
 * BLS public key that of the secret key, and the proof of possession must verify. Throws an
 * Error naming the bad field; the caller adds the file name.
 */
export function parseNodeKeyFile(value: unknown): NodeKeys {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('is not a JSON object');
  const file = value as Record<string, unknown>;
  for (const field of ['peerId', 'peerPrivateKey', 'blsSecretKey', 'blsPublicKey', 'pop'] as const) {
    if (typeof file[field] !== 'string') throw new Error(`has no "${field}" string`);
  }
  const protobuf = fromHex(file.peerPrivateKey as string);
  if (!protobuf) throw new Error('peerPrivateKey is not lowercase hex');
  let peerPrivateKey: PeerPrivateKey;
  try {
    peerPrivateKey = privateKeyFromProtobuf(protobuf);
  } catch (err) {
    throw new Error(`peerPrivateKey is not a libp2p private key (${(err as Error).message})`);
  }
  if (peerPrivateKey.type !== 'Ed25519') throw new Error(`peerPrivateKey is a ${peerPrivateKey.type} key; nodes use Ed25519`);
  const peerId = peerIdFromPrivateKey(peerPrivateKey).toString();
  if (peerId !== file.peerId) throw new Error(`peerId ${String(file.peerId)} is not the peer id of peerPrivateKey (${peerId})`);

  const blsSecretKey = from0x(file.blsSecretKey as string, BLS_SECRET_KEY_BYTES);
  if (!blsSecretKey) throw new Error(`blsSecretKey is not ${BLS_SECRET_KEY_BYTES} bytes of 0x lowercase hex`);
  const blsPublicKey = from0x(file.blsPublicKey as string, BLS_PUBLIC_KEY_BYTES);
  if (!blsPublicKey) throw new Error(`blsPublicKey is not ${BLS_PUBLIC_KEY_BYTES} bytes of 0x lowercase hex`);
  let derived: Uint8Array;
  try {
    derived = blsPublicKeyOf(blsSecretKey);
  } catch {
    throw new Error('blsSecretKey is not a valid BLS12-381 secret key');
  }
  if (!bytesEqual(derived, blsPublicKey)) throw new Error('blsPublicKey is not the public key of blsSecretKey');
  const pop = from0x(file.pop as string, BLS_SIGNATURE_BYTES);
  if (!pop || !blsPopVerify(blsPublicKey, pop)) throw new Error('pop is not a valid proof of possession of blsPublicKey');
  return { peerId, peerPrivateKey, blsSecretKey, blsPublicKey, pop };
}

/**
 * The secret key of an account key file (the JSON `goodness keygen` prints), or what is wrong
 * with the file, for the caller to turn into an operator's error with its own hint.
 */
export function readAccountSecretKey(path: string): { secretKey: string } | { problem: string } {
  if (!existsSync(path)) return { problem: `${path} does not exist` };
  let key: { secretKey?: unknown };
  try {
    key = JSON.parse(readFileSync(path, 'utf8')) as { secretKey?: unknown };
  } catch (err) {
    return { problem: `${path} is not valid JSON (${(err as Error).message})` };
  }
  if (typeof key?.secretKey !== 'string' || !/^[0-9a-f]{64}$/.test(key.secretKey)) return { problem: `${path} has no secretKey of 64 lowercase hex characters` };
  return { secretKey: key.secretKey };
}
