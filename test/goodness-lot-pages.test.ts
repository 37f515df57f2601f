// An account's lots in pages of their own (state/goodness/lot-pages.ts): what a deed, a
// redemption, a cancel and a reversal write does not grow with the number of lots the account
// holds, and the lots a query shows are those the layout before pages gave (the reference below
// is that layout's algorithms, on one sorted array). Bytes are counted, nothing is timed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { ReceiptCore } from '../consensus/chain/types.ts';
import { LotBook, PAGE } from '../state/goodness/lot-pages.ts';
import { accountKey, DAY_MS, lotPageKey, type AccountRecord, type BurnedPart, type Lot } from '../state/goodness/records.ts';
import { LedgerState } from '../state/goodness/state.ts';
import { castApp, evidence, newCast, newSigner, World, type Cast, type TxSpec } from '../state/goodness/testing.ts';
import type { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { listWrites } from '../state/machine.ts';

// ---- the layout before pages: one sorted array of lots, as lots.ts kept it in the account record

const before = (a: Lot, b: { expiresAt: number; deed: string }) => a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.deed < b.deed);

/** creditLot: adds to the lot of the deed, or inserts the lot in (expiresAt, deed) order. */
function refCredit(lots: Lot[], l: Lot): Lot[] {
  const i = lots.findIndex((x) => x.deed === l.deed);
  if (i >= 0) return lots.map((x, j) => (j === i ? { ...x, points: x.points + l.points } : x));
  const out = lots.slice();
  let at = out.length;
  while (at > 0 && before(l, out[at - 1]!)) at--;
  out.splice(at, 0, { deed: l.deed, expiresAt: l.expiresAt, points: l.points, scheme: l.scheme });
  return out;
}

/** burnPoints: earliest expiry first, lots of the scheme live at `now`; null when there are too few. */
function refBurn(lots: Lot[], scheme: string, points: number, now: number): { lots: Lot[]; burned: BurnedPart[] } | null {
  const live = lots.reduce((s, l) => s + (l.scheme === scheme && l.expiresAt > now ? l.points : 0), 0);
  if (live < points) return null;
  const out: Lot[] = [];
  const burned: BurnedPart[] = [];
  let left = points;
  for (const l of lots) {
    if (left === 0 || l.scheme !== scheme || l.expiresAt <= now) {
      out.push(l);
      continue;
    }
    const take = Math.min(left, l.points);
    left -= take;
    burned.push({ deed: l.deed, expiresAt: l.expiresAt, points: take });
    if (take < l.points) out.push({ ...l, points: l.points - take });
  }
  return { lots: out, burned };
}

const refTake = (lots: Lot[], deed: string) => ({ lots: lots.filter((l) => l.deed !== deed), lot: lots.find((l) => l.deed === deed) });
const refExpire = (lots: Lot[], now: number) => ({ lots: lots.filter((l) => l.expiresAt > now), expired: lots.filter((l) => l.expiresAt <= now) });
const sum = (lots: Lot[]) => lots.reduce((s, l) => s + l.points, 0);

// ---- a user with n lots, made through real deed transactions

function expectOk(r: ReceiptCore): ReceiptCore {
  assert.is(r.status, 'ok', `expected ok, got ${r.code}: ${r.log}`);
  return r;
}

interface Holder {
  w: World;
  c: Cast;
  u: Ed25519Signer;
  /** the user's lots as the layout before pages would hold them */
  lots: Lot[];
  deeds: number;
}

const LOT_VALIDITY_DAYS = 365;
// One deed per block, as one user's trips come: each lot has an expiry of its own.
const DEEDS_PER_BLOCK = 1;

function deedSpec(h: Holder, i: number): TxSpec {
  return {
    from: h.c.metro,
    type: 'deed.submit',
    body: { deed: `trip-${String(i).padStart(6, '0')}`, user: h.u.publicKey, scheme: 'green', quantity: 1 + (i % 5), occurredAt: h.w.time, evidenceHash: evidence(`trip-${i}`), consent: 'c0' },
  };
}

/** Submits deeds i..i+count-1 in one block; the reference gains their lots. */
function deedBlock(h: Holder, count: number): { bytes: number; pageWrites: number } {
  const specs = Array.from({ length: count }, (_, k) => deedSpec(h, h.deeds + k));
  const run = h.w.block(specs);
  run.result.receipts.forEach(expectOk);
  for (const s of specs) {
    const b = s.body as { deed: string; quantity: number };
    h.lots = refCredit(h.lots, { deed: b.deed, expiresAt: run.context.timestamp + LOT_VALIDITY_DAYS * DAY_MS, points: 10 * b.quantity, scheme: 'green' });
  }
  h.deeds += count;
  return written(run.result.writes);
}

