// Property: long random sequences of transactions from every role, valid and invalid, executed
// block by block. After every block all invariants of goodness.md hold (World checks 1-7 over
// the whole state), and a twin ledger that executes only the block's accepted transactions
// reaches the same app hash and receipts: a refused transaction changed nothing (invariant 8).
// Admission and execution agree: whatever admission refused, execution refuses with the same
// code. A failing case shrinks and prints its blocks.
//   GOODNESS_PROPERTY_RUNS=2000 npx node --import tsx test/goodness-property.test.ts   (more runs)
//   GOODNESS_PROPERTY_SEED=123 ...                                                      (replay a seed)
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { GoodnessLedger } from '../state/goodness/ledger.ts';
import { Code } from '../state/codes.ts';
import { DAY_MS } from '../state/goodness/records.ts';
import { castApp, emptyReader, evidence, genesisOf, newCast, newSigner, World, type TxSpec } from '../state/goodness/testing.ts';

const RUNS = Number(process.env.GOODNESS_PROPERTY_RUNS ?? 300);
const SEED = process.env.GOODNESS_PROPERTY_SEED === undefined ? undefined : Number(process.env.GOODNESS_PROPERTY_SEED);

// One cast and a handful of users for every run (keys are costly to make; state is fresh per run).
const cast = newCast(3);
const users = Array.from({ length: 4 }, newSigner);
const stranger = newSigner();
const ORGS = { bureau: cast.bureau, metro: cast.metro, bikes: cast.bikes, sponsor: cast.sponsor, exchange: cast.exchange, bank: cast.bank, regulator: cast.regulator };
type OrgName = keyof typeof ORGS;
const ACTORS: Record<string, Ed25519Signer> = {
  ...ORGS,
  g0: cast.governors[0]!,
  g1: cast.governors[1]!,
  g2: cast.governors[2]!,
  u0: users[0]!,
  u1: users[1]!,
  u2: users[2]!,
  u3: users[3]!,
  stranger,
};
const ACTOR_NAMES = Object.keys(ACTORS);
const USER_NAMES = ['u0', 'u1', 'u2', 'u3', 'stranger'];

const SCHEMES = ['s1', 's2', 's3'];
const POOLS = ['p1', 'p2', 'p3'];
const OFFERS = ['o1', 'o2', 'o3'];
const CONSENTS = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'];
const DEEDS = Array.from({ length: 12 }, (_, i) => `d${i}`);
const REDEMPTIONS = Array.from({ length: 8 }, (_, i) => `r${i}`);
const BATCHES = ['b0', 'b1', 'b2'];
const FEW_REDEMPTIONS = REDEMPTIONS.slice(0, 3);
const PROPOSALS = ['g0', 'g1', 'g2', 'g3'];
const EVIDENCE = Array.from({ length: 10 }, (_, i) => evidence(`ev${i}`));

/** An operation as data (it prints readably when a case fails), made into a transaction at run time. */
type Op = { type: string; by: string; body: Record<string, unknown> };

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const actor = pick(ACTOR_NAMES);
const small = fc.integer({ min: 0, max: 12 });
const account = pick([...ACTOR_NAMES, 'nobody']);

