// Determinism: the same blocks on fresh ledgers give the same receipts and app hashes after
// every block, whether a node admitted the transactions itself (execution reuses what admission
// parsed) or saw them only in blocks; and a ledger restarted from RocksDB mid-way, from the
// writes it handed over, continues with the same hashes. The blocks cover every kind of change:
// governance, funding, deeds (auto and manual), lot expiry, redemptions, cancels, clearing,
// freezes and reversals, refusals among them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { utf8 } from '../consensus/crypto/encoding.ts';
import { GoodnessLedger } from '../state/goodness/ledger.ts';
import { DAY_MS } from '../state/goodness/records.ts';
import { castApp, emptyReader, evidence, genesisOf, newCast, newSigner, World, type BlockRun, type TxSpec } from '../state/goodness/testing.ts';
import { listWrites, type BlockTx } from '../state/machine.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { applyWrites, readerOf } from './fixtures/state-store.ts';


const cast = newCast(3);
const users = Array.from({ length: 30 }, newSigner);
const app = castApp(cast);

/** A busy month of the travel scenario, as blocks executed on `w` (which admits every transaction). */
function scenario(w: World): BlockRun[] {
  const runs: BlockRun[] = [];
  const block = (specs: TxSpec[], advance = 1000) => {
    w.advance(advance);
    runs.push(w.block(specs));
  };
  const [g0, g1] = cast.governors as [typeof cast.bureau, typeof cast.bureau];
  const newOrg = newSigner();
  block([
    { from: g0, type: 'gov.propose', body: { proposal: 'p1', action: { type: 'org.register', org: newOrg.publicKey, name: 'Scooters', roles: ['distributor'] } } },
    { from: cast.bureau, type: 'scheme.define', body: { scheme: 'green', name: 'Green travel', unit: 'km', pointsPerUnit: 10, dailyCap: 120, pointValue: 2, lotValidityDays: 5, claimWindowDays: 3, autoIssue: true } },
    { from: cast.bureau, type: 'scheme.define', body: { scheme: 'walk', name: 'Walking', unit: 'km', pointsPerUnit: 4, dailyCap: 40, pointValue: 1, lotValidityDays: 30, claimWindowDays: 3, autoIssue: false } },
    ...users.map((u) => ({ from: u, type: 'account.open', body: {} })),
  ]);
  block([
    { from: g1, type: 'gov.vote', body: { proposal: 'p1', approve: true } },
    { from: cast.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: cast.metro.publicKey } },
    { from: cast.bureau, type: 'scheme.assign', body: { scheme: 'walk', distributor: cast.bikes.publicKey } },
    { from: cast.sponsor, type: 'pool.commit', body: { pool: 'city', scheme: 'green', amount: 50_000 } },
    { from: cast.sponsor, type: 'pool.commit', body: { pool: 'steps', scheme: 'walk', amount: 2_000 } },
    { from: cast.regulator, type: 'scheme.approve', body: { scheme: 'green' } },
    { from: cast.regulator, type: 'scheme.approve', body: { scheme: 'walk' } },
  ]);
  block([
    { from: cast.bank, type: 'pool.confirm', body: { pool: 'city', amount: 50_000, paymentRef: 'w1' } },
    { from: cast.bank, type: 'pool.confirm', body: { pool: 'steps', amount: 1_000, paymentRef: 'w2' } },
    { from: cast.exchange, type: 'offer.publish', body: { offer: 'ticket', pool: 'city', pricePoints: 25, unitValue: 40, stock: 500 } },
    ...users.map((u, i) => ({ from: u, type: 'consent.grant', body: { consent: `m${i}`, distributor: cast.metro.publicKey, scheme: 'green', expiresAt: w.time + 60 * DAY_MS } })),
    ...users.map((u, i) => ({ from: u, type: 'consent.grant', body: { consent: `b${i}`, distributor: cast.bikes.publicKey, scheme: 'walk', expiresAt: w.time + 60 * DAY_MS } })),
  ]);
  block([{ from: cast.sponsor, type: 'offer.approve', body: { offer: 'ticket' } }]);
  let n = 0;
  for (let day = 0; day < 8; day++) {
    const trips: TxSpec[] = users.map((u, i) => ({
      from: cast.metro,
      type: 'deed.submit',
      body: { deed: `t${n++}`, user: u.publicKey, scheme: 'green', quantity: 1 + ((i * 7 + day) % 15), occurredAt: w.time, evidenceHash: evidence(`trip${n}`), consent: `m${i}` },
    }));
    const walks: TxSpec[] = users.slice(0, 10).map((u, i) => ({
      from: cast.bikes,
      type: 'deed.submit',
      body: { deed: `w${n++}`, user: u.publicKey, scheme: 'walk', quantity: 3 + i, occurredAt: w.time, evidenceHash: evidence(`walk${n}`), consent: `b${i}` },
    }));
    // A duplicate evidence hash and an unconsented user: refused among the accepted.
    trips.push({ ...trips[0]!, body: { ...trips[0]!.body, deed: `dup${day}` } });
    block([...trips, ...walks], DAY_MS);
    block([
      ...users.slice(0, 10).map((u, i) => ({ from: u, type: 'offer.redeem', body: { redemption: `r${day}-${i}`, offer: 'ticket', quantity: 1 + (i % 2) } })),
      ...users.slice(0, 10).map((_, i) => ({ from: cast.bureau, type: i % 3 === 0 ? 'deed.reject' : 'deed.issue', body: { deed: `w${n - 10 + i}` } })),
    ]);
    block([
      ...users.slice(0, 6).map((_, i) => ({ from: cast.exchange, type: 'redemption.fulfil', body: { redemption: `r${day}-${i}` } })),
      { from: cast.exchange, type: 'redemption.cancel', body: { redemption: `r${day}-7` } },
    ]);
    if (day === 3) {
      block([
        { from: cast.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['city'] } },
        { from: cast.regulator, type: 'supervise.freeze', body: { target: users[5]!.publicKey, reason: 'cheating' } },
        { from: cast.regulator, type: 'deed.reverse', body: { deed: 't5', reason: 'cheating' } },
      ]);
      block([
        { from: cast.bank, type: 'clearing.settle', body: { batch: 'b1', paymentRefs: ['pay-1'] } },
        { from: g0, type: 'gov.propose', body: { proposal: 'p2', action: { type: 'governor.add', account: newSigner().publicKey } } },
      ]);
      block([
        { from: cast.sponsor, type: 'clearing.confirm', body: { batch: 'b1' } },
        { from: cast.exchange, type: 'clearing.confirm', body: { batch: 'b1' } },
      ]);
    }
  }
  return runs;
}

