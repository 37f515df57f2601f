// An account's lots (goodness.md "Earning" and "Spending"), kept so that what a transaction
// writes does not grow with the number of lots the account holds.
//
// The lots of an account, sorted by (expiresAt, deed), are cut into pages: runs of at most PAGE
// lots. While they fit one page, the account record holds them (`lots`, as before there were
// pages: a small account costs one record, one write). Beyond one page, every page is stored under
// lotPageKey(account, n) as a JSON array of lots, `lots` is empty, and the record keeps the index
// (`pages`): per page, in order, a separator and the page's number n. Lots are issued in time
// order, so a new lot usually goes at the end of the last page; redemptions and expiry burn from
// the front (earliest expiry first, so every replica burns the same parts); a cancel or a reversal
// finds the page of its (expiresAt, deed) by a binary search of the index. Each touches the pages
// it needs and the account record, nothing else.
//
// The separator of a page is a key (expiresAt, deed) that sorts after the previous page's last lot
// and not after the page's first lot; its deed is left out (it sorts before every deed id) when
// the expiry alone separates the two pages, as it does unless a boundary falls between lots of
// one block. The first page's separator is its first lot's expiry, so that the index alone says
// whether anything is due to expire. Taking lots out of a page never makes its separator wrong,
// so it is set only when a boundary is made.
//
// PAGE is 16. A deed rewrites the last page (on average half full), a redemption the first (usually
// full), and each the account record with its index: with lots of ~75 bytes and index entries of
// ~20, about 75·PAGE + 20·n/PAGE bytes for an account of n lots, least for PAGE near √n/2: 10 for a
// year of daily trips, 16 for 1,000 lots. A larger PAGE also keeps more accounts in one record (one
// write per transaction instead of two: the ledger benchmark's accounts hold two lots, the cluster
// benchmark's a few tens). 16 is the compromise: a page of 1.2 KB at most, and an index of ~1.2 KB
// for 1,000 lots.
//
// A LotBook is one transaction's view of one account's lots: it reads pages through the state,
// keeps the pages it changes as new arrays of new lots (a record read from the state is never
// changed, so a refused transaction leaves nothing behind), and writes them only when asked.
import { accountRecord, lotPageKey, type AccountRecord, type BurnedPart, type DailyCount, type Lot, type PageRef } from './records.ts';
import type { StateView } from './state.ts';

/** The most lots a page holds. */
export const PAGE = 16;

/** In a book's index, the number of the page the account record holds (`lots`). */
const IN_RECORD = -1;

export interface WritableState extends StateView {
  put(key: string, value: unknown): void;
  delete(key: string): void;
}

/** <0, 0 or >0 as (e1, d1) sorts before, with or after (e2, d2): expiry first, then deed id. */
function compare(e1: number, d1: string, e2: number, d2: string): number {
  return e1 !== e2 ? e1 - e2 : d1 < d2 ? -1 : d1 > d2 ? 1 : 0;
}

/** compare(), of a page's separator and a key: a separator without a deed sorts before every deed id. */
function compareSeparator(ref: PageRef, expiresAt: number, deed: string): number {
  return compare(ref[0], ref[2] ?? '', expiresAt, deed);
}

/** The separator of page `page` whose first lot is `first`, after the previous page's last lot `last`. */
function separator(last: Lot, first: Lot, page: number): PageRef {
  return last.expiresAt < first.expiresAt ? [first.expiresAt, page] : [first.expiresAt, page, first.deed];
}

/** A lot with its members in JCS order (canonical.ts). */
function lot(deed: string, expiresAt: number, points: number, scheme: string): Lot {
  return { deed, expiresAt, points, scheme };
}

/** Whether `l` is the lot of `deed` that expires at `expiresAt` (what lowerBound found may be the next one). */
function isLotOf(l: Lot | undefined, deed: string, expiresAt: number): l is Lot {
  return l !== undefined && l.deed === deed && l.expiresAt === expiresAt;
}