/** Body fields that name accounts hold actor names here; `resolve` turns them into ids. */
function op(type: string, by: fc.Arbitrary<string>, body: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Op> {
  return fc.record({ by, body: fc.record(body) }).map(({ by, body }) => ({ type, by, body }));
}

/** Deeds that fit the setup (user i consented to metro under s1 or s2 as c<i>), so that many are accepted. */
const coherentDeed: fc.Arbitrary<Op> = fc
  .record({ i: fc.integer({ min: 0, max: 3 }), deed: pick(DEEDS), quantity: fc.integer({ min: 1, max: 12 }), evidence: fc.integer({ min: 0, max: 40 }), occurredAt: pick([-60_000, 0]) })
  .map(({ i, deed, quantity, evidence: e, occurredAt }) => ({
    type: 'deed.submit',
    by: 'metro',
    body: { deed, user: `@u${i}`, scheme: i % 2 === 0 ? 's1' : 's2', quantity, occurredAt, evidenceHash: evidence(`coherent${e}`), consent: `c${i}` },
  }));

const coherentOffers: fc.Arbitrary<Op> = fc.oneof(
  op('offer.publish', fc.constant('exchange'), { offer: pick(OFFERS), pool: pick(['p1', 'p2']), pricePoints: fc.integer({ min: 1, max: 30 }), unitValue: fc.integer({ min: 0, max: 200 }), stock: fc.integer({ min: 1, max: 10 }) }),
  op('offer.approve', fc.constant('sponsor'), { offer: pick(OFFERS) }),
  op('offer.redeem', pick(['u0', 'u1', 'u2', 'u3']), { redemption: pick(REDEMPTIONS), offer: pick(OFFERS), quantity: fc.integer({ min: 1, max: 2 }) }),
  op('offer.redeem', pick(['u0', 'u2']), { redemption: pick(FEW_REDEMPTIONS), offer: fc.constant('o1'), quantity: fc.integer({ min: 1, max: 3 }) }),
  op('deed.issue', fc.constant('bureau'), { deed: pick(DEEDS) }),
  op('redemption.fulfil', fc.constant('exchange'), { redemption: pick(FEW_REDEMPTIONS) }),
  op('redemption.fulfil', fc.constant('exchange'), { redemption: pick(FEW_REDEMPTIONS) }),
  op('redemption.cancel', fc.constant('exchange'), { redemption: pick(FEW_REDEMPTIONS) }),
  op('clearing.confirm', pick(['sponsor', 'exchange']), { batch: pick(BATCHES) }),
  op('clearing.close', fc.constant('bank'), { batch: pick(BATCHES), pools: fc.constant(['p1', 'p2']) }),
  op('clearing.settle', fc.constant('bank'), { batch: pick(BATCHES), paymentRefs: fc.constant(['x']) }),
);

const anyOp: fc.Arbitrary<Op> = fc.oneof(
  op('account.open', pick(USER_NAMES), {}),
  op('consent.grant', pick(USER_NAMES), { consent: pick(CONSENTS), distributor: pick(['@metro', '@bikes', '@bureau']), scheme: pick(SCHEMES), expiresAt: pick([-1, 1, 3, 40]) }),
  op('consent.revoke', pick(USER_NAMES), { consent: pick(CONSENTS) }),
  op('scheme.define', pick(['bureau', 'bureau', 'metro']), {
    scheme: pick(SCHEMES),
    name: fc.constant('Scheme'),
    unit: fc.constant('km'),
    pointsPerUnit: fc.integer({ min: 1, max: 20 }),
    dailyCap: fc.integer({ min: 1, max: 200 }),
    pointValue: fc.integer({ min: 1, max: 10 }),
    lotValidityDays: fc.integer({ min: 1, max: 40 }),
    claimWindowDays: fc.integer({ min: 1, max: 10 }),
    autoIssue: fc.boolean(),
  }),
  op('scheme.approve', pick(['regulator', 'regulator', 'bureau']), { scheme: pick(SCHEMES) }),
  op('scheme.suspend', pick(['regulator', 'bureau']), { scheme: pick(SCHEMES) }),
  op('scheme.assign', pick(['bureau', 'bureau', 'metro']), { scheme: pick(SCHEMES), distributor: pick(['@metro', '@bikes', '@bureau', '@sponsor']) }),
  op('scheme.unassign', pick(['bureau']), { scheme: pick(SCHEMES), distributor: pick(['@metro', '@bikes']) }),
  op('pool.commit', pick(['sponsor', 'sponsor', 'bank']), { pool: pick(POOLS), scheme: pick(SCHEMES), amount: fc.integer({ min: 1, max: 5000 }) }),
  op('pool.confirm', pick(['bank', 'bank', 'sponsor', 'exchange']), { pool: pick(POOLS), amount: fc.integer({ min: 1, max: 3000 }), paymentRef: fc.constant('wire') }),
  op('deed.submit', pick(['metro', 'metro', 'bikes', 'bureau']), {
    deed: pick(DEEDS),
    user: pick(['@u0', '@u1', '@u2', '@u3', '@stranger']),
    scheme: pick(SCHEMES),
    quantity: fc.integer({ min: 1, max: 30 }),
    occurredAt: pick([-8 * DAY_MS, -DAY_MS, -60_000, 0, DAY_MS]),
    evidenceHash: pick(EVIDENCE),
    consent: pick(CONSENTS),
  }),
  op('deed.issue', pick(['bureau', 'metro']), { deed: pick(DEEDS) }),
  op('deed.reject', pick(['bureau']), { deed: pick(DEEDS) }),
  op('deed.reverse', pick(['regulator', 'bureau']), { deed: pick(DEEDS), reason: fc.constant('fraud') }),
  op('offer.publish', pick(['exchange', 'exchange', 'bank']), { offer: pick(OFFERS), pool: pick(POOLS), pricePoints: fc.integer({ min: 1, max: 60 }), unitValue: fc.integer({ min: 0, max: 400 }), stock: small }),
  op('offer.approve', pick(['sponsor', 'exchange']), { offer: pick(OFFERS) }),
  op('offer.redeem', pick(USER_NAMES), { redemption: pick(REDEMPTIONS), offer: pick(OFFERS), quantity: fc.integer({ min: 1, max: 4 }) }),
  op('redemption.fulfil', pick(['exchange', 'exchange', 'sponsor']), { redemption: pick(REDEMPTIONS) }),
  op('redemption.cancel', pick(['exchange']), { redemption: pick(REDEMPTIONS) }),
  op('clearing.close', pick(['bank', 'bank', 'exchange']), { batch: pick(BATCHES), pools: fc.subarray(POOLS, { minLength: 1 }) }),
  op('clearing.settle', pick(['bank']), { batch: pick(BATCHES), paymentRefs: pick([['x'], ['x', 'y']]) }),
  op('clearing.confirm', pick(['sponsor', 'exchange', 'metro']), { batch: pick(BATCHES) }),
  op('clearing.dispute', pick(['sponsor', 'exchange']), { batch: pick(BATCHES) }),
  op('supervise.freeze', pick(['regulator', 'regulator', 'bank']), { target: pick(['@u0', '@u1', '@metro', '@exchange', '@sponsor', 's1', 'scheme/s2', 'pool/p1', 'offer/o1', 'p2']), reason: fc.constant('check') }),
  op('supervise.unfreeze', pick(['regulator']), { target: pick(['@u0', '@u1', '@metro', '@exchange', '@sponsor', 's1', 'scheme/s2', 'pool/p1', 'offer/o1', 'p2']), reason: fc.constant('ok') }),
  op('gov.propose', pick(['g0', 'g1', 'metro']), {
    proposal: pick(PROPOSALS),
    action: fc.oneof(
      fc.record({ type: fc.constant('org.register'), org: pick(['@u0', '@stranger', '@bikes', '@regulator']), name: fc.constant('Org'), roles: fc.subarray(['issuer', 'distributor', 'exchange', 'supervisor'], { minLength: 1 }) }),
      fc.record({ type: fc.constant('org.revoke'), org: pick(['@metro', '@bikes', '@exchange']), roles: fc.subarray(['distributor', 'exchange', 'issuer'], { minLength: 1 }) }),
      fc.record({ type: fc.constant('governor.add'), account: pick(['@stranger', '@u0', '@regulator']) }),
      fc.record({ type: fc.constant('governor.remove'), account: pick(['@g0', '@g1', '@g2', '@stranger']) }),
    ),
  }),
  op('gov.vote', pick(['g0', 'g1', 'g2', 'stranger']), { proposal: pick(PROPOSALS), approve: fc.boolean() }),
  op('points.transfer', actor, { to: account, points: small }),
);

const ops: fc.Arbitrary<Op> = fc.oneof({ arbitrary: anyOp, weight: 4 }, { arbitrary: coherentDeed, weight: 3 }, { arbitrary: coherentOffers, weight: 4 });

interface BlockPlan {
  advance: number;
  ops: Op[];
}

const blocks = fc.array(
  fc.record({ advance: pick([1000, 1000, 3_600_000, DAY_MS, 10 * DAY_MS, 31 * DAY_MS]), ops: fc.array(ops, { minLength: 1, maxLength: 6 }) }),
  { minLength: 1, maxLength: 20 },
);

/** Replaces '@name' with the account id of that actor, everywhere in a body. */
function resolve(value: unknown, now: number): unknown {
  if (typeof value === 'string' && value.startsWith('@')) return ACTORS[value.slice(1)]?.publicKey ?? '0'.repeat(64);
  if (Array.isArray(value)) return value.map((v) => resolve(v, now));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, now)]));
  return value;
}