/** The block as a node that saw it only in a block receives it: bytes and hash, nothing checked. */
const blockOnly = (txs: BlockTx[]): BlockTx[] => txs.map(({ hash, bytes }) => ({ hash, bytes }));

test('the same blocks on two fresh ledgers, one admitting and one not: equal receipts and app hashes after every block', async () => {
  const w = await World.open(app);
  const runs = scenario(w);
  assert.ok(runs.length > 30);
  const rejected = runs.flatMap((r) => r.result.receipts).filter((r) => r.status === 'rejected').length;
  const accepted = runs.flatMap((r) => r.result.receipts).length - rejected;
  assert.ok(rejected > 0 && accepted > 500, `${accepted} accepted, ${rejected} rejected`);
  // Lots expired on the way (5-day validity over 8 days).
  assert.ok((w.query('audit/scheme/green') as { expired: number }).expired > 0, 'lots expired during the scenario');

  const other = new GoodnessLedger();
  await other.open(emptyReader, genesisOf(app));
  for (const run of runs) {
    const r = other.executeBlock(run.context, blockOnly(run.txs));
    other.commit(run.context.height);
    assert.equal(r.receipts, run.result.receipts, `receipts at height ${run.context.height}`);
    assert.is(r.appHash, run.result.appHash, `app hash at height ${run.context.height}`);
    assert.equal(listWrites(r.writes), listWrites(run.result.writes), `writes at height ${run.context.height}`);
  }
  for (const path of ['audit/scheme/green', 'audit/scheme/walk', 'pool/city', 'offer/ticket', `account/${users[3]!.publicKey}`]) {
    assert.equal(other.query(path, null), w.ledger.query(path, null), path);
  }
});

