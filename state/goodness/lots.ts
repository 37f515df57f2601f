// Lots on an account (goodness.md "Earning" and "Spending"): issued points, kept sorted by
// (expiresAt, deed) so that a redemption burns the earliest expiry first and every replica
// burns the same parts. Pure functions over records: each returns a new account.
import type { AccountRecord, BurnedPart, Lot } from './records.ts';

function before(a: { expiresAt: number; deed: string }, b: { expiresAt: number; deed: string }): boolean {
  return a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.deed < b.deed);
}

/** A new list with the lot of a new deed in its place. */
export function withNewLot(lots: readonly Lot[], lot: Lot): Lot[] {
  const out = lots.slice();
  // Lots are issued in time order, so the new one usually goes last.
  let i = out.length;
  while (i > 0 && before(lot, out[i - 1]!)) i--;
  // Members in JCS order (canonical.ts).
  const fresh: Lot = { deed: lot.deed, expiresAt: lot.expiresAt, points: lot.points, scheme: lot.scheme };
  if (i === out.length) out.push(fresh);
  else out.splice(i, 0, fresh);
  return out;
}

/** Adds points to the lot of `lot.deed` (a cancel giving back part of it) or adds the lot. */
export function creditLot(account: AccountRecord, lot: Lot): AccountRecord {
  const existing = account.lots.findIndex((l) => l.deed === lot.deed);
  let lots: Lot[];
  if (existing >= 0) {
    lots = account.lots.slice();
    const l = lots[existing]!;
    lots[existing] = { deed: l.deed, expiresAt: l.expiresAt, points: l.points + lot.points, scheme: l.scheme };
  } else {
    lots = withNewLot(account.lots, lot);
  }
  return { ...account, lots, points: account.points + lot.points };
}

/** Live points of one scheme on the account at `now`. */
export function livePoints(account: AccountRecord, scheme: string, now: number): number {
  let sum = 0;
  for (const l of account.lots) if (l.scheme === scheme && l.expiresAt > now) sum += l.points;
  return sum;
}

/** Burns `points` of `scheme` earliest expiry first; the caller has checked there are enough. */
export function burnPoints(account: AccountRecord, scheme: string, points: number, now: number): { account: AccountRecord; burned: BurnedPart[] } {
  const lots: Lot[] = [];
  const burned: BurnedPart[] = [];
  let left = points;
  for (const l of account.lots) {
    if (left === 0 || l.scheme !== scheme || l.expiresAt <= now) {
      lots.push(l);
      continue;
    }
    const take = Math.min(left, l.points);
    left -= take;
    burned.push({ deed: l.deed, expiresAt: l.expiresAt, points: take });
    if (take < l.points) lots.push({ deed: l.deed, expiresAt: l.expiresAt, points: l.points - take, scheme: l.scheme });
  }
  if (left !== 0) throw new Error(`burnPoints: ${points} points of ${scheme} asked, ${points - left} live`);
  return { account: { ...account, lots, points: account.points - points }, burned };
}

/** Takes out the lots whose expiresAt is at or before `now`. */
export function takeExpired(account: AccountRecord, now: number): { account: AccountRecord; expired: Lot[] } {
  const expired: Lot[] = [];
  const lots: Lot[] = [];
  let points = account.points;
  for (const l of account.lots) {
    if (l.expiresAt <= now) {
      expired.push(l);
      points -= l.points;
    } else lots.push(l);
  }
  return expired.length === 0 ? { account, expired } : { account: { ...account, lots, points }, expired };
}

/** Takes out the lot of one deed, if the account still has it. */
export function takeLotOf(account: AccountRecord, deed: string): { account: AccountRecord; lot: Lot | undefined } {
  const i = account.lots.findIndex((l) => l.deed === deed);
  if (i < 0) return { account, lot: undefined };
  const lot = account.lots[i]!;
  const lots = account.lots.slice();
  lots.splice(i, 1);
  return { account: { ...account, lots, points: account.points - lot.points }, lot };
}