/** Bytes the block writes (keys and values, as the chain store takes them) and how many of them are lot pages. */
function written(writes: Parameters<typeof listWrites>[0]): { bytes: number; pageWrites: number } {
  let bytes = 0;
  let pageWrites = 0;
  for (const [k, v] of listWrites(writes)) {
    bytes += k.length + (v?.length ?? 0);
    if (Buffer.from(k).toString().startsWith('lp/')) pageWrites++;
  }
  return { bytes, pageWrites };
}

async function holder(lots: number): Promise<Holder> {
  const c = newCast(1);
  const w = await World.open(castApp(c));
  const u = newSigner();
  const h: Holder = { w, c, u, lots: [], deeds: 0 };
  expectOk(w.run({ from: c.bureau, type: 'scheme.define', body: { scheme: 'green', name: 'Green travel', unit: 'km', pointsPerUnit: 10, dailyCap: 1_000_000, pointValue: 1, lotValidityDays: LOT_VALIDITY_DAYS, claimWindowDays: 7, autoIssue: true } }));
  w.block([
    { from: c.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: c.metro.publicKey } },
    { from: c.sponsor, type: 'pool.commit', body: { pool: 'city', scheme: 'green', amount: 1e9 } },
    { from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } },
    { from: u, type: 'account.open', body: {} },
  ]).result.receipts.forEach(expectOk);
  w.block([
    { from: c.bank, type: 'pool.confirm', body: { pool: 'city', amount: 1e9, paymentRef: 'wire' } },
    { from: c.exchange, type: 'offer.publish', body: { offer: 'ticket', pool: 'city', pricePoints: 45, unitValue: 1, stock: 1000 } },
    { from: u, type: 'consent.grant', body: { consent: 'c0', distributor: c.metro.publicKey, scheme: 'green', expiresAt: w.time + 30 * DAY_MS } },
  ]).result.receipts.forEach(expectOk);
  expectOk(w.run({ from: c.sponsor, type: 'offer.approve', body: { offer: 'ticket' } }));
  // The invariants are checked once the lots are made, not after each of the blocks that make them.
  w.checkInvariants = false;
  while (h.deeds < lots) deedBlock(h, Math.min(DEEDS_PER_BLOCK, lots - h.deeds));
  w.checkInvariants = true;
  w.assertInvariants();
  return h;
}

function assertSameLots(h: Holder, what: string): void {
  const seen = h.w.query(`account/${h.u.publicKey}`, h.u) as { points: number; lots: Lot[] };
  assert.equal(seen.lots, h.lots, `${what}: the lots, in order, are those the layout before pages gives`);
  assert.is(seen.points, sum(h.lots), `${what}: points are the sum of the lots`);
  assert.equal(h.w.query(`account/${h.u.publicKey}`, h.c.regulator), seen, `${what}: the supervisor sees the same`);
  assert.not.ok('lots' in (h.w.query(`account/${h.u.publicKey}`) as object), `${what}: an anonymous caller sees no lots`);
}

type Op = 'deed' | 'redemption' | 'cancel' | 'reversal';

/** One more deed, one redemption, its cancel, one reversal, each alone in its block: what each wrote. */
function fourTransactions(h: Holder): Record<Op, { bytes: number; pageWrites: number }> {
  const out = {} as Record<Op, { bytes: number; pageWrites: number }>;
  out.deed = deedBlock(h, 1);
  assertSameLots(h, 'after one more deed');

  const redeem = h.w.block([{ from: h.u, type: 'offer.redeem', body: { redemption: 'r1', offer: 'ticket', quantity: 1 } }]);
  expectOk(redeem.result.receipts[0]!);
  const burnt = refBurn(h.lots, 'green', 45, redeem.context.timestamp)!;
  assert.equal((h.w.query('redemption/r1', h.u) as { burned: BurnedPart[] }).burned, burnt.burned, 'the parts burned are those the layout before pages burns');
  h.lots = burnt.lots;
  out.redemption = written(redeem.result.writes);
  assertSameLots(h, 'after a redemption');

  const cancel = h.w.block([{ from: h.c.exchange, type: 'redemption.cancel', body: { redemption: 'r1' } }]);
  expectOk(cancel.result.receipts[0]!);
  for (const p of burnt.burned) h.lots = refCredit(h.lots, { ...p, scheme: 'green' });
  out.cancel = written(cancel.result.writes);
  assertSameLots(h, 'after its cancel');

  // A deed from the middle of the account's history.
  const middle = `trip-${String(Math.floor(h.deeds / 2)).padStart(6, '0')}`;
  const reverse = h.w.block([{ from: h.c.regulator, type: 'deed.reverse', body: { deed: middle, reason: 'evidence withdrawn' } }]);
  expectOk(reverse.result.receipts[0]!);
  const taken = refTake(h.lots, middle);
  assert.is(reverse.result.receipts[0]!.events[0]!.attributes.clawedBack, String(taken.lot!.points));
  h.lots = taken.lots;
  out.reversal = written(reverse.result.writes);
  assertSameLots(h, 'after a reversal');
  return out;
}

