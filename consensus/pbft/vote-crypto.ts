// How the replica signs and checks votes, behind one small interface: BLS12-381 in a node
// (BlsVoteCrypto), a fast keyed MAC in the simulator (SimVoteCrypto). The core never calls a
// signature library directly.
import { createHmac } from 'node:crypto';
import type { Validator } from '../chain/types.ts';
import { BlsSigner, blsAggregateSignatures, blsFastAggregateVerifyParsed, blsVerifyParsed, parsePublicKey, type ParsedBlsPublicKey } from '../crypto/bls.ts';
import { bytesEqual, from0x, sha256, utf8 } from '../crypto/encoding.ts';

export interface VoteCrypto {
  /** Signs with this replica's own key. */
  sign(message: Uint8Array): Uint8Array;
  /** Checks validator `index`'s signature. */
  verify(index: number, message: Uint8Array, signature: Uint8Array): boolean;
  /** Combines signatures over one message; null when one is malformed. */
  aggregate(signatures: Uint8Array[]): Uint8Array | null;
  /** Checks that `aggregate` combines a signature of each index (distinct) over `message`. */
  verifyAggregate(indexes: number[], message: Uint8Array, aggregate: Uint8Array): boolean;
}

export interface SignedVote {
  index: number;
  signature: Uint8Array;
}

/**
 * Checks many signatures over one message: one aggregate check (one pairing with BLS), and one
 * by one only when the aggregate fails, to find the bad ones (as Lodestar's maybeBatch does).
 */
export function verifyMany(crypto: VoteCrypto, message: Uint8Array, votes: SignedVote[]): boolean[] {
  if (votes.length === 0) return [];
  if (votes.length > 1) {
    const agg = crypto.aggregate(votes.map((v) => v.signature));
    if (agg && crypto.verifyAggregate(votes.map((v) => v.index), message, agg)) return votes.map(() => true);
  }
  return votes.map((v) => crypto.verify(v.index, message, v.signature));
}

function distinct(indexes: number[]): boolean {
  return new Set(indexes).size === indexes.length;
}

/** BLS votes: keys are the validators' registered G1 keys (their proofs of possession were checked at registration). */
export class BlsVoteCrypto implements VoteCrypto {
  private readonly signer: BlsSigner;

  /** `publicKeyOf(index)`: the 48-byte key of validator `index`; validator indexes are never reused for another key. */
  constructor(
    secretKey: Uint8Array,
    private readonly publicKeyOf: (index: number) => Uint8Array | undefined,
  ) {
    this.signer = new BlsSigner(secretKey);
  }

  /** Keys from one validator list (`blsPublicKey` as 0x hex); a driver whose sets change passes its own lookup instead. */
  static fromValidators(secretKey: Uint8Array, validators: Validator[]): BlsVoteCrypto {
    const keys = new Map<number, Uint8Array>();
    for (const v of validators) {
      const key = from0x(v.blsPublicKey, 48);
      if (key) keys.set(v.index, key);
    }
    return new BlsVoteCrypto(secretKey, (i) => keys.get(i));
  }

  get publicKey(): Uint8Array {
    return this.signer.publicKey;
  }

  sign(message: Uint8Array): Uint8Array {
    return this.signer.sign(message);
  }

  /** Validator keys as parsed once: a block's checks would otherwise parse about ten. */
  private readonly parsedKeys = new Map<number, { bytes: Uint8Array; key: ParsedBlsPublicKey | null }>();

  private keyOf(index: number): ParsedBlsPublicKey | null {
    const bytes = this.publicKeyOf(index);
    if (!bytes) return null;
    const known = this.parsedKeys.get(index);
    if (known && (known.bytes === bytes || bytesEqual(known.bytes, bytes))) return known.key;
    const key = parsePublicKey(bytes);
    this.parsedKeys.set(index, { bytes, key });
    return key;
  }

  verify(index: number, message: Uint8Array, signature: Uint8Array): boolean {
    const key = this.keyOf(index);
    return key !== null && blsVerifyParsed(message, key, signature);
  }

  aggregate(signatures: Uint8Array[]): Uint8Array | null {
    return blsAggregateSignatures(signatures);
  }

  verifyAggregate(indexes: number[], message: Uint8Array, aggregate: Uint8Array): boolean {
    if (indexes.length === 0 || !distinct(indexes)) return false;
    const keys: ParsedBlsPublicKey[] = [];
    for (const i of indexes) {
      const key = this.keyOf(i);
      if (!key) return false;
      keys.push(key);
    }
    return blsFastAggregateVerifyParsed(message, keys, aggregate);
  }
}

