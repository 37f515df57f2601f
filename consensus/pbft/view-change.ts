// The rules of a view change as pure functions: checking commit certificates, prepared
// certificates, VIEW-CHANGE and NEW-VIEW messages, and computing which blocks a new view must
// re-propose. The new leader and every receiver run the same selectReproposals, so a NEW-VIEW
// whose re-proposals differ from it is refused.
import { maxFaulty, quorumSize } from '../chain/certificate.ts';
import { fromHex } from '../crypto/encoding.ts';
import { commitSigningBytes, contentDigest, newViewSigningBytes, prepareSigningBytes, viewChangeSigningBytes } from './messages.ts';
import type { CommitCertificate, Hash, NewView, PreparedCert, Reproposal, ViewChange } from './types.ts';
import type { VoteCrypto } from './vote-crypto.ts';

export { maxFaulty, quorumSize };

/** The leader of `view` among a set sorted by index: position view mod n. */
export function leaderOf(set: readonly number[], view: number): number {
  return set[view % set.length]!;
}

export interface CheckContext {
  crypto: VoteCrypto;
  chain: Uint8Array;
  genesisHash: Hash;
  /** sorted validator indexes of a height, or null when unknown */
  setAt(height: number): readonly number[] | null;
}

function subsetQuorum(signers: number[], set: readonly number[]): string | null {
  for (const s of signers) if (!set.includes(s)) return `signer ${s} is not a validator at that height`;
  const q = quorumSize(set.length);
  if (signers.length < q) return `${signers.length} signers, quorum is ${q}`;
  return null;
}

function sigBytes(hex0x: string): Uint8Array | null {
  return typeof hex0x === 'string' && hex0x.startsWith('0x') ? fromHex(hex0x.slice(2)) : null;
}

/** A commit certificate (chain.md) for its own number and hash; null when it verifies, else why not. */
export function checkCommitCert(ctx: CheckContext, cert: CommitCertificate): string | null {
  const set = ctx.setAt(cert.number);
  if (!set) return 'validator set unknown';
  const bad = subsetQuorum(cert.signers, set);
  if (bad) return bad;
  const agg = sigBytes(cert.aggregateSignature);
  if (!agg || agg.length === 0) return 'malformed aggregate';
  if (!ctx.crypto.verifyAggregate(cert.signers, commitSigningBytes(cert.blockHash), agg)) return 'aggregate signature does not verify';
  return null;
}

export function checkPreparedCert(ctx: CheckContext, p: PreparedCert): string | null {
  const set = ctx.setAt(p.height);
  if (!set) return 'validator set unknown';
  const bad = subsetQuorum(p.signers, set);
  if (bad) return bad;
  if (p.payload && contentDigest(p.parentHash, p.payload) !== p.digest) return 'payload does not match its digest';
  if (!ctx.crypto.verifyAggregate(p.signers, prepareSigningBytes(ctx.chain, p.view, p.height, p.hash, p.digest), p.aggregate)) return 'prepare aggregate does not verify';
  return null;
}

/**
 * Everything about a VIEW-CHANGE except whether its sender belongs to the set the NEW-VIEW is
 * counted in (that depends on the other view changes). Null when valid.
 */
export function checkViewChange(ctx: CheckContext, vc: ViewChange): string | null {
  if (vc.committedHeight === 0) {
    if (vc.committedHash !== ctx.genesisHash) return 'height 0 is not this chain\'s genesis';
  } else {
    const c = vc.committedCert!;
    if (c.number !== vc.committedHeight || c.blockHash !== vc.committedHash) return 'certificate is not for the committed block';
  }
  if (!ctx.crypto.verify(vc.replica, viewChangeSigningBytes(ctx.chain, vc), vc.sig)) return 'bad signature';
  if (vc.committedCert) {
    const bad = checkCommitCert(ctx, vc.committedCert);
    if (bad) return `committed certificate: ${bad}`;
  }
  for (const p of vc.prepared) {
    const bad = checkPreparedCert(ctx, p);
    if (bad) return `prepared certificate at ${p.height}: ${bad}`;
  }
  return null;
}

export interface Selection {
  /** the highest committed height among the view changes, its hash and certificate */
  cStar: number;
  hashStar: Hash;
  certStar: CommitCertificate | null;
  /** the prepared certificates the new view must re-propose, one per height from cStar + 1, chained */
  picks: PreparedCert[];
}