test('a ledger restarted from RocksDB mid-way continues with the same app hashes', async () => {
  const w = await World.open(app);
  const runs = scenario(w);
  const dir = mkdtempSync(join(tmpdir(), 'goodness-determinism-'));
  let store: RocksKvStore | null = null;
  try {
    store = await RocksKvStore.open(dir);
    let ledger = new GoodnessLedger();
    await ledger.open(readerOf(store), genesisOf(app));
    const half = Math.floor(runs.length / 2);
    for (const [i, run] of runs.entries()) {
      if (i === half) {
        // Restart: close the store, open it again, and a new ledger loads from what was written.
        const before = ledger.info();
        await store.close();
        store = await RocksKvStore.open(dir);
        ledger = new GoodnessLedger();
        assert.equal(await ledger.open(readerOf(store), genesisOf(app)), before, 'the restarted ledger is where it stopped');
        assert.is(before.appHash, runs[i - 1]!.result.appHash);
      }
      const r = ledger.executeBlock(run.context, blockOnly(run.txs));
      await applyWrites(store, listWrites(r.writes));
      ledger.commit(run.context.height);
      assert.equal(r.receipts, run.result.receipts, `receipts at height ${run.context.height}`);
      assert.is(r.appHash, run.result.appHash, `app hash at height ${run.context.height}`);
    }
    for (const u of [users[0]!, users[5]!, users[9]!]) {
      for (const path of [`account/${u.publicKey}`, `account/${u.publicKey}/deeds`]) {
        assert.equal(ledger.query(path, cast.regulator.publicKey), w.ledger.query(path, cast.regulator.publicKey), path);
      }
    }
    assert.ok((w.ledger.query(`account/${users[0]!.publicKey}/deeds`, users[0]!.publicKey).value as unknown[]).length >= 8);
    // The stored meta record is the last block's.
    assert.ok(await store.get(utf8('_meta')));
  } finally {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writes listed before each commit, blocks executed ahead of their commits and again: reused buffers leave every write intact', async () => {
  // A ledger whose writes are listed before their block is committed (as the engine does)
  // encodes later blocks into the buffers of committed ones. Here it runs two blocks ahead of
  // its commits and executes every fifth block twice (a replaced proposal): each block's writes
  // must be those of the ledger that never reuses (World's, listed after commit), and listing
  // them again once their block is committed is refused rather than read from a reused buffer.
  const w = await World.open(app);
  const runs = scenario(w);
  const expected = runs.map((run) => listWrites(run.result.writes));
  const ledger = new GoodnessLedger();
  await ledger.open(emptyReader, genesisOf(app));
  const listed: ReturnType<typeof listWrites>[] = [];
  const results: ReturnType<GoodnessLedger['executeBlock']>[] = [];
  let reexecuted = 0;
  const commit = (i: number) => {
    // Still intact though later blocks were encoded since (two ahead, into reused buffers).
    assert.equal(listed[i], expected[i], `writes at height ${runs[i]!.context.height}, before its commit`);
    ledger.commit(runs[i]!.context.height);
  };
  for (const [i, run] of runs.entries()) {
    if (i >= 2) commit(i - 2);
    if (i % 5 === 4) {
      const replaced = ledger.executeBlock(run.context, blockOnly(run.txs));
      assert.equal(listWrites(replaced.writes), expected[i]);
      reexecuted++;
    }
    const r = ledger.executeBlock(run.context, blockOnly(run.txs));
    assert.is(r.appHash, run.result.appHash, `app hash at height ${run.context.height}`);
    listed[i] = listWrites(r.writes);
    results[i] = r;
    assert.equal(listed[i], expected[i], `writes at height ${run.context.height}`);
  }
  commit(runs.length - 2);
  commit(runs.length - 1);
  assert.ok(reexecuted > 5);
  assert.throws(() => listWrites(results[0]!.writes), /listed after it was committed/);
});

test.run();