function toSpec(o: Op, now: number): TxSpec {
  const body = resolve(o.body, now) as Record<string, unknown>;
  // Times are given relative to the block: occurredAt as an offset, expiresAt in days.
  if (o.type === 'deed.submit') body.occurredAt = Math.max(0, now + (o.body.occurredAt as number));
  if (o.type === 'consent.grant') body.expiresAt = (o.body.expiresAt as number) < 0 ? 0 : now + (o.body.expiresAt as number) * DAY_MS;
  return { from: ACTORS[o.by]!, type: o.type, body };
}

/** The setup every run starts from: two approved, funded schemes, assigned, with consenting users. */
function setup(w: World, twin: GoodnessLedger): void {
  const plan: TxSpec[][] = [
    [
      { from: cast.bureau, type: 'scheme.define', body: { scheme: 's1', name: 'Auto', unit: 'km', pointsPerUnit: 10, dailyCap: 100, pointValue: 2, lotValidityDays: 30, claimWindowDays: 7, autoIssue: true } },
      { from: cast.bureau, type: 'scheme.define', body: { scheme: 's2', name: 'Manual', unit: 'trip', pointsPerUnit: 5, dailyCap: 60, pointValue: 3, lotValidityDays: 10, claimWindowDays: 3, autoIssue: false } },
      ...users.map((u) => ({ from: u, type: 'account.open', body: {} })),
    ],
    [
      { from: cast.bureau, type: 'scheme.assign', body: { scheme: 's1', distributor: cast.metro.publicKey } },
      { from: cast.bureau, type: 'scheme.assign', body: { scheme: 's2', distributor: cast.metro.publicKey } },
      { from: cast.sponsor, type: 'pool.commit', body: { pool: 'p1', scheme: 's1', amount: 2000 } },
      { from: cast.sponsor, type: 'pool.commit', body: { pool: 'p2', scheme: 's2', amount: 900 } },
      { from: cast.regulator, type: 'scheme.approve', body: { scheme: 's1' } },
      { from: cast.regulator, type: 'scheme.approve', body: { scheme: 's2' } },
    ],
    [
      { from: cast.bank, type: 'pool.confirm', body: { pool: 'p1', amount: 1500, paymentRef: 'w1' } },
      { from: cast.bank, type: 'pool.confirm', body: { pool: 'p2', amount: 900, paymentRef: 'w2' } },
      ...users.map((u, i) => ({ from: u, type: 'consent.grant', body: { consent: `c${i}`, distributor: cast.metro.publicKey, scheme: i % 2 === 0 ? 's1' : 's2', expiresAt: w.time + 40 * DAY_MS } })),
    ],
    [
      { from: cast.exchange, type: 'offer.publish', body: { offer: 'o1', pool: 'p1', pricePoints: 5, unitValue: 10, stock: 50 } },
      { from: cast.exchange, type: 'offer.publish', body: { offer: 'o2', pool: 'p2', pricePoints: 7, unitValue: 20, stock: 50 } },
    ],
    [
      { from: cast.sponsor, type: 'offer.approve', body: { offer: 'o1' } },
      { from: cast.sponsor, type: 'offer.approve', body: { offer: 'o2' } },
    ],
  ];
  for (const block of plan) {
    const r = step(w, twin, block);
    if (r.refused > 0) throw new Error('a setup transaction was refused');
  }
}