test('1,000 lots: a deed, a redemption, a cancel and a reversal write about what they write with 10 lots', async () => {
  const small = await holder(10);
  const large = await holder(1000);
  assertSameLots(large, 'after 1,000 deeds');
  const pages = (large.w.ledger.committedEntries(`lp/${large.u.publicKey}/`) as Iterable<unknown>)[Symbol.iterator]();
  let pageCount = 0;
  while (!pages.next().done) pageCount++;
  assert.ok(pageCount >= Math.ceil(1000 / PAGE) && pageCount <= Math.ceil(1000 / PAGE) + 1, `1,000 lots issued in time order fill ${pageCount} pages of ${PAGE}`);

  const s = fourTransactions(small);
  const l = fourTransactions(large);
  const report = (['deed', 'redemption', 'cancel', 'reversal'] as Op[]).map((op) => `${op}: ${s[op].bytes} B with 10 lots, ${l[op].bytes} B with 1,000`).join('; ');
  console.log(`  bytes written per block (PAGE ${PAGE}): ${report}`);
  for (const op of ['deed', 'redemption', 'cancel', 'reversal'] as Op[]) {
    assert.ok(l[op].bytes < 2 * s[op].bytes, `${op}: ${l[op].bytes} bytes with 1,000 lots, ${s[op].bytes} with 10: less than twice as many`);
    // A bound that does not depend on the number of lots: two full pages of lots and the rest.
    assert.ok(l[op].bytes < 8000, `${op}: ${l[op].bytes} bytes`);
    assert.ok(l[op].pageWrites >= 1 && l[op].pageWrites <= 2, `${op} wrote ${l[op].pageWrites} lot pages`);
  }
  large.w.assertInvariants();
});

/** The user's account record and the keys of its stored pages. */
function stored(h: Holder): { record: AccountRecord; pageKeys: string[] } {
  const record = h.w.ledger.committedEntries(accountKey(h.u.publicKey));
  const [[, value]] = [...record] as [[string, AccountRecord]];
  return { record: value, pageKeys: [...h.w.ledger.committedEntries(`lp/${h.u.publicKey}/`)].map(([k]) => k).sort() };
}

test('lots expire from the front pages only; an emptied page is deleted; one page left goes back in the record', async () => {
  const first = 3 * PAGE + 5;
  const h = await holder(first);
  // Another day's deeds, which expire a day later than the first ones.
  h.w.advanceDays(1);
  deedBlock(h, 2 * PAGE);
  const before = stored(h);
  assert.is(before.record.lots.length, 0, 'lots beyond one page are in pages');
  assert.is(before.pageKeys.length, before.record.pages!.length);
  // The first day's lots expire (the block before the second day's).
  h.w.advance(LOT_VALIDITY_DAYS * DAY_MS - DAY_MS);
  const run = h.w.block([]);
  const expired = refExpire(h.lots, run.context.timestamp);
  assert.is(expired.expired.length, first, 'every lot of the first day expired');
  h.lots = expired.lots;
  assertSameLots(h, 'after expiry');
  const writes = listWrites(run.result.writes).map(([k, v]) => [Buffer.from(k).toString(), v] as const);
  const pageWrites = writes.filter(([k]) => k.startsWith('lp/'));
  const deleted = pageWrites.filter(([, v]) => v === null).length;
  const after = stored(h);
  assert.ok(deleted >= Math.floor(first / PAGE), `the pages of expired lots are deleted (${deleted})`);
  assert.is(after.pageKeys.length, before.pageKeys.length - deleted, 'deleted keys are gone');
  assert.ok(pageWrites.length - deleted <= 1, `expiry rewrote ${pageWrites.length - deleted} pages: at most the one it cut`);
  assert.equal(after.record.pages!.map((r) => `lp/${h.u.publicKey}/${r[1]}`).sort(), after.pageKeys, 'the index names exactly the pages left');

  // Redemptions burn the rest down to one page: it moves into the record and its key is deleted.
  const live = sum(h.lots);
  const redeemTo = Math.floor((live - 45 * 2) / 45);
  const run2 = h.w.block([{ from: h.u, type: 'offer.redeem', body: { redemption: 'most', offer: 'ticket', quantity: redeemTo } }]);
  expectOk(run2.result.receipts[0]!);
  h.lots = refBurn(h.lots, 'green', 45 * redeemTo, run2.context.timestamp)!.lots;
  assertSameLots(h, 'after burning most');
  const last = stored(h);
  assert.ok(h.lots.length <= PAGE);
  assert.equal(last.pageKeys, [], 'no page is stored');
  assert.is(last.record.pages, undefined, 'no index');
  assert.equal(last.record.lots, h.lots, 'the record holds the lots');
});