/**
 * What a set of VIEW-CHANGEs forces. Above the highest committed height, take at each height the
 * prepared certificate with the highest view; stop at the first height with none, or whose pick
 * does not extend the previous one (a block decided at some height forces its ancestors to be the
 * highest-view picks below it, so a break proves nothing above it was decided: see README.md).
 */
export function selectReproposals(vcs: ViewChange[]): Selection {
  let best: ViewChange = vcs[0]!;
  for (const vc of vcs) if (vc.committedHeight > best.committedHeight || (vc.committedHeight === best.committedHeight && vc.replica < best.replica)) best = vc;
  const cStar = best.committedHeight;
  const byHeight = new Map<number, PreparedCert>();
  for (const vc of vcs) {
    for (const p of vc.prepared) {
      if (p.height <= cStar) continue;
      const cur = byHeight.get(p.height);
      // Equal views at one height cannot hold different blocks with at most f faults; the
      // hash order only keeps the choice deterministic if they ever do.
      if (!cur || p.view > cur.view || (p.view === cur.view && p.hash < cur.hash)) byHeight.set(p.height, p);
    }
  }
  const picks: PreparedCert[] = [];
  let prev = best.committedHash;
  for (let h = cStar + 1; ; h++) {
    const p = byHeight.get(h);
    if (!p || p.parentHash !== prev) break;
    picks.push(p);
    prev = p.hash;
  }
  return { cStar, hashStar: best.committedHash, certStar: best.committedCert, picks };
}

export interface CheckedNewView extends Selection {
  set: readonly number[];
  leader: number;
  /** the re-proposals with their payloads */
  reproposals: Reproposal[];
}

export type NewViewCheck = { ok: true; value: CheckedNewView } | { ok: false; reason: string; unknownSet?: number };

/**
 * Checks a NEW-VIEW: its view changes (each through `checkVc`, which may cache), counted in the
 * set of the height above their highest committed one; the leader's signature; and that its
 * re-proposals are exactly what selectReproposals computes, with payloads matching the digests.
 */
export function checkNewView(ctx: CheckContext, nv: NewView, checkVc: (vc: ViewChange) => string | null): NewViewCheck {
  const seen = new Set<number>();
  for (const vc of nv.viewChanges) {
    if (vc.view !== nv.view) return { ok: false, reason: 'a view change is for another view' };
    if (seen.has(vc.replica)) return { ok: false, reason: 'two view changes from one replica' };
    seen.add(vc.replica);
  }
  const sel = selectReproposals(nv.viewChanges);
  const set = ctx.setAt(sel.cStar + 1);
  if (!set) return { ok: false, reason: 'validator set unknown', unknownSet: sel.cStar + 1 };
  for (const vc of nv.viewChanges) if (!set.includes(vc.replica)) return { ok: false, reason: `view change from ${vc.replica}, not a validator` };
  const q = quorumSize(set.length);
  if (nv.viewChanges.length < q) return { ok: false, reason: `${nv.viewChanges.length} view changes, quorum is ${q}` };
  const leader = leaderOf(set, nv.view);
  if (!ctx.crypto.verify(leader, newViewSigningBytes(ctx.chain, nv), nv.sig)) return { ok: false, reason: 'not signed by the view\'s leader' };
  for (const vc of nv.viewChanges) {
    const bad = checkVc(vc);
    if (bad) return { ok: false, reason: `view change from ${vc.replica}: ${bad}` };
  }
  if (nv.reproposals.length !== sel.picks.length) return { ok: false, reason: `${nv.reproposals.length} re-proposals, the view changes force ${sel.picks.length}` };
  for (let i = 0; i < sel.picks.length; i++) {
    const p = sel.picks[i]!;
    const rp = nv.reproposals[i]!;
    if (rp.height !== p.height || rp.hash !== p.hash || rp.parentHash !== p.parentHash) return { ok: false, reason: `re-proposal at ${rp.height} is not the forced block` };
    if (contentDigest(rp.parentHash, rp.payload) !== p.digest) return { ok: false, reason: `re-proposal at ${rp.height} has the wrong payload` };
  }
  return { ok: true, value: { ...sel, set, leader, reproposals: nv.reproposals } };
}

/** The (k)-th largest value (k from 1), or null when there are fewer than k. */
export function kthLargest(values: number[], k: number): number | null {
  if (values.length < k) return null;
  return [...values].sort((a, b) => b - a)[k - 1]!;
}
