// The `auth` of `query` (rpc.md): an Ed25519 signature by `from` over the UTF-8 bytes of
// JCS({"path":path,"timestamp":timestamp}). One module so that the SDK signs exactly what the
// server checks.
import { ed25519Verify, type Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { jcs, utf8 } from '../consensus/crypto/encoding.ts';
import { isAccountId } from '../state/tx.ts';
import type { QueryAuth } from './types.ts';

/** How far the auth timestamp may be from the node's clock, either way. */
export const QUERY_AUTH_WINDOW_MS = 60_000;
const SIG_RE = /^[0-9a-f]{128}$/;

export function queryAuthMessage(path: string, timestamp: number): Uint8Array {
  return utf8(jcs({ path, timestamp }));
}

export function signQueryAuth(signer: Ed25519Signer, path: string, timestamp: number = Date.now()): QueryAuth {
  return { from: signer.publicKey, timestamp, sig: signer.sign(queryAuthMessage(path, timestamp)) };
}

export type AuthCheck = { ok: true; caller: string } | { ok: false; reason: string };

/** Checks an untrusted `auth` value; every refusal says why. */
export function checkQueryAuth(path: string, auth: unknown, now: number): AuthCheck {
  if (auth === null || typeof auth !== 'object' || Array.isArray(auth)) return { ok: false, reason: 'auth must be an object {from, timestamp, sig}' };
  const keys = Object.keys(auth);
  const extra = keys.filter((k) => k !== 'from' && k !== 'timestamp' && k !== 'sig');
  if (extra.length) return { ok: false, reason: `auth has unknown member ${extra[0]}; it is {from, timestamp, sig}` };
  const { from, timestamp, sig } = auth as Record<string, unknown>;
  if (!isAccountId(from)) return { ok: false, reason: 'auth.from must be an account id: 64 lowercase hex characters' };
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp)) return { ok: false, reason: 'auth.timestamp must be an integer (ms since the epoch)' };
  if (typeof sig !== 'string' || !SIG_RE.test(sig)) return { ok: false, reason: 'auth.sig must be 128 lowercase hex characters' };
  const skew = timestamp - now;
  if (Math.abs(skew) > QUERY_AUTH_WINDOW_MS) {
    return { ok: false, reason: `auth.timestamp is ${Math.abs(skew)} ms ${skew < 0 ? 'behind' : 'ahead of'} the node's clock; it must be within ${QUERY_AUTH_WINDOW_MS} ms` };
  }
  if (!ed25519Verify(from, queryAuthMessage(path, timestamp), sig)) {
    return { ok: false, reason: 'auth.sig does not verify under auth.from over JCS({path, timestamp})' };
  }
  return { ok: true, caller: from };
}