/** The first position in `lots` whose lot is not before (expiresAt, deed). */
function lowerBound(lots: readonly Lot[], expiresAt: number, deed: string): number {
  let lo = 0;
  let hi = lots.length;
  // Lots are issued in time order: a new one usually goes last.
  if (hi > 0 && compare(lots[hi - 1]!.expiresAt, lots[hi - 1]!.deed, expiresAt, deed) < 0) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const l = lots[mid]!;
    if (compare(l.expiresAt, l.deed, expiresAt, deed) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The stored lots of a page the index names. */
function stored(state: StateView, key: string): Lot[] {
  const lots = state.get(key) as Lot[] | undefined;
  if (lots === undefined) throw new Error(`lot page ${key} is in its account's index but not in the state`);
  return lots;
}

/** Every lot of the account, in order (queries; the invariants). */
export function lotsOf(state: StateView, account: AccountRecord): Lot[] {
  if (account.pages === undefined) return account.lots;
  const out: Lot[] = [];
  for (const ref of account.pages) for (const l of stored(state, lotPageKey(account.id, ref[1]))) out.push(l);
  return out;
}

/**
 * The account record with these lots, index, points and daily counts, members in JCS order
 * (canonical.ts); `pages` undefined when the record holds the lots.
 */
export function accountWithLots(a: AccountRecord, lots: Lot[], pages: PageRef[] | undefined, points: number, daily: Record<string, DailyCount> | undefined): AccountRecord {
  return accountRecord({ id: a.id, roles: a.roles, status: a.status, name: a.name, lots, pages, points, daily });
}

/**
 * The record's lots with a new deed's lot in its place, when the account has no stored pages and
 * its record has room; null otherwise (use a LotBook). The hot path of deed.submit: most accounts
 * hold fewer than PAGE lots, and a book's bookkeeping cost a tenth of the ledger's throughput.
 */
export function withNewLotInRecord(account: AccountRecord, deed: string, expiresAt: number, points: number, scheme: string): Lot[] | null {
  const lots = account.lots;
  if (account.pages !== undefined || lots.length >= PAGE) return null;
  const at = lowerBound(lots, expiresAt, deed);
  if (isLotOf(lots[at], deed, expiresAt)) return null;
  const out = lots.slice();
  out.splice(at, 0, lot(deed, expiresAt, points, scheme));
  return out;
}

/** A page this book has read or changed. */
interface SeenPage {
  readonly page: number;
  /** lotPageKey of the page, built once: a key string keeps its hash for the write ('' for the record's page) */
  readonly key: string;
  /** its lots as the book now sees them: the stored array until changed (never changed in place) */
  lots: Lot[];
  changed: boolean;
  /** made by this book: nothing of it is stored yet */
  readonly created: boolean;
  /** lost lots since the last tidy: it may now fit with a neighbour in one page */
  shrunk: boolean;
}

const NO_PAGES: PageRef[] = [];

export class LotBook {
  /** the index, with the record's page as IN_RECORD while the account has no stored pages */
  private refs: PageRef[];
  private refsOwned = false;
  private readonly seen: SeenPage[] = [];
  /** live points the book's changes add (negative: take away) */
  private delta = 0;

  constructor(
    private readonly state: StateView,
    private readonly account: AccountRecord,
  ) {
    this.refs = account.pages ?? (account.lots.length > 0 ? [[account.lots[0]!.expiresAt, IN_RECORD]] : NO_PAGES);
  }

  /** Whether the account holds a lot expiring at or before `now` (the record says: no page is read). */
  static hasDue(account: AccountRecord, now: number): boolean {
    const first = account.pages === undefined ? account.lots[0]?.expiresAt : account.pages[0]?.[0];
    return first !== undefined && first <= now;
  }

  /** The i-th page of the index, read through the state the first time. */
  private pageAt(i: number): SeenPage {
    const page = this.refs[i]![1];
    const seen = this.seen;
    for (let k = 0; k < seen.length; k++) if (seen[k]!.page === page) return seen[k]!;
    const key = page === IN_RECORD ? '' : lotPageKey(this.account.id, page);
    const p: SeenPage = { page, key, lots: page === IN_RECORD ? this.account.lots : stored(this.state, key), changed: false, created: false, shrunk: false };
    seen.push(p);
    return p;
  }

  /** The lots of the i-th page, as this book now sees them (read only). */
  private lotsAt(i: number): readonly Lot[] {
    return this.pageAt(i).lots;
  }

  private ownRefs(): PageRef[] {
    if (!this.refsOwned) {
      this.refs = this.refs.slice();
      this.refsOwned = true;
    }
    return this.refs;
  }

  /** A number no page of the account uses (in the state or in this book). */
  private newPageNumber(): number {
    let max = -1;
    for (const r of this.refs) if (r[1] > max) max = r[1];
    for (const p of this.seen) if (p.page > max) max = p.page;
    return max + 1;
  }

  /** Makes `lots` the i-th page's lots (they are this book's own): the index follows; an empty page goes. */
  private replace(i: number, lots: Lot[]): void {
    const p = this.pageAt(i);
    if (lots.length > 0 && lots.length < p.lots.length) p.shrunk = true;
    p.lots = lots;
    p.changed = true;
    if (lots.length === 0) {
      const refs = this.ownRefs();
      refs.splice(i, 1);
      // The next page is now the first: its separator becomes its first lot's expiry.
      if (i === 0 && refs.length > 0) {
        const first = this.lotsAt(0)[0]!;
        if (refs[0]![0] !== first.expiresAt || refs[0]!.length > 2) refs[0] = [first.expiresAt, refs[0]![1]];
      }
      return;
    }
    const ref = this.refs[i]!;
    const first = lots[0]!;
    if (i === 0) {
      if (ref[0] !== first.expiresAt || ref.length > 2) this.ownRefs()[0] = [first.expiresAt, p.page];
    } else if (compareSeparator(ref, first.expiresAt, first.deed) > 0) {
      // A lot went in front of the separator (it came after the previous page, which was full).
      this.ownRefs()[i] = separator(this.lotsAt(i - 1).at(-1)!, first, p.page);
    }
  }

  /** A new page of `lots` (this book's own), at position i of the index. */
  private insertPage(i: number, lots: Lot[]): void {
    const page = this.newPageNumber();
    const ref: PageRef = i === 0 ? [lots[0]!.expiresAt, page] : separator(this.lotsAt(i - 1).at(-1)!, lots[0]!, page);
    this.seen.push({ page, key: lotPageKey(this.account.id, page), lots, changed: true, created: true, shrunk: false });
    this.ownRefs().splice(i, 0, ref);
  }

  /** The index position of the page that holds, or would hold, (expiresAt, deed); -1 when there are no pages. */
  private pageFor(expiresAt: number, deed: string): number {
    const refs = this.refs;
    // The last page whose separator is not after the key; the first page when every one is.
    let lo = 0;
    let hi = refs.length;
    if (hi === 0) return -1;
    if (compareSeparator(refs[hi - 1]!, expiresAt, deed) <= 0) return hi - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareSeparator(refs[mid]!, expiresAt, deed) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : lo - 1;
  }

  /**
   * Adds `points` to the lot of `deed` (a cancel giving back part of it) or, when the account
   * has none, adds the lot in its place (an issue, or a cancel after the lot was all spent).
   */
  credit(deed: string, expiresAt: number, points: number, scheme: string): void {
    this.delta += points;
    const i = this.pageFor(expiresAt, deed);
    if (i < 0) {
      this.insertPage(0, [lot(deed, expiresAt, points, scheme)]);
      return;
    }
    const before = this.lotsAt(i);
    const at = lowerBound(before, expiresAt, deed);
    const lots = before.slice();
    const existing = lots[at];
    if (isLotOf(existing, deed, expiresAt)) {
      lots[at] = lot(deed, expiresAt, existing.points + points, existing.scheme);
      this.replace(i, lots);
      return;
    }
    const fresh = lot(deed, expiresAt, points, scheme);
    if (lots.length < PAGE) {
      lots.splice(at, 0, fresh);
      this.replace(i, lots);
    } else if (at === lots.length && i + 1 < this.refs.length && this.lotsAt(i + 1).length < PAGE) {
      // After the end of a full page and before the next one, which has room: at its front.
      this.replace(i + 1, [fresh, ...this.lotsAt(i + 1)]);
    } else if (at === lots.length) {
      // After the end of a full page (an issue after the last lot, usually): a page of its own,
      // so that pages filled in time order stay full.
      this.insertPage(i + 1, [fresh]);
    } else {
      // Inside a full page: it splits in two halves.
      lots.splice(at, 0, fresh);
      const right = lots.splice(lots.length >>> 1);
      this.replace(i, lots);
      this.insertPage(i + 1, right);
    }
  }

  /**
   * Burns `points` of `scheme`, earliest expiry first, from lots still live at `now`; the parts
   * burned, or null (and the book unchanged) when the account has fewer live points of the scheme.
   */
  burn(scheme: string, points: number, now: number): BurnedPart[] | null {
    const burned: BurnedPart[] = [];
    const pages: { i: number; lots: Lot[] }[] = [];
    let left = points;
    for (let i = 0; i < this.refs.length && left > 0; i++) {
      const lots = this.lotsAt(i);
      let kept: Lot[] | null = null;
      for (let j = 0; j < lots.length; j++) {
        const l = lots[j]!;
        if (left === 0 || l.scheme !== scheme || l.expiresAt <= now) {
          if (kept) kept.push(l);
          continue;
        }
        kept ??= lots.slice(0, j);
        const take = Math.min(left, l.points);
        left -= take;
        burned.push({ deed: l.deed, expiresAt: l.expiresAt, points: take });
        if (take < l.points) kept.push(lot(l.deed, l.expiresAt, l.points - take, l.scheme));
      }
      if (kept) pages.push({ i, lots: kept });
    }
    if (left > 0) return null;
    // Last page first: a page that empties leaves the index without moving the earlier ones.
    for (let k = pages.length - 1; k >= 0; k--) this.replace(pages[k]!.i, pages[k]!.lots);
    this.delta -= points;
    this.tidy();
    return burned;
  }

  /** Live points of `scheme` at `now` (reads every page: for a refusal's message). */
  livePoints(scheme: string, now: number): number {
    let sum = 0;
    for (let i = 0; i < this.refs.length; i++) for (const l of this.lotsAt(i)) if (l.scheme === scheme && l.expiresAt > now) sum += l.points;
    return sum;
  }

  /** Takes out the lots whose expiresAt is at or before `now`: they are the first ones. */
  takeExpired(now: number): Lot[] {
    const expired: Lot[] = [];
    while (this.refs.length > 0 && this.refs[0]![0] <= now) {
      const lots = this.lotsAt(0);
      let n = 0;
      while (n < lots.length && lots[n]!.expiresAt <= now) expired.push(lots[n++]!);
      if (n === 0) break;
      this.replace(0, lots.slice(n));
      if (n < lots.length) break;
    }
    for (const l of expired) this.delta -= l.points;
    this.tidy();
    return expired;
  }

  /** Takes out the lot of `deed` (which expires at `expiresAt`), if the account still has it. */
  take(deed: string, expiresAt: number): Lot | undefined {
    const i = this.pageFor(expiresAt, deed);
    if (i < 0) return undefined;
    const before = this.lotsAt(i);
    const at = lowerBound(before, expiresAt, deed);
    const found = before[at];
    if (!isLotOf(found, deed, expiresAt)) return undefined;
    const lots = before.slice();
    lots.splice(at, 1);
    this.replace(i, lots);
    this.delta -= found.points;
    this.tidy();
    return found;
  }

  /**
   * A page that lost lots joins its next (else its previous) neighbour when their lots fit one
   * page together, so that lots burned from among others (another scheme's), or taken out, do not
   * leave many thin pages behind. Lots burned or expired from the front empty the first page:
   * its neighbour is full, nothing joins, and nothing more is written.
   */
  private tidy(): void {
    for (let k = 0; k < this.seen.length; k++) {
      const c = this.seen[k]!;
      if (!c.shrunk) continue;
      c.shrunk = false;
      if (c.lots.length === 0) continue;
      let i = 0;
      while (i < this.refs.length && this.refs[i]![1] !== c.page) i++;
      const next = i + 1 < this.refs.length ? this.lotsAt(i + 1) : null;
      if (next !== null && c.lots.length + next.length <= PAGE) {
        this.replace(i, c.lots.concat(next));
        this.replace(i + 1, []);
        continue;
      }
      const previous = i > 0 ? this.lotsAt(i - 1) : null;
      if (previous !== null && previous.length + c.lots.length <= PAGE) {
        this.replace(i - 1, previous.concat(c.lots));
        this.replace(i, []);
      }
    }
  }

  get points(): number {
    return this.account.points + this.delta;
  }

  /**
   * Writes the changed pages and gives the account record with its lots, index and points (for
   * the caller to write), and `daily` as its daily counts. One page left: the record holds it,
   * and a stored one is deleted. More: every page is stored, the one the record held included.
   * Called once, last.
   */
  write(state: WritableState, daily = this.account.daily): AccountRecord {
    const refs = this.refs;
    const seen = this.seen;
    if (refs.length <= 1) {
      // Read first: a stored page left alone moves into the record, and its key goes with the others.
      const lots = refs.length === 0 ? [] : this.pageAt(0).lots;
      for (const p of seen) if (p.page !== IN_RECORD && !p.created) state.delete(p.key);
      return accountWithLots(this.account, lots, undefined, this.points, daily);
    }
    const index = this.ownRefs();
    for (let i = 0; i < index.length; i++) {
      const page = index[i]![1];
      if (page === IN_RECORD) {
        // The page the record held goes under a key of its own.
        const number = this.newPageNumber();
        state.put(lotPageKey(this.account.id, number), this.lotsAt(i));
        const ref = index[i]!;
        index[i] = ref.length > 2 ? [ref[0], number, ref[2]!] : [ref[0], number];
      }
    }
    for (const p of seen) {
      if (!p.changed || p.page === IN_RECORD) continue;
      if (p.lots.length > 0) state.put(p.key, p.lots);
      else if (!p.created) state.delete(p.key);
    }
    return accountWithLots(this.account, [], index, this.points, daily);
  }
}
