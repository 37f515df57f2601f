// The votes of one kind at one (view, height): one per validator, checked lazily. A vote is
// stored unverified; once the votes for one content could reach a quorum they are verified
// together (one aggregate check, one by one only if it fails), so the common case costs one
// pairing per quorum instead of one per vote. PRECOMMITs carry no signature: the channel
// authenticates their sender, and they are never shown to anyone else (README.md).
import { verifyMany, type VoteCrypto } from './vote-crypto.ts';

export interface Vote {
  /** what the vote is for: the hash, plus the digest for PREPAREs */
  key: string;
  hash: string;
  digest?: string;
  sig: Uint8Array;
  verified: boolean;
}

/** A PRECOMMIT: authenticated by the channel it came on (or this replica's own), nothing to verify. */
export function unsignedVote(hash: string): Vote {
  return { key: hash, hash, sig: NO_SIGNATURE, verified: true };
}
const NO_SIGNATURE = new Uint8Array(0);

export type AddResult = 'added' | 'duplicate' | 'conflict' | 'banned';

export class VoteTable {
  private readonly votes = new Map<number, Vote>();
  /** validators whose vote here failed verification: a second try is not worth another check */
  private readonly banned = new Set<number>();

  add(signer: number, vote: Vote): AddResult {
    if (this.banned.has(signer)) return 'banned';
    const cur = this.votes.get(signer);
    if (!cur) {
      this.votes.set(signer, vote);
      return 'added';
    }
    if (cur.key !== vote.key) return 'conflict';
    return 'duplicate';
  }

  /** Puts a signer's vote in place of whatever it had (the leader's checked pre-prepare outranks a stray PREPARE). */
  replace(signer: number, vote: Vote): void {
    this.votes.set(signer, vote);
  }

  get(signer: number): Vote | undefined {
    return this.votes.get(signer);
  }

  has(signer: number): boolean {
    return this.votes.has(signer);
  }

  get size(): number {
    return this.votes.size;
  }

  /** Distinct keys with at least `min` votes (verified or not), for deciding what to check. */
  keysWithAtLeast(min: number): string[] {
    const counts = new Map<string, number>();
    for (const v of this.votes.values()) counts.set(v.key, (counts.get(v.key) ?? 0) + 1);
    return [...counts].filter(([, n]) => n >= min).map(([k]) => k);
  }

  sample(key: string): Vote | undefined {
    for (const v of this.votes.values()) if (v.key === key) return v;
    return undefined;
  }

  /**
   * Verifies the unverified votes for `key` once they could make `quorum` among the members,
   * removes the bad ones (reported through onBad) and returns the verified signers, ascending,
   * when they make a quorum; null otherwise.
   */
  verifiedQuorum(key: string, quorum: number, members: readonly number[], crypto: VoteCrypto, message: Uint8Array, onBad: (signer: number) => void): number[] | null {
    const matching = this.votesFor(key, members);
    if (matching.length < quorum) return null;
    const unverified = matching.filter(([, v]) => !v.verified);
    if (unverified.length > 0) {
      const ok = verifyMany(crypto, message, unverified.map(([index, v]) => ({ index, signature: v.sig })));
      unverified.forEach(([signer, v], i) => {
        if (ok[i]) v.verified = true;
        else {
          this.votes.delete(signer);
          this.banned.add(signer);
          onBad(signer);
        }
      });
    }
    return ascendingQuorum(matching.filter(([, v]) => v.verified), quorum);
  }

  /** The members voting for `key`, ascending, when they make a quorum (votes the channel authenticated: unsignedVote). */
  authenticatedQuorum(key: string, quorum: number, members: readonly number[]): number[] | null {
    return ascendingQuorum(this.votesFor(key, members), quorum);
  }

  private votesFor(key: string, members: readonly number[]): [number, Vote][] {
    return [...this.votes].filter(([s, v]) => v.key === key && members.includes(s));
  }

  signatures(signers: number[]): Uint8Array[] {
    return signers.map((s) => this.votes.get(s)!.sig);
  }
}

/** The signers of `votes`, ascending, when they are at least `quorum`; null otherwise. */
function ascendingQuorum(votes: [number, Vote][], quorum: number): number[] | null {
  const signers = votes.map(([s]) => s).sort((a, b) => a - b);
  return signers.length >= quorum ? signers : null;
}