// ---------------------------------------------------------------------------------------------
// Simulator crypto

const MOD = 1n << 256n;

function toBig(bytes: Uint8Array): bigint {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (b.readBigUInt64BE(0) << 192n) | (b.readBigUInt64BE(8) << 128n) | (b.readBigUInt64BE(16) << 64n) | b.readBigUInt64BE(24);
}

function fromBig(value: bigint): Uint8Array {
  const b = Buffer.alloc(32);
  const m = (1n << 64n) - 1n;
  b.writeBigUInt64BE((value >> 192n) & m, 0);
  b.writeBigUInt64BE((value >> 128n) & m, 8);
  b.writeBigUInt64BE((value >> 64n) & m, 16);
  b.writeBigUInt64BE(value & m, 24);
  return b;
}

/**
 * The simulator's signatures: HMAC-SHA256 under a per-validator secret. The keyring holds every
 * secret in a private field and hands each replica a signer closed over its own secret only, so
 * a Byzantine replica (which gets just its own SimVoteCrypto) cannot produce an honest one's
 * vote: it can only replay votes it has seen. Verification recomputes the MAC, which a real
 * verifier could not do, but inside one process it models "only the key holder can sign".
 * Aggregates are sums mod 2^256, so, as with BLS, an aggregate over a set cannot be turned into
 * one over another set without the missing signatures.
 */
export class SimKeyring {
  readonly #secrets = new Map<number, Uint8Array>();

  constructor(seed: string, indexes: number[]) {
    for (const i of indexes) this.#secrets.set(i, sha256(utf8(`goodness-sim-key/${seed}/${i}`)));
  }

  /** The crypto object for validator `index`: its own signer plus the shared verifier. */
  cryptoFor(index: number): SimVoteCrypto {
    const secret = this.#secrets.get(index);
    if (!secret) throw new Error(`no sim key for validator ${index}`);
    const verifier: SimVerifier = {
      verify: (i, m, s) => this.#verify(i, m, s),
      verifyAggregate: (is, m, a) => this.#verifyAggregate(is, m, a),
    };
    return new SimVoteCrypto((m) => mac(secret, m), verifier);
  }

  /** A crypto object whose signer holds a key no validator has (for forged-vote tests). */
  static forger(seed: string, verifierFrom: SimVoteCrypto): SimVoteCrypto {
    const secret = sha256(utf8(`goodness-sim-forger/${seed}`));
    return new SimVoteCrypto((m) => mac(secret, m), verifierFrom.verifier);
  }

  #verify(index: number, message: Uint8Array, signature: Uint8Array): boolean {
    const secret = this.#secrets.get(index);
    if (!secret || signature.length !== 32) return false;
    return Buffer.compare(mac(secret, message), signature) === 0;
  }

  #verifyAggregate(indexes: number[], message: Uint8Array, aggregate: Uint8Array): boolean {
    if (indexes.length === 0 || !distinct(indexes) || aggregate.length !== 32) return false;
    let sum = 0n;
    for (const i of indexes) {
      const secret = this.#secrets.get(i);
      if (!secret) return false;
      sum = (sum + toBig(mac(secret, message))) % MOD;
    }
    return sum === toBig(aggregate);
  }
}

interface SimVerifier {
  verify(index: number, message: Uint8Array, signature: Uint8Array): boolean;
  verifyAggregate(indexes: number[], message: Uint8Array, aggregate: Uint8Array): boolean;
}

function mac(secret: Uint8Array, message: Uint8Array): Uint8Array {
  return createHmac('sha256', secret).update(message).digest();
}

export class SimVoteCrypto implements VoteCrypto {
  constructor(
    private readonly signFn: (message: Uint8Array) => Uint8Array,
    readonly verifier: SimVerifier,
  ) {}

  sign(message: Uint8Array): Uint8Array {
    return this.signFn(message);
  }

  verify(index: number, message: Uint8Array, signature: Uint8Array): boolean {
    return this.verifier.verify(index, message, signature);
  }

  aggregate(signatures: Uint8Array[]): Uint8Array | null {
    if (signatures.length === 0) return null;
    let sum = 0n;
    for (const s of signatures) {
      if (s.length !== 32) return null;
      sum = (sum + toBig(s)) % MOD;
    }
    return fromBig(sum);
  }

  verifyAggregate(indexes: number[], message: Uint8Array, aggregate: Uint8Array): boolean {
    return this.verifier.verifyAggregate(indexes, message, aggregate);
  }
}