// ---- the book alone, against the reference, with many lots and every operation

type BookOp =
  | { kind: 'credit'; deed: number; expiresAt: number; points: number; scheme: string }
  | { kind: 'burn'; scheme: string; points: number; now: number }
  | { kind: 'take'; pick: number }
  | { kind: 'expire'; now: number }
  | { kind: 'commit' };

const schemeArb = fc.constantFrom('a', 'b');
const opArb: fc.Arbitrary<BookOp> = fc.oneof(
  // New lots mostly after the others (issues), sometimes before (re-credits after a cancel).
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('credit' as const), deed: fc.nat(400), expiresAt: fc.integer({ min: 0, max: 60 }), points: fc.integer({ min: 1, max: 9 }), scheme: schemeArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('burn' as const), scheme: schemeArb, points: fc.integer({ min: 1, max: 40 }), now: fc.integer({ min: -1, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('take' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: -1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
);

/**
 * The account's lots as stored: in the record while they fit one page, else in at least two pages,
 * each holding 1..PAGE lots, after its separator (the first page's: its first lot's expiry) and
 * before the next one's; no stored page outside the index.
 */
function storedLots(state: LedgerState, id: string, account: AccountRecord): Lot[] {
  const stored = [...state.committedEntries(`lp/${id}/`)].map(([k]) => k).sort();
  if (account.pages === undefined) {
    assert.ok(account.lots.length <= PAGE, `${account.lots.length} lots in the record`);
    assert.equal(stored, [], 'no page is stored while the record holds the lots');
    return account.lots;
  }
  assert.equal(account.lots, [], 'no lot in the record when there are pages');
  assert.ok(account.pages.length >= 2, `${account.pages.length} pages`);
  const out: Lot[] = [];
  const notAfter = (e: number, d: string, l: Lot) => e < l.expiresAt || (e === l.expiresAt && d <= l.deed);
  for (const [i, [expiresAt, n, deed]] of account.pages.entries()) {
    const page = state.getCommitted(lotPageKey(id, n)) as Lot[] | undefined;
    assert.ok(page, `page ${n} in the index is stored`);
    assert.ok(page!.length >= 1 && page!.length <= PAGE, `page ${n} holds ${page!.length} lots`);
    assert.ok(notAfter(expiresAt, deed ?? '', page![0]!), `the separator of page ${n} is not after its first lot`);
    if (i === 0) assert.equal([expiresAt, deed], [page![0]!.expiresAt, undefined], 'the first separator is the first expiry');
    else assert.not.ok(notAfter(expiresAt, deed ?? '', out.at(-1)!), `the separator of page ${n} is after the previous page`);
    out.push(...page!);
  }
  assert.equal(account.pages.map((r) => lotPageKey(id, r[1])).sort(), stored, 'the index names every stored page');
  return out;
}

test('a LotBook gives what the layout before pages gives, through splits, burns, takes and expiry', () => {
  const id = 'f'.repeat(64);
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 50, maxLength: 400 }), (ops) => {
      // The ledger's own state cells, blocks committed as the ledger commits them.
      const state = new LedgerState();
      const empty: AccountRecord = { id, lots: [], points: 0, roles: ['user'], status: 'active' };
      state.reset(new Map([[accountKey(id), empty]]), 0, '');
      let height = 0;
      let block = state.beginBlock(++height);
      let ref: Lot[] = [];
      let clock = 0;
      for (const op of ops) {
        if (op.kind === 'commit') {
          state.addPending(block, '');
          state.commit(height);
          const account = state.getCommitted(accountKey(id)) as AccountRecord;
          assert.equal(storedLots(state, id, account), ref);
          block = state.beginBlock(++height);
          continue;
        }
        const book = new LotBook(block, block.get(accountKey(id)) as AccountRecord);
        switch (op.kind) {
          case 'credit': {
            // Deed ids name one lot each: a credit of an existing deed keeps that deed's expiry and scheme.
            const deed = `d${String(op.deed).padStart(4, '0')}`;
            const same = ref.find((l) => l.deed === deed);
            clock++;
            const lot = same ? { ...same, points: op.points } : { deed, expiresAt: (op.expiresAt + clock) * 10, points: op.points, scheme: op.scheme };
            book.credit(lot.deed, lot.expiresAt, lot.points, lot.scheme);
            ref = refCredit(ref, lot);
            break;
          }
          case 'burn': {
            const now = ref.length > 0 && op.now >= 0 ? ref[Math.min(op.now, ref.length - 1)]!.expiresAt : -1;
            const want = refBurn(ref, op.scheme, op.points, now);
            const got = book.burn(op.scheme, op.points, now);
            assert.equal(got, want?.burned ?? null);
            if (!want) {
              assert.is(book.livePoints(op.scheme, now), ref.reduce((s, l) => s + (l.scheme === op.scheme && l.expiresAt > now ? l.points : 0), 0));
              continue; // refused: nothing is written
            }
            ref = want.lots;
            break;
          }
          case 'take': {
            if (ref.length === 0) continue;
            const target = ref[op.pick % ref.length]!;
            const want = refTake(ref, target.deed);
            assert.equal(book.take(target.deed, target.expiresAt), want.lot);
            assert.is(book.take('none', target.expiresAt), undefined);
            ref = want.lots;
            break;
          }
          case 'expire': {
            const now = ref.length > 0 && op.now >= 0 ? ref[Math.min(op.now, ref.length - 1)]!.expiresAt : -1;
            // Reads the index only when nothing is due.
            assert.is(LotBook.hasDue(block.get(accountKey(id)) as AccountRecord, now), ref.some((l) => l.expiresAt <= now));
            const want = refExpire(ref, now);
            assert.equal(book.takeExpired(now), want.expired);
            ref = want.lots;
            break;
          }
        }
        block.put(accountKey(id), book.write(block));
      }
      state.addPending(block, '');
      state.commit(height);
      const account = state.getCommitted(accountKey(id)) as AccountRecord;
      assert.equal(storedLots(state, id, account), ref);
      assert.is(account.points, sum(ref));
    }),
    { numRuns: 60 },
  );
});