const genesis = genesisOf(castApp(cast));
/** Refusals that depend on nothing but the transaction: admission and execution must agree on them. */
const STATELESS = new Set<number>([Code.MALFORMED, Code.NOT_CANONICAL, Code.WRONG_CHAIN, Code.UNKNOWN_TYPE, Code.BAD_BODY]);

/**
 * Runs one block on the world (which checks invariants 1-7 after it) and the same block without
 * its refused transactions on the twin: equal app hashes mean the refusals changed nothing.
 */
function step(w: World, twin: GoodnessLedger, specs: TxSpec[]): { ok: number; refused: number } {
  const run = w.block(specs);
  const receipts = run.result.receipts;
  const accepted = run.txs.filter((_, i) => receipts[i]!.status === 'ok');
  receipts.forEach((r, i) => r.status === 'ok' && acceptedByType.set(specs[i]!.type, (acceptedByType.get(specs[i]!.type) ?? 0) + 1));
  const twinRun = twin.executeBlock(run.context, accepted);
  twin.commit(run.context.height);
  assert.equal(twinRun.receipts, receipts.filter((r) => r.status === 'ok'), `block ${run.context.height}: the accepted transactions' receipts differ without the refused ones`);
  assert.is(twinRun.appHash, run.result.appHash, `block ${run.context.height}: refused transactions changed the state`);
  run.admission.forEach((a, i) => {
    if (a !== 'ok' && STATELESS.has(a as number)) assert.is(receipts[i]!.code, a, `${specs[i]!.type}: admission refused with ${a}, execution with ${receipts[i]!.code}`);
    if (receipts[i]!.status === 'rejected') assert.equal(receipts[i]!.events, []);
  });
  // Handlers list event attributes in JCS order, so that receipts hash without sorting them (machine.ts, event).
  for (const r of receipts) {
    for (const e of r.events) {
      const keys = Object.keys(e.attributes);
      assert.equal(keys, [...keys].sort(), `${e.type}: event attributes out of JCS order`);
    }
  }
  return { ok: accepted.length, refused: receipts.length - accepted.length };
}

