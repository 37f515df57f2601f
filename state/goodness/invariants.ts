// The eight invariants of goodness.md, checked over a whole state: every figure the ledger
// keeps is recomputed from the records it summarises. Tests run this after every block; an
// auditor could run it over a node's state. Invariant 8 (a refused transaction changes nothing
// but its receipt) is about transitions, not states: the property test checks it by executing
// each block again without its refused transactions and comparing app hashes.
import { canonicalJson } from './canonical.ts';
import { PAGE } from './lot-pages.ts';
import type {
  AccountRecord,
  BatchProgress,
  BatchRecord,
  ConsentRecord,
  DeedRecord,
  Lot,
  OfferRecord,
  PoolRecord,
  RedemptionRecord,
  SchemeRecord,
} from './records.ts';

export interface InvariantReport {
  violations: string[];
  /** JCS of every closed batch, to hand to the next check (invariant 7: a closed batch never changes) */
  batches: Map<string, string>;
}

function byPrefix(entries: Iterable<[string, unknown]>) {
  const out = {
    accounts: [] as AccountRecord[],
    schemes: new Map<string, SchemeRecord>(),
    pools: new Map<string, PoolRecord>(),
    deeds: new Map<string, DeedRecord>(),
    consents: new Map<string, ConsentRecord>(),
    offers: new Map<string, OfferRecord>(),
    redemptions: new Map<string, RedemptionRecord>(),
    batches: new Map<string, BatchRecord>(),
    progress: new Map<string, BatchProgress>(),
    evidence: new Map<string, string>(),
    /** lot pages by `<account>/<n>` */
    lotPages: new Map<string, Lot[]>(),
  };
  for (const [key, value] of entries) {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const id = key.slice(slash + 1);
    switch (kind) {
      case 'a': out.accounts.push(value as AccountRecord); break;
      case 's': out.schemes.set(id, value as SchemeRecord); break;
      case 'f': out.pools.set(id, value as PoolRecord); break;
      case 'd': out.deeds.set(id, value as DeedRecord); break;
      case 'k': out.consents.set(id, value as ConsentRecord); break;
      case 'o': out.offers.set(id, value as OfferRecord); break;
      case 'r': out.redemptions.set(id, value as RedemptionRecord); break;
      case 'b': out.batches.set(id, value as BatchRecord); break;
      case 'bs': out.progress.set(id, value as BatchProgress); break;
      case 'e': out.evidence.set(id, value as string); break;
      case 'lp': out.lotPages.set(id, value as Lot[]); break;
    }
  }
  return out;
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/**
 * An account's lots: those its record holds, or those of the pages its index names (lot-pages.ts),
 * whose keys go into `indexed`. The record holds at most PAGE lots, and none when it has an index;
 * an index names at least two pages (one page goes in the record); each page exists, holds 1 to
 * PAGE lots, and its separator sorts after the previous page's last lot and not after its own
 * first lot (the first page's is its first lot's expiry); all the lots are in strict
 * (expiresAt, deed) order.
 */
function lotsInPages(a: AccountRecord, pages: Map<string, Lot[]>, indexed: Set<string>, fail: (msg: string) => void): Lot[] {
  const before = (x: { expiresAt: number; deed: string }, y: { expiresAt: number; deed: string }) => x.expiresAt < y.expiresAt || (x.expiresAt === y.expiresAt && x.deed < y.deed);
  const inOrder = (lots: Lot[]) => {
    for (let i = 1; i < lots.length; i++) if (!before(lots[i - 1]!, lots[i]!)) fail(`account ${a.id}: lot of deed ${lots[i]!.deed} is out of (expiresAt, deed) order`);
    return lots;
  };
  if (a.pages === undefined) {
    if (a.lots.length > PAGE) fail(`account ${a.id} holds ${a.lots.length} lots in its record (at most ${PAGE})`);
    return inOrder(a.lots);
  }
  if (a.lots.length > 0) fail(`account ${a.id} has an index of pages and lots in its record`);
  if (a.pages.length < 2) fail(`account ${a.id} has ${a.pages.length} pages under keys of their own (one page goes in its record)`);
  const out: Lot[] = [];
  for (let i = 0; i < a.pages.length; i++) {
    const [expiresAt, n, deed] = a.pages[i]!;
    const key = `${a.id}/${n}`;
    const page = pages.get(key);
    if (indexed.has(key)) fail(`account ${a.id}: its index names page ${n} twice`);
    indexed.add(key);
    if (!page || page.length === 0) { fail(`account ${a.id}: its index names page ${n}, which does not exist or is empty`); continue; }
    if (page.length > PAGE) fail(`account ${a.id}: page ${n} holds ${page.length} lots (at most ${PAGE})`);
    const separator = { expiresAt, deed: deed ?? '' };
    if (before(page[0]!, separator)) fail(`account ${a.id}: the separator of page ${n} sorts after its first lot`);
    if (i === 0 && (expiresAt !== page[0]!.expiresAt || deed !== undefined)) fail(`account ${a.id}: the separator of its first page is not its first lot's expiry`);
    const last = out.at(-1);
    if (last && !before(last, separator)) fail(`account ${a.id}: the separator of page ${n} does not sort after the previous page's last lot`);
    out.push(...page);
  }
  return inOrder(out);
}

export function checkInvariants(entries: Iterable<[string, unknown]>, previousBatches: Map<string, string> = new Map()): InvariantReport {
  const s = byPrefix(entries);
  const v: string[] = [];
  const fail = (msg: string) => v.push(msg);

  // Recomputed per-scheme figures.
  const issued = new Map<string, number>();
  const pending = new Map<string, number>();
  const live = new Map<string, number>();
  const redeemed = new Map<string, number>();
  const expired = new Map<string, number>();
  const clawed = new Map<string, number>();
  const deedRemainder = new Map<string, number>(); // deed -> points not yet accounted for
  const daily = new Map<string, number>();

  for (const [id, d] of s.deeds) {
    const scheme = s.schemes.get(d.scheme);
    if (!scheme) { fail(`deed ${id} names unknown scheme ${d.scheme}`); continue; }
    if (d.status === 'pending') add(pending, d.scheme, d.points);
    if (d.issuedAt !== null) {
      add(issued, d.scheme, d.points);
      deedRemainder.set(id, d.points - d.expired - d.clawedBack);
    } else if (d.expired !== 0 || d.clawedBack !== 0) fail(`deed ${id} was never issued but has expired or clawed-back points`);
    if (d.status === 'pending' || d.issuedAt !== null) add(daily, `${d.user} ${d.scheme} ${d.day}`, d.points);
    add(expired, d.scheme, d.expired);
    add(clawed, d.scheme, d.clawedBack);
    if (d.points < 1) fail(`deed ${id} is worth ${d.points} points`);
    // Invariant 5: consent, evidence and role separation behind every deed.
    const c = s.consents.get(d.consent);
    if (!c || c.user !== d.user || c.distributor !== d.distributor || c.scheme !== d.scheme) fail(`deed ${id} has no matching consent ${d.consent}`);
    else if (d.occurredAt < c.grantedAt || d.occurredAt >= c.expiresAt || d.submittedAt >= c.expiresAt || (c.revokedAt !== null && c.revokedAt < d.submittedAt)) {
      fail(`deed ${id}: consent ${d.consent} was not valid when it was submitted`);
    }
    if (s.evidence.get(`${d.scheme}/${d.evidenceHash}`) !== id) fail(`deed ${id}: its evidence hash is not recorded as its own`);
    if (d.distributor === scheme.issuer) fail(`deed ${id}: submitted by the scheme's own issuer`);
  }
  for (const [key, deed] of s.evidence) {
    const d = s.deeds.get(deed);
    if (!d || `${d.scheme}/${d.evidenceHash}` !== key) fail(`evidence ${key} points at deed ${deed}, which does not carry it`);
  }

  // Invariants 4 and 5: points live only in lots, each lot traces to one issued deed of its owner.
  const lotOfDeed = new Set<string>();
  const indexedPages = new Set<string>();
  for (const a of s.accounts) {
    let sum = 0;
    const lots = lotsInPages(a, s.lotPages, indexedPages, fail);
    if (lots.length > 0 && !a.roles.includes('user')) fail(`account ${a.id} holds lots but is not a user`);
    if (a.roles.includes('supervisor') && a.roles.length > 1) fail(`supervisor ${a.id} holds other roles`);
    for (const lot of lots) {
      sum += lot.points;
      add(live, lot.scheme, lot.points);
      const d = s.deeds.get(lot.deed);
      if (!d) { fail(`lot of ${a.id} names unknown deed ${lot.deed}`); continue; }
      if (d.user !== a.id) fail(`lot of deed ${lot.deed} is on ${a.id}, but the deed is ${d.user}'s`);
      if (d.status !== 'issued' || d.scheme !== lot.scheme || d.expiresAt !== lot.expiresAt) fail(`lot of deed ${lot.deed} does not match its issued deed`);
      if (lotOfDeed.has(lot.deed)) fail(`deed ${lot.deed} has more than one lot`);
      lotOfDeed.add(lot.deed);
      if (lot.points < 1) fail(`lot of deed ${lot.deed} holds ${lot.points} points`);
      deedRemainder.set(lot.deed, (deedRemainder.get(lot.deed) ?? 0) - lot.points);
    }
    if (sum !== a.points) fail(`account ${a.id}: points ${a.points} but its lots hold ${sum}`);
  }
  for (const key of s.lotPages.keys()) if (!indexedPages.has(key)) fail(`lot page ${key} is in no account's index`);

  // Redemptions: burned parts come from deeds of the redeeming user.
  const reserved = new Map<string, number>();
  const batchOf = new Map<string, string>();
  for (const [id, r] of s.redemptions) {
    const burnedSum = r.burned.reduce((x, p) => x + p.points, 0);
    if (burnedSum !== r.points) fail(`redemption ${id} burned ${burnedSum} points, not ${r.points}`);
    const offer = s.offers.get(r.offer);
    if (!offer || offer.pool !== r.pool || offer.exchange !== r.exchange || offer.scheme !== r.scheme) fail(`redemption ${id} does not match offer ${r.offer}`);
    if (r.status === 'cancelled') continue;
    add(redeemed, r.scheme, r.points);
    for (const p of r.burned) {
      const d = s.deeds.get(p.deed);
      if (!d || d.user !== r.user || d.scheme !== r.scheme) fail(`redemption ${id} burned points of deed ${p.deed}, not the user's own under ${r.scheme}`);
      deedRemainder.set(p.deed, (deedRemainder.get(p.deed) ?? 0) - p.points);
    }
  }
  for (const [deed, left] of deedRemainder) if (left !== 0) fail(`deed ${deed}: ${left} points are unaccounted for (lot + redeemed + expired + clawed back ≠ issued)`);

  // Invariant 7: batches.
  const settledByPool = new Map<string, number>();
  const batchJcs = new Map<string, string>();
  for (const [id, b] of s.batches) {
    const text = canonicalJson(b);
    batchJcs.set(id, text);
    const before = previousBatches.get(id);
    if (before !== undefined && before !== text) fail(`batch ${id} changed after it was closed`);
    let sum = 0;
    const lines = new Map<string, { amount: number; count: number }>();
    for (const rid of b.redemptions) {
      if (batchOf.has(rid)) fail(`redemption ${rid} is in batches ${batchOf.get(rid)} and ${id}`);
      batchOf.set(rid, id);
      const r = s.redemptions.get(rid);
      if (!r || r.status !== 'fulfilled' || r.batch !== id || !b.pools.includes(r.pool)) { fail(`batch ${id} holds redemption ${rid}, which is not a fulfilled redemption of its pools batched there`); continue; }
      sum += r.value;
      const pair = `${r.sponsor}/${r.exchange}`;
      const l = lines.get(pair) ?? { amount: 0, count: 0 };
      lines.set(pair, { amount: l.amount + r.value, count: l.count + 1 });
    }
    const lineSum = b.lines.reduce((x, l) => x + l.amount, 0);
    if (lineSum !== sum || b.total !== sum) fail(`batch ${id}: lines sum to ${lineSum}, total ${b.total}, its redemptions to ${sum}`);
    if (b.lines.length !== lines.size) fail(`batch ${id} has ${b.lines.length} lines for ${lines.size} (sponsor, exchange) pairs`);
    for (const l of b.lines) {
      const want = lines.get(`${l.sponsor}/${l.exchange}`);
      if (!want || want.amount !== l.amount || want.count !== l.redemptions) fail(`batch ${id}: line ${l.sponsor}/${l.exchange} does not sum its redemptions`);
    }
    const progress = s.progress.get(id);
    if (!progress) fail(`batch ${id} has no progress record`);
    else if (progress.settledAt !== null) for (const pa of b.poolAmounts) add(settledByPool, pa.pool, pa.amount);
  }
  for (const [id, r] of s.redemptions) {
    if (r.batch !== null && batchOf.get(id) !== r.batch) fail(`redemption ${id} says batch ${r.batch}, which does not hold it`);
    const settled = r.batch !== null && (s.progress.get(r.batch)?.settledAt ?? null) !== null;
    if (r.status !== 'cancelled' && !settled) add(reserved, r.pool, r.value);
  }

  // Invariant 3 and pool role separation.
  const funded = new Map<string, number>();
  for (const [id, p] of s.pools) {
    add(funded, p.scheme, p.confirmed);
    if (p.reserved + p.settled > p.confirmed) fail(`pool ${id}: reserved ${p.reserved} + settled ${p.settled} > confirmed ${p.confirmed}`);
    if (p.confirmed > p.amount) fail(`pool ${id}: confirmed ${p.confirmed} > committed ${p.amount}`);
    if ((reserved.get(id) ?? 0) !== p.reserved) fail(`pool ${id}: reserved ${p.reserved}, its unsettled redemptions ${reserved.get(id) ?? 0}`);
    if ((settledByPool.get(id) ?? 0) !== p.settled) fail(`pool ${id}: settled ${p.settled}, its settled batches ${settledByPool.get(id) ?? 0}`);
    if (p.clearing !== null && (p.clearing === p.sponsor || p.exchanges.includes(p.clearing))) fail(`pool ${id}: its clearing provider is also its sponsor or an exchange paid from it`);
    if (p.batched > p.fulfilled) fail(`pool ${id}: batched ${p.batched} > fulfilled ${p.fulfilled}`);
  }

  // Invariants 1, 2 and 6 per scheme.
  for (const [id, sc] of s.schemes) {
    const get = (m: Map<string, number>) => m.get(id) ?? 0;
    const figures: [string, number, number][] = [
      ['issued', sc.issued, get(issued)],
      ['pending', sc.pending, get(pending)],
      ['live', sc.live, get(live)],
      ['redeemed', sc.redeemed, get(redeemed)],
      ['expired', sc.expired, get(expired)],
      ['clawedBack', sc.clawedBack, get(clawed)],
      ['funded', sc.funded, get(funded)],
    ];
    for (const [name, kept, recomputed] of figures) if (kept !== recomputed) fail(`scheme ${id}: ${name} is ${kept}, its records say ${recomputed}`);
    if (sc.issued !== sc.live + sc.redeemed + sc.expired + sc.clawedBack) {
      fail(`scheme ${id}: issued ${sc.issued} ≠ live ${sc.live} + redeemed ${sc.redeemed} + expired ${sc.expired} + clawed back ${sc.clawedBack}`);
    }
    if (sc.issued * sc.pointValue > sc.funded) fail(`scheme ${id}: issued ${sc.issued} × pointValue ${sc.pointValue} > confirmed funding ${sc.funded}`);
    if (sc.issued + sc.pending > sc.budget || sc.budget * sc.pointValue > sc.funded) fail(`scheme ${id}: budget ${sc.budget} does not cover issued + pending or exceeds funding`);
    if (sc.distributors.includes(sc.issuer)) fail(`scheme ${id}: its issuer is one of its distributors`);
  }
  for (const [key, points] of daily) {
    const scheme = s.schemes.get(key.split(' ')[1]!)!;
    if (points > scheme.dailyCap) fail(`daily cap: ${key} earned ${points} > ${scheme.dailyCap}`);
  }
  for (const [id, o] of s.offers) {
    const pool = s.pools.get(o.pool);
    if (!pool) fail(`offer ${id} names unknown pool ${o.pool}`);
    else if (pool.clearing === o.exchange) fail(`offer ${id}: its exchange clears its pool`);
    if (o.stock < 0) fail(`offer ${id} has negative stock`);
  }
  return { violations: v, batches: batchJcs };
}