test('a lot after a full page goes to the front of the next page when it has room, and the separator follows', () => {
  const id = 'e'.repeat(64);
  const state = new LedgerState();
  state.reset(new Map([[accountKey(id), { id, lots: [], points: 0, roles: ['user'], status: 'active' } satisfies AccountRecord]]), 0, '');
  const block = state.beginBlock(1);
  const credit = (deed: string, expiresAt: number) => {
    const book = new LotBook(block, block.get(accountKey(id)) as AccountRecord);
    book.credit(deed, expiresAt, 1, 'a');
    block.put(accountKey(id), book.write(block));
  };
  // A full first page (expiries 10..10·PAGE), then a second page from 10·PAGE + 10.
  for (let i = 1; i <= PAGE + 1; i++) credit(`d${String(i).padStart(3, '0')}`, 10 * i);
  credit('late', 10_000);
  let account = block.get(accountKey(id)) as AccountRecord;
  assert.equal(account.pages!.map((r) => r.length), [2, 2], 'two pages, separated by expiry alone');
  const [, second] = account.pages!;
  assert.is(second![0], 10 * PAGE + 10);
  // Between the first page's last lot and the second page's separator: the first page is full.
  credit('between', 10 * PAGE + 5);
  account = block.get(accountKey(id)) as AccountRecord;
  assert.is(account.pages!.length, 2, 'no page of its own');
  assert.equal(account.pages![1], [10 * PAGE + 5, second![1]], 'the second page now starts with it');
  assert.equal((block.get(lotPageKey(id, second![1])) as Lot[]).map((l) => l.deed), ['between', `d${String(PAGE + 1).padStart(3, '0')}`, 'late']);
  // The same expiry as the first page's last lot, after its deed: the separator needs the deed.
  credit('d999', 10 * PAGE);
  account = block.get(accountKey(id)) as AccountRecord;
  assert.equal(account.pages![1], [10 * PAGE, second![1], 'd999']);
  assert.is((block.get(lotPageKey(id, account.pages![0]![1])) as Lot[]).length, PAGE);
});

test.run();
