// Transactions of tx.md: canonical bytes, Ed25519 signatures, hashes and the checks of form
// that need no state. Clients build them with `buildTx`; nodes read them with `decodeTx`.
import { fromUtf8, isJcsText, jcs, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { Ed25519Signer, ed25519Verify } from '../consensus/crypto/ed25519.ts';
import type { SignatureJob } from '../consensus/crypto/verifier.ts';
import { Code } from './codes.ts';

export const MAX_EXPIRY_AHEAD = 1000;
const ACCOUNT_RE = /^[0-9a-f]{64}$/;
const NONCE_RE = /^[0-9A-Za-z_-]{1,64}$/;
const SIG_RE = /^[0-9a-f]{128}$/;
const TYPE_RE = /^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)*$/;
/** `{"sig":"` + 128 hex + `","tx":` : the canonical envelope's fixed prefix, since "sig" < "tx". */
const SIGNED_PREFIX = 8 + 128 + 7;

export interface TxFields {
  chain: string;
  type: string;
  from: string;
  nonce: string;
  expires: number;
  body: Record<string, unknown>;
}

export interface TxEnvelope {
  sig: string;
  tx: TxFields;
}

/** A transaction whose form and signature have been checked: what admission hands on. */
export interface DecodedTx {
  hash: string;
  envelope: TxEnvelope;
  size: number;
}

export type DecodeResult = { ok: true; tx: DecodedTx } | { ok: false; code: number; log: string };

export function isAccountId(s: unknown): s is string {
  return typeof s === 'string' && ACCOUNT_RE.test(s);
}

export function txHash(bytes: Uint8Array): string {
  return to0x(sha256(bytes));
}

/** The bytes that are signed: UTF-8 of JCS(tx). */
export function signingBytes(tx: TxFields): Uint8Array {
  return utf8(jcs(tx));
}

/** Builds, canonicalises and signs a transaction; returns its bytes and hash. */
export function buildTx(signer: Ed25519Signer, fields: Omit<TxFields, 'from'>): { bytes: Uint8Array; hash: string; envelope: TxEnvelope } {
  const tx: TxFields = { ...fields, from: signer.publicKey };
  const envelope: TxEnvelope = { sig: signer.sign(signingBytes(tx)), tx };
  const bytes = utf8(jcs(envelope));
  return { bytes, hash: txHash(bytes), envelope };
}

/** Every number in a transaction is a safe integer (tx.md: no floats anywhere). */
function onlySafeIntegers(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.every((v) => onlySafeIntegers(v, depth + 1));
  if (value !== null && typeof value === 'object') return Object.values(value).every((v) => onlySafeIntegers(v, depth + 1));
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function refuse(code: number, log: string): DecodeResult {
  return { ok: false, code, log };
}

/**
 * Checks bytes against tx.md: canonical JCS, the exact members, their forms, the chain id and
 * the signature. State checks (expiry against height, nonces, roles) come after, in the machine.
 * `knownHash` is the bytes' hash when the caller has computed it already.
 */
export function decodeTx(bytes: Uint8Array, chain: string, verifySignature = true, knownHash?: string): DecodeResult {
  let text: string;
  let value: unknown;
  try {
    text = fromUtf8(bytes);
    value = JSON.parse(text);
  } catch {
    return refuse(Code.MALFORMED, 'transaction bytes are not UTF-8 JSON');
  }
  if (!isPlainObject(value)) return refuse(Code.MALFORMED, 'a transaction is a JSON object {sig, tx}');
  const keys = Object.keys(value);
  if (keys.length !== 2 || !('sig' in value) || !('tx' in value)) return refuse(Code.MALFORMED, 'a transaction has exactly the members sig and tx');
  const { sig, tx } = value as { sig: unknown; tx: unknown };
  if (typeof sig !== 'string' || !SIG_RE.test(sig)) return refuse(Code.MALFORMED, 'sig is 128 lowercase hex characters');
  if (!isPlainObject(tx)) return refuse(Code.MALFORMED, 'tx is an object');
  const txKeys = Object.keys(tx);
  for (const k of ['body', 'chain', 'expires', 'from', 'nonce', 'type']) {
    if (!(k in tx)) return refuse(Code.MALFORMED, `tx.${k} is missing`);
  }
  if (txKeys.length !== 6) return refuse(Code.MALFORMED, 'tx has exactly the members body, chain, expires, from, nonce, type');
  const t = tx as unknown as TxFields;
  if (typeof t.chain !== 'string') return refuse(Code.MALFORMED, 'tx.chain is a string');
  if (typeof t.type !== 'string' || !TYPE_RE.test(t.type)) return refuse(Code.MALFORMED, 'tx.type is a dotted lowercase name');
  if (!isAccountId(t.from)) return refuse(Code.MALFORMED, 'tx.from is an account id: 64 lowercase hex characters');
  if (typeof t.nonce !== 'string' || !NONCE_RE.test(t.nonce)) return refuse(Code.MALFORMED, 'tx.nonce is 1-64 characters of [0-9A-Za-z_-]');
  if (!Number.isSafeInteger(t.expires) || t.expires < 0) return refuse(Code.MALFORMED, 'tx.expires is a non-negative integer block height');
  if (!isPlainObject(t.body)) return refuse(Code.MALFORMED, 'tx.body is an object');
  if (!onlySafeIntegers(t.body)) return refuse(Code.MALFORMED, 'numbers in a transaction are integers no larger than 2^53-1');
  if (!isJcsText(value, text)) return refuse(Code.NOT_CANONICAL, 'transaction bytes are not in canonical JCS form (RFC 8785)');
  if (t.chain !== chain) return refuse(Code.WRONG_CHAIN, `transaction is for chain ${JSON.stringify(t.chain)}, this is ${JSON.stringify(chain)}`);
  // The canonical envelope is `{"sig":"...","tx":` + JCS(tx) + `}`: sign-bytes are a slice of it.
  if (verifySignature && !ed25519Verify(t.from, bytes.subarray(SIGNED_PREFIX, bytes.length - 1), sig)) {
    return refuse(Code.BAD_SIGNATURE, 'signature does not verify under tx.from');
  }
  return { ok: true, tx: { hash: knownHash ?? txHash(bytes), envelope: { sig, tx: t }, size: bytes.length } };
}

/** The signature a decoded transaction carries, for a SignatureVerifier. */
export function signatureJobOf(bytes: Uint8Array, tx: DecodedTx): SignatureJob {
  return { publicKey: tx.envelope.tx.from, message: bytes.subarray(SIGNED_PREFIX, bytes.length - 1), signature: tx.envelope.sig };
}

/** Expiry against the height of the block being built or executed (tx.md). */
export function checkExpiry(expires: number, height: number): { code: number; log: string } | null {
  if (expires < height) return { code: Code.EXPIRED, log: `transaction expired at height ${expires}` };
  if (expires > height + MAX_EXPIRY_AHEAD) return { code: Code.EXPIRES_TOO_FAR, log: `expires ${expires} is more than ${MAX_EXPIRY_AHEAD} blocks above ${height}` };
  return null;
}
