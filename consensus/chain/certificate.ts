// Commit certificates (chain.md): a quorum of distinct validators' BLS signatures over the
// commit message, aggregated and checked with one pairing.
import { blsFastAggregateVerify } from '../crypto/bls.ts';
import { from0x } from '../crypto/encoding.ts';
import { commitMessage } from './header.ts';
import type { CommitCertificate, Validator } from './types.ts';

/** f = floor((n - 1) / 3): the faults a set of n tolerates. */
export function maxFaulty(n: number): number {
  return Math.floor((n - 1) / 3);
}

/** quorum = ceil((n + f + 1) / 2): 1 of 1, 3 of 4, 5 of 7, 7 of 10. */
export function quorumSize(n: number): number {
  return Math.ceil((n + maxFaulty(n) + 1) / 2);
}

export type CertificateCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks a certificate for a block hash against the validator set that must sign it.
 * Every way a certificate can be wrong gets its own reason, so that refusals are explainable.
 */
export function verifyCertificate(cert: CommitCertificate, blockHash: string, validators: Validator[]): CertificateCheck {
  if (cert.blockHash !== blockHash) return { ok: false, reason: 'certificate is for another block hash' };
  const hashBytes = from0x(blockHash, 32);
  if (!hashBytes) return { ok: false, reason: 'malformed block hash' };
  if (!Array.isArray(cert.signers)) return { ok: false, reason: 'signers is not a list' };
  const byIndex = new Map(validators.map((v) => [v.index, v]));
  const seen = new Set<number>();
  const keys: Uint8Array[] = [];
  for (const s of cert.signers) {
    if (!Number.isInteger(s)) return { ok: false, reason: 'signer is not an index' };
    if (seen.has(s)) return { ok: false, reason: `signer ${s} appears twice` };
    seen.add(s);
    const v = byIndex.get(s);
    if (!v) return { ok: false, reason: `signer ${s} is not in the validator set` };
    const key = from0x(v.blsPublicKey, 48);
    if (!key) return { ok: false, reason: `validator ${s} has a malformed key` };
    keys.push(key);
  }
  const quorum = quorumSize(validators.length);
  if (seen.size < quorum) return { ok: false, reason: `${seen.size} signers, quorum is ${quorum}` };
  const sig = from0x(cert.aggregateSignature, 96);
  if (!sig) return { ok: false, reason: 'malformed aggregate signature' };
  if (!blsFastAggregateVerify(commitMessage(hashBytes), keys, sig)) return { ok: false, reason: 'aggregate signature does not verify' };
  return { ok: true };
}
