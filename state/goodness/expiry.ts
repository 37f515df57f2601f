// Lot expiry (goodness.md: "Lots past expiresAt stop counting at once and are burned by the
// state machine"). Before a block's transactions run, every lot whose expiresAt is at or before
// the block time is burned. An in-memory index says which accounts to look at; it is only a
// shortcut: it may hold stale entries (lots since spent, or created by a block that was executed
// and then replaced) and every entry is checked against the state, so what expires depends on the
// state alone. It is rebuilt on open from the lots, those in account records and those in pages.
import type { LotTracker } from './handler.ts';
import { LotBook, type WritableState } from './lot-pages.ts';
import { accountKey, deedKey, schemeKey, type AccountRecord, type DeedRecord, type SchemeRecord } from './records.ts';

export class LotExpiryIndex implements LotTracker {
  /**
   * Accounts by expiry time. A list, not a set: an account may appear more than once (`due`
   * removes repeats), and a block of deeds appends thousands of accounts without hashing any.
   */
  private readonly byTime = new Map<number, string[]>();
  /** the keys of byTime, ascending */
  private times: number[] = [];
  /** the last list appended to: the lots of one block share their expiry time */
  private lastTime = Number.NaN;
  private lastList: string[] = [];

  clear(): void {
    this.byTime.clear();
    this.times = [];
    this.lastTime = Number.NaN;
    this.lastList = [];
  }

  track(expiresAt: number, account: string): void {
    if (expiresAt === this.lastTime) {
      this.lastList.push(account);
      return;
    }
    let list = this.byTime.get(expiresAt);
    if (!list) {
      list = [];
      this.byTime.set(expiresAt, list);
      // Lots are mostly created in time order: the new time usually goes last.
      let i = this.times.length;
      while (i > 0 && this.times[i - 1]! > expiresAt) i--;
      this.times.splice(i, 0, expiresAt);
    }
    this.lastTime = expiresAt;
    this.lastList = list;
    list.push(account);
  }

  /** Accounts that may hold a lot expiring at or before `now`. */
  due(now: number): Set<string> {
    const out = new Set<string>();
    for (const t of this.times) {
      if (t > now) break;
      for (const a of this.byTime.get(t)!) out.add(a);
    }
    return out;
  }

  /** Once a block with time `now` is committed, its due entries are done for good. */
  forgetUpTo(now: number): void {
    let n = 0;
    while (n < this.times.length && this.times[n]! <= now) this.byTime.delete(this.times[n++]!);
    if (n > 0) this.times = this.times.slice(n);
    if (this.lastTime <= now) {
      this.lastTime = Number.NaN;
      this.lastList = [];
    }
  }
}

/** Burns every lot due at `now` in `state`, with the scheme and deed figures that go with it. */
export function expireDueLots(index: LotExpiryIndex, state: WritableState, now: number): void {
  for (const id of index.due(now)) {
    const before = state.get(accountKey(id)) as AccountRecord | undefined;
    // The record says whether its first lot is due: no page is read for an account with nothing due.
    if (!before || !LotBook.hasDue(before, now)) continue;
    const book = new LotBook(state, before);
    const expired = book.takeExpired(now);
    if (expired.length === 0) continue;
    state.put(accountKey(id), book.write(state));
    for (const lot of expired) {
      const scheme = state.get(schemeKey(lot.scheme)) as SchemeRecord;
      state.put(schemeKey(lot.scheme), { ...scheme, live: scheme.live - lot.points, expired: scheme.expired + lot.points });
      const deed = state.get(deedKey(lot.deed)) as DeedRecord;
      state.put(deedKey(lot.deed), { ...deed, expired: deed.expired + lot.points });
    }
  }
}