const totals = { runs: 0, ok: 0, refused: 0, blocks: 0 };
const acceptedByType = new Map<string, number>();

async function runPlan(plan: BlockPlan[]): Promise<void> {
  const w = await World.open(castApp(cast));
  const twin = new GoodnessLedger();
  await twin.open(emptyReader, genesis);
  setup(w, twin);
  totals.runs++;
  for (const block of plan) {
    w.advance(block.advance);
    const r = step(w, twin, block.ops.map((o) => toSpec(o, w.time + 1000)));
    totals.ok += r.ok;
    totals.refused += r.refused;
    totals.blocks++;
  }
}

test(`random sequences from every role (${RUNS} runs): invariants after every block, refused transactions change nothing`, async () => {
  const details = await fc.check(fc.asyncProperty(blocks, runPlan), { numRuns: RUNS, seed: SEED });
  if (details.failed) {
    // The shrunk case and the assertion it broke; GOODNESS_PROPERTY_SEED replays the run.
    console.error(fc.defaultReportMessage(details));
    console.error('error:', (details.errorInstance as Error)?.message ?? details.errorInstance);
    assert.unreachable(`property failed (seed ${details.seed})`);
  }
  console.log(`  ${totals.runs} runs, ${totals.blocks} blocks, ${totals.ok} transactions accepted, ${totals.refused} refused`);
  console.log(`  accepted by type: ${[...acceptedByType].sort().map(([t, n]) => `${t} ${n}`).join(', ')}`);
  // The generator must exercise both sides: a property over only refusals would prove little.
  assert.ok(totals.ok > totals.runs, `too few accepted transactions: ${totals.ok}`);
  assert.ok(totals.refused > totals.runs, `too few refused transactions: ${totals.refused}`);
});

test.run();
