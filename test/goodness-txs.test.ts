// Every transaction type of goodness.md: what it does, and each of its refusals. A refusal is
// executed alone in its block and must leave nothing but its receipt: the block writes only
// the `_meta` record. Invariants are checked after every block (World does it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blsKeygen, blsPopProve } from '../consensus/crypto/bls.ts';
import { to0x } from '../consensus/crypto/encoding.ts';
import { generateNodeKeys } from '../cluster/keys.ts';
import type { ReceiptCore } from '../consensus/chain/types.ts';
import { Code } from '../state/codes.ts';
import { DAY_MS } from '../state/goodness/records.ts';
import { castApp, evidence, newCast, newSigner, World, type Cast, type TxSpec } from '../state/goodness/testing.ts';
import type { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { listWrites } from '../state/machine.ts';

const SCHEME = {
  scheme: 'green',
  name: 'Green travel',
  unit: 'km',
  pointsPerUnit: 10,
  dailyCap: 100,
  pointValue: 5,
  lotValidityDays: 30,
  claimWindowDays: 7,
  autoIssue: true,
};

function expectOk(r: ReceiptCore): ReceiptCore {
  assert.is(r.status, 'ok', `expected ok, got ${r.code}: ${r.log}`);
  return r;
}

/** Runs `spec` alone in a block: it must be refused with `code` and change nothing. */
function refusedAlone(w: World, spec: TxSpec, code: number, log?: RegExp): void {
  const before = w.ledger.info().appHash;
  const run = w.block([spec]);
  const r = run.result.receipts[0]!;
  assert.is(r.status, 'rejected', `${spec.type} should be refused with ${code}`);
  assert.is(r.code, code, `${spec.type}: expected code ${code}, got ${r.code} (${r.log})`);
  if (log) assert.match(r.log, log);
  assert.equal(r.events, []);
  assert.equal(listWrites(run.result.writes).map(([k]) => Buffer.from(k).toString()), ['_meta'], `${spec.type} refused with ${code} wrote state`);
  assert.is.not(w.ledger.info().appHash, before);
}

interface Scene {
  w: World;
  c: Cast;
  users: Ed25519Signer[];
}

/** The travel world up to a funded, approved scheme with both distributors and consenting users. */
async function scene(opts: { autoIssue?: boolean; funding?: number; users?: number } = {}): Promise<Scene> {
  const c = newCast();
  const w = await World.open(castApp(c));
  const users = Array.from({ length: opts.users ?? 3 }, newSigner);
  expectOk(w.run({ from: c.bureau, type: 'scheme.define', body: { ...SCHEME, autoIssue: opts.autoIssue ?? true } }));
  const funding = opts.funding ?? 100_000;
  w.block([
    { from: c.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: c.metro.publicKey } },
    { from: c.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: c.bikes.publicKey } },
    { from: c.sponsor, type: 'pool.commit', body: { pool: 'pool1', scheme: 'green', amount: funding } },
    { from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } },
    ...users.map((u) => ({ from: u, type: 'account.open', body: {} })),
  ]).result.receipts.forEach(expectOk);
  expectOk(w.run({ from: c.bank, type: 'pool.confirm', body: { pool: 'pool1', amount: funding, paymentRef: 'wire-1' } }));
  w.block(users.map((u, i) => ({ from: u, type: 'consent.grant', body: { consent: `c${i}`, distributor: c.metro.publicKey, scheme: 'green', expiresAt: w.time + 60 * DAY_MS } }))).result.receipts.forEach(expectOk);
  return { w, c, users };
}

function deed(s: Scene, i: number, over: Record<string, unknown> = {}): TxSpec {
  return {
    from: s.c.metro,
    type: 'deed.submit',
    body: { deed: `d${i}-${Math.random().toString(36).slice(2, 8)}`, user: s.users[0]!.publicKey, scheme: 'green', quantity: 3, occurredAt: s.w.time, evidenceHash: evidence(`e${i}-${Math.random()}`), consent: 'c0', ...over },
  };
}

// ---- governance

test('gov.propose / gov.vote: org.register passes on a majority, counted once per governor; refusals', async () => {
  const c = newCast();
  const w = await World.open(castApp(c, false));
  const [g1, g2, g3] = c.governors as [Ed25519Signer, Ed25519Signer, Ed25519Signer];
  const action = { type: 'org.register', org: c.metro.publicKey, name: 'Metro', roles: ['distributor'] };
  const r1 = expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'p1', action } }));
  assert.equal(r1.events.map((e) => e.type), ['gov.propose']);
  refusedAlone(w, { from: g1, type: 'gov.vote', body: { proposal: 'p1', approve: true } }, Code.ALREADY_VOTED);
  refusedAlone(w, { from: g2, type: 'gov.vote', body: { proposal: 'nope', approve: true } }, Code.NOT_FOUND);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'p1', action } }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: c.metro, type: 'gov.propose', body: { proposal: 'p2', action } }, Code.NOT_PERMITTED);
  const r2 = expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'p1', approve: true } }));
  assert.equal(r2.events.map((e) => e.type), ['gov.vote', 'gov.executed', 'org.register']);
  assert.equal((w.query(`account/${c.metro.publicKey}`) as { roles: string[] }).roles, ['distributor']);
  refusedAlone(w, { from: g3, type: 'gov.vote', body: { proposal: 'p1', approve: true } }, Code.BAD_STATE, /executed/);
  // Registering what it already holds, a supervisor with another role, a user account.
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'p3', action } }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'p4', action: { ...action, roles: ['supervisor'] } } }, Code.ROLE_CONFLICT);
  const citizen = newSigner();
  expectOk(w.run({ from: citizen, type: 'account.open', body: {} }));
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'p5', action: { ...action, org: citizen.publicKey } } }, Code.ROLE_CONFLICT);
  // Bad actions are bad bodies, refused at admission.
  for (const bad of [{ type: 'org.promote' }, { ...action, roles: ['user'] }, { ...action, extra: 1 }, { type: 'validator.remove' }]) {
    const run = w.block([{ from: g1, type: 'gov.propose', body: { proposal: 'p6', action: bad } }]);
    assert.equal([run.admission[0], run.result.receipts[0]!.code], [Code.BAD_BODY, Code.BAD_BODY]);
  }
  // Rejection: two of three against.
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'p7', action: { type: 'org.revoke', org: c.metro.publicKey, roles: ['distributor'] } } }));
  expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'p7', approve: false } }));
  const r3 = expectOk(w.run({ from: g3, type: 'gov.vote', body: { proposal: 'p7', approve: false } }));
  assert.equal(r3.events.map((e) => e.type), ['gov.vote', 'gov.rejected']);
  assert.equal((w.query(`account/${c.metro.publicKey}`) as { roles: string[] }).roles, ['distributor']);
});

test('governance: org.revoke, governor.add/remove, a passed action that no longer applies fails', async () => {
  const c = newCast(1);
  const w = await World.open(castApp(c));
  const [g1] = c.governors as [Ed25519Signer];
  // One governor: proposing is a majority.
  const r = expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'rv', action: { type: 'org.revoke', org: c.metro.publicKey, roles: ['distributor'] } } }));
  assert.ok(r.events.some((e) => e.type === 'gov.executed'));
  assert.equal((w.query(`account/${c.metro.publicKey}`) as { roles: string[] }).roles, []);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'rv2', action: { type: 'org.revoke', org: c.metro.publicKey, roles: ['distributor'] } } }, Code.NOT_FOUND);
  const g2 = newSigner();
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'ga', action: { type: 'governor.add', account: g2.publicKey } } }));
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'ga2', action: { type: 'governor.add', account: g2.publicKey } } }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'ga3', action: { type: 'governor.add', account: c.regulator.publicKey } } }, Code.ROLE_CONFLICT);
  // Two governors now: a proposal needs both. Two proposals to remove g2 pass... the second fails.
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'gr1', action: { type: 'governor.remove', account: g2.publicKey } } }));
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'gr2', action: { type: 'governor.remove', account: g2.publicKey } } }));
  const pass = expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'gr1', approve: true } }));
  assert.ok(pass.events.some((e) => e.type === 'governor.remove'));
  refusedAlone(w, { from: g2, type: 'gov.vote', body: { proposal: 'gr2', approve: true } }, Code.NOT_PERMITTED, /governor/);
  // g1 alone is a majority again: gr2 passes on g1's... g1 already approved it; a fresh proposal shows the failure path.
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'gr3', action: { type: 'governor.remove', account: g1.publicKey } } }, Code.BAD_STATE, /last governor/);
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'ga4', action: { type: 'governor.add', account: g2.publicKey } } }));
  const failed = expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'gr2', approve: true } }));
  // gr2 now has both approvals and g2 is a governor again: it passes and removes g2.
  assert.ok(failed.events.some((e) => e.type === 'governor.remove'));
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'x1', action: { type: 'org.register', org: c.metro.publicKey, name: 'Metro', roles: ['distributor'] } } }));
  assert.equal((w.query(`account/${c.metro.publicKey}`) as { roles: string[] }).roles, ['distributor']);
});

test('governance: validator.add takes the next unused index and checks the proof of possession; validator.remove', async () => {
  const c = newCast(2);
  const genesisKeys = await Promise.all([generateNodeKeys(), generateNodeKeys()]);
  const validators = genesisKeys.map((k, index) => ({ index, peerId: k.peerId, blsPublicKey: k.blsPublicKey, pop: k.pop }));
  const w = await World.open(castApp(c), validators);
  const [g1, g2] = c.governors as [Ed25519Signer, Ed25519Signer];
  const fresh = await generateNodeKeys();
  const add = { type: 'validator.add', peerId: fresh.peerId, blsPublicKey: fresh.blsPublicKey, pop: fresh.pop };
  const wrongPop = to0x(blsPopProve(blsKeygen().secretKey));
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'bad', action: { ...add, pop: wrongPop } } }, Code.BAD_POP);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'dup', action: { ...add, peerId: validators[0]!.peerId } } }, Code.ALREADY_EXISTS);
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'add', action: add } }));
  const run = w.block([{ from: g2, type: 'gov.vote', body: { proposal: 'add', approve: true } }]);
  expectOk(run.result.receipts[0]!);
  assert.equal(run.result.validatorUpdates, [{ type: 'add', validator: { index: 2, peerId: fresh.peerId, blsPublicKey: fresh.blsPublicKey, pop: fresh.pop } }]);
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'rm', action: { type: 'validator.remove', index: 2 } } }));
  const rm = w.block([{ from: g2, type: 'gov.vote', body: { proposal: 'rm', approve: true } }]);
  assert.equal(rm.result.validatorUpdates, [{ type: 'remove', index: 2 }]);
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'rm2', action: { type: 'validator.remove', index: 2 } } }, Code.NOT_FOUND);
  // Indexes are never reused: the next add takes 3.
  const again = await generateNodeKeys();
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'add2', action: { type: 'validator.add', peerId: again.peerId, blsPublicKey: again.blsPublicKey, pop: again.pop } } }));
  const add2 = w.block([{ from: g2, type: 'gov.vote', body: { proposal: 'add2', approve: true } }]);
  assert.is((add2.result.validatorUpdates[0] as { validator: { index: number } }).validator.index, 3);
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'rm0', action: { type: 'validator.remove', index: 0 } } }));
  expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'rm0', approve: true } }));
  expectOk(w.run({ from: g1, type: 'gov.propose', body: { proposal: 'rm1', action: { type: 'validator.remove', index: 1 } } }));
  expectOk(w.run({ from: g2, type: 'gov.vote', body: { proposal: 'rm1', approve: true } }));
  refusedAlone(w, { from: g1, type: 'gov.propose', body: { proposal: 'rm3', action: { type: 'validator.remove', index: 3 } } }, Code.BAD_STATE, /last validator/);
});

// ---- accounts and consent

test('consent.grant / consent.revoke and their refusals', async () => {
  const s = await scene();
  const { w, c, users } = s;
  const u = users[0]!;
  const grant = (over: Record<string, unknown> = {}, from = u): TxSpec => ({ from, type: 'consent.grant', body: { consent: 'cx', distributor: c.bikes.publicKey, scheme: 'green', expiresAt: w.time + DAY_MS, ...over } });
  refusedAlone(w, grant({ consent: 'c0' }), Code.ALREADY_EXISTS);
  refusedAlone(w, grant({ distributor: c.bureau.publicKey }), Code.NOT_FOUND, /not a distributor/);
  refusedAlone(w, grant({ scheme: 'blue' }), Code.NOT_FOUND);
  refusedAlone(w, grant({ expiresAt: w.time }), Code.OUT_OF_WINDOW);
  refusedAlone(w, grant({}, c.metro), Code.NOT_PERMITTED);
  refusedAlone(w, grant({ expiresAt: -1 }), Code.BAD_BODY);
  expectOk(w.run(grant()));
  assert.equal((w.query('consent/cx', u) as { status: string }).status, 'active');
  refusedAlone(w, { from: users[1]!, type: 'consent.revoke', body: { consent: 'cx' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: u, type: 'consent.revoke', body: { consent: 'nope' } }, Code.NOT_FOUND);
  expectOk(w.run({ from: u, type: 'consent.revoke', body: { consent: 'cx' } }));
  refusedAlone(w, { from: u, type: 'consent.revoke', body: { consent: 'cx' } }, Code.BAD_STATE);
  // A frozen distributor takes part in nothing.
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: c.bikes.publicKey, reason: 'audit' } }));
  refusedAlone(w, grant({ consent: 'cy' }), Code.FROZEN);
});

// ---- schemes and funding

test('scheme.define / approve / suspend / assign / unassign and their refusals', async () => {
  const c = newCast();
  const w = await World.open(castApp(c));
  refusedAlone(w, { from: c.metro, type: 'scheme.define', body: SCHEME }, Code.NOT_PERMITTED);
  for (const bad of [{ pointsPerUnit: 0 }, { dailyCap: -1 }, { lotValidityDays: 40_000 }, { autoIssue: 'yes' }, { name: '' }, { scheme: 'has space' }]) {
    const run = w.block([{ from: c.bureau, type: 'scheme.define', body: { ...SCHEME, ...bad } }]);
    assert.equal([run.admission[0], run.result.receipts[0]!.code], [Code.BAD_BODY, Code.BAD_BODY], JSON.stringify(bad));
  }
  expectOk(w.run({ from: c.bureau, type: 'scheme.define', body: SCHEME }));
  assert.equal((w.query('scheme/green') as { status: string }).status, 'draft');
  refusedAlone(w, { from: c.bureau, type: 'scheme.define', body: SCHEME }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: c.bureau, type: 'scheme.approve', body: { scheme: 'green' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.regulator, type: 'scheme.approve', body: { scheme: 'blue' } }, Code.NOT_FOUND);
  refusedAlone(w, { from: c.regulator, type: 'scheme.suspend', body: { scheme: 'green' } }, Code.BAD_STATE);
  expectOk(w.run({ from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } }));
  refusedAlone(w, { from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } }, Code.BAD_STATE);
  expectOk(w.run({ from: c.regulator, type: 'scheme.suspend', body: { scheme: 'green' } }));
  assert.equal((w.query('scheme/green') as { status: string }).status, 'suspended');
  expectOk(w.run({ from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } }));

  const assign = (distributor: string, from = c.bureau, type = 'scheme.assign'): TxSpec => ({ from, type, body: { scheme: 'green', distributor } });
  refusedAlone(w, assign(c.bureau.publicKey), Code.ROLE_CONFLICT);
  refusedAlone(w, assign(c.sponsor.publicKey), Code.NOT_FOUND, /not a distributor/);
  refusedAlone(w, assign(c.metro.publicKey, c.metro), Code.NOT_PERMITTED);
  // Another issuer may not assign to this scheme.
  expectOk(w.run({ from: c.governors[0]!, type: 'gov.propose', body: { proposal: 'i2', action: { type: 'org.register', org: c.bikes.publicKey, name: 'Bikes', roles: ['issuer'] } } }));
  expectOk(w.run({ from: c.governors[1]!, type: 'gov.vote', body: { proposal: 'i2', approve: true } }));
  refusedAlone(w, assign(c.metro.publicKey, c.bikes), Code.NOT_PERMITTED, /issued by/);
  expectOk(w.run(assign(c.metro.publicKey)));
  refusedAlone(w, assign(c.metro.publicKey), Code.ALREADY_EXISTS);
  expectOk(w.run(assign(c.metro.publicKey, c.bureau, 'scheme.unassign')));
  refusedAlone(w, assign(c.metro.publicKey, c.bureau, 'scheme.unassign'), Code.NOT_FOUND);
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: 'scheme/green', reason: 'review' } }));
  refusedAlone(w, assign(c.metro.publicKey), Code.FROZEN);
  refusedAlone(w, { from: c.regulator, type: 'scheme.suspend', body: { scheme: 'green' } }, Code.FROZEN);
});

test('pool.commit / pool.confirm: budget grows by amount / pointValue; role separation; refusals', async () => {
  const c = newCast();
  const w = await World.open(castApp(c));
  expectOk(w.run({ from: c.bureau, type: 'scheme.define', body: SCHEME }));
  refusedAlone(w, { from: c.sponsor, type: 'pool.commit', body: { pool: 'p', scheme: 'blue', amount: 10 } }, Code.NOT_FOUND);
  refusedAlone(w, { from: c.bank, type: 'pool.commit', body: { pool: 'p', scheme: 'green', amount: 10 } }, Code.NOT_PERMITTED);
  expectOk(w.run({ from: c.sponsor, type: 'pool.commit', body: { pool: 'p', scheme: 'green', amount: 1003 } }));
  refusedAlone(w, { from: c.sponsor, type: 'pool.commit', body: { pool: 'p', scheme: 'green', amount: 10 } }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: c.sponsor, type: 'pool.confirm', body: { pool: 'p', amount: 10, paymentRef: 'x' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.bank, type: 'pool.confirm', body: { pool: 'q', amount: 10, paymentRef: 'x' } }, Code.NOT_FOUND);
  refusedAlone(w, { from: c.bank, type: 'pool.confirm', body: { pool: 'p', amount: 2000, paymentRef: 'x' } }, Code.BAD_STATE, /exceed/);
  expectOk(w.run({ from: c.bank, type: 'pool.confirm', body: { pool: 'p', amount: 1003, paymentRef: 'wire' } }));
  assert.equal(w.query('audit/scheme/green'), { scheme: 'green', issued: 0, live: 0, redeemed: 0, expired: 0, clawedBack: 0, budget: 200, funded: 1003, pointValue: 5, pending: 0, shortfall: 0 });
  // A second clearing provider may not confirm this pool; a sponsor that is also clearing may not confirm its own pool.
  const bank2 = newSigner();
  expectOk(w.run({ from: c.governors[0]!, type: 'gov.propose', body: { proposal: 'b2', action: { type: 'org.register', org: bank2.publicKey, name: 'Bank 2', roles: ['clearing', 'sponsor'] } } }));
  expectOk(w.run({ from: c.governors[1]!, type: 'gov.vote', body: { proposal: 'b2', approve: true } }));
  expectOk(w.run({ from: c.sponsor, type: 'pool.commit', body: { pool: 'p2', scheme: 'green', amount: 50 } }));
  refusedAlone(w, { from: bank2, type: 'pool.confirm', body: { pool: 'p', amount: 1, paymentRef: 'x' } }, Code.NOT_PERMITTED, /cleared by/);
  expectOk(w.run({ from: bank2, type: 'pool.commit', body: { pool: 'p3', scheme: 'green', amount: 50 } }));
  refusedAlone(w, { from: bank2, type: 'pool.confirm', body: { pool: 'p3', amount: 10, paymentRef: 'x' } }, Code.ROLE_CONFLICT);
  expectOk(w.run({ from: c.bank, type: 'pool.confirm', body: { pool: 'p2', amount: 10, paymentRef: 'x' } }));
  refusedAlone(w, { from: bank2, type: 'pool.confirm', body: { pool: 'p2', amount: 10, paymentRef: 'x' } }, Code.NOT_PERMITTED, /cleared by/);
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: 'pool/p2', reason: 'check' } }));
  refusedAlone(w, { from: c.bank, type: 'pool.confirm', body: { pool: 'p2', amount: 10, paymentRef: 'x' } }, Code.FROZEN);
});

// ---- earning

test('deed.submit: points per unit, cut to the daily cap and the budget; every refusal', async () => {
  const s = await scene({ funding: 1000 }); // budget 200 points
  const { w, c, users } = s;
  const u = users[0]!.publicKey;
  const r = expectOk(w.run(deed(s, 1, { quantity: 3 })));
  assert.equal(r.events[0]!.attributes.points, '30');
  assert.is((w.query(`account/${u}`) as { points: number }).points, 30);
  // 30 + 10×10 → cut to the cap of 100.
  const cut = expectOk(w.run(deed(s, 2, { quantity: 10 })));
  assert.equal([cut.events[0]!.attributes.points, cut.events[0]!.attributes.requested], ['70', '100']);
  refusedAlone(w, deed(s, 3), Code.OVER_CAP);
  refusedAlone(w, deed(s, 4, { user: users[1]!.publicKey, consent: 'c0' }), Code.NO_CONSENT, /not .*'s/);
  refusedAlone(w, deed(s, 5, { consent: 'zz' }), Code.NO_CONSENT, /no consent/);
  refusedAlone(w, { ...deed(s, 6), from: c.bikes }, Code.NO_CONSENT, /does not cover distributor/);
  refusedAlone(w, deed(s, 7, { occurredAt: w.time - 8 * DAY_MS }), Code.NO_CONSENT, /not valid at occurredAt/);
  refusedAlone(w, deed(s, 8, { user: users[1]!.publicKey, consent: 'c1', occurredAt: w.time + 10 * 1000 }), Code.OUT_OF_WINDOW);
  refusedAlone(w, deed(s, 9, { scheme: 'blue' }), Code.NOT_FOUND);
  refusedAlone(w, { ...deed(s, 10), from: c.bureau }, Code.NOT_PERMITTED);
  refusedAlone(w, deed(s, 11, { user: c.sponsor.publicKey }), Code.NOT_FOUND, /no good account/);
  const used = deed(s, 12, { user: users[1]!.publicKey, consent: 'c1' });
  expectOk(w.run(used));
  refusedAlone(w, deed(s, 13, { user: users[1]!.publicKey, consent: 'c1', evidenceHash: used.body.evidenceHash }), Code.DUPLICATE_EVIDENCE);
  refusedAlone(w, deed(s, 14, { user: users[1]!.publicKey, consent: 'c1', deed: used.body.deed }), Code.ALREADY_EXISTS);
  for (const bad of [{ quantity: 0 }, { evidenceHash: 'abc' }, { user: 'bob' }, { occurredAt: 1.5 }]) {
    const run = w.block([deed(s, 15, bad)]);
    assert.is(run.result.receipts[0]!.code, bad.occurredAt ? Code.MALFORMED : Code.BAD_BODY, JSON.stringify(bad));
  }
  // A distributor that is not assigned.
  expectOk(w.run({ from: users[2]!, type: 'consent.grant', body: { consent: 'cb', distributor: c.bikes.publicKey, scheme: 'green', expiresAt: w.time + DAY_MS } }));
  expectOk(w.run({ from: c.bureau, type: 'scheme.unassign', body: { scheme: 'green', distributor: c.bikes.publicKey } }));
  refusedAlone(w, { ...deed(s, 16, { user: users[2]!.publicKey, consent: 'cb' }), from: c.bikes }, Code.NOT_PERMITTED, /not assigned/);
  // Over budget: 200 points of budget, 130 issued; user 2 gets 70, then nothing is left.
  const last = expectOk(w.run(deed(s, 17, { user: users[2]!.publicKey, consent: 'c2', quantity: 9 })));
  assert.equal(last.events[0]!.attributes.points, '70');
  w.advanceDays(1);
  refusedAlone(w, deed(s, 18, { occurredAt: w.time + 1000 }), Code.OVER_BUDGET);
  // The next day the cap is fresh (the budget is what stops user 0 now).
  // Revoked consent, frozen user, suspended and frozen scheme.
  expectOk(w.run({ from: users[1]!, type: 'consent.revoke', body: { consent: 'c1' } }));
  refusedAlone(w, deed(s, 19, { user: users[1]!.publicKey, consent: 'c1', occurredAt: w.time }), Code.NO_CONSENT, /revoked/);
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: `account/${users[2]!.publicKey}`, reason: 'x' } }));
  refusedAlone(w, deed(s, 20, { user: users[2]!.publicKey, consent: 'c2', occurredAt: w.time }), Code.FROZEN);
  expectOk(w.run({ from: c.regulator, type: 'scheme.suspend', body: { scheme: 'green' } }));
  refusedAlone(w, deed(s, 21, { occurredAt: w.time }), Code.BAD_STATE, /suspended/);
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: 'green', reason: 'x' } }));
  refusedAlone(w, deed(s, 22, { occurredAt: w.time }), Code.FROZEN);
  // Consent expired.
  const s2 = await scene();
  s2.w.advanceDays(61);
  refusedAlone(s2.w, deed(s2, 23, { occurredAt: s2.w.time - 30 * DAY_MS }), Code.NO_CONSENT, /expired/);
});

test('deed.issue / deed.reject for manual schemes: budget and cap held while pending; refusals', async () => {
  const s = await scene({ autoIssue: false, funding: 1000 });
  const { w, c, users } = s;
  const u = users[0]!.publicKey;
  const d1 = deed(s, 1, { quantity: 5 });
  const r = expectOk(w.run(d1));
  assert.equal(r.events[0]!.attributes.status, 'pending');
  assert.equal(w.query('audit/scheme/green') as object, { scheme: 'green', issued: 0, live: 0, redeemed: 0, expired: 0, clawedBack: 0, budget: 200, funded: 1000, pointValue: 5, pending: 50, shortfall: 0 });
  assert.is((w.query(`account/${u}`) as { points: number }).points, 0);
  const d2 = deed(s, 2, { quantity: 5 });
  expectOk(w.run(d2));
  refusedAlone(w, deed(s, 3), Code.OVER_CAP);
  refusedAlone(w, { from: c.metro, type: 'deed.issue', body: { deed: d1.body.deed } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.bureau, type: 'deed.issue', body: { deed: 'nope' } }, Code.NOT_FOUND);
  expectOk(w.run({ from: c.bureau, type: 'deed.issue', body: { deed: d1.body.deed } }));
  refusedAlone(w, { from: c.bureau, type: 'deed.issue', body: { deed: d1.body.deed } }, Code.BAD_STATE, /issued/);
  refusedAlone(w, { from: c.bureau, type: 'deed.reject', body: { deed: d1.body.deed } }, Code.BAD_STATE);
  assert.is((w.query(`account/${u}`) as { points: number }).points, 50);
  expectOk(w.run({ from: c.bureau, type: 'deed.reject', body: { deed: d2.body.deed } }));
  // Rejecting gave back the cap: another 50 fit today.
  const d4 = deed(s, 4, { quantity: 5 });
  expectOk(w.run(d4));
  assert.equal((w.query('audit/scheme/green') as { pending: number; issued: number }).pending, 50);
  expectOk(w.run({ from: c.regulator, type: 'scheme.suspend', body: { scheme: 'green' } }));
  refusedAlone(w, { from: c.bureau, type: 'deed.issue', body: { deed: d4.body.deed } }, Code.BAD_STATE, /suspended/);
  expectOk(w.run({ from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } }));
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: u, reason: 'x' } }));
  refusedAlone(w, { from: c.bureau, type: 'deed.issue', body: { deed: d4.body.deed } }, Code.FROZEN);
});

test('deed.reverse claws back unspent points and records what was spent as a shortfall; lots expire', async () => {
  const s = await scene();
  const { w, c, users } = s;
  const u = users[0]!;
  const d1 = deed(s, 1, { quantity: 5 });
  expectOk(w.run(d1));
  expectOk(w.run({ from: c.exchange, type: 'offer.publish', body: { offer: 'tea', pool: 'pool1', pricePoints: 20, unitValue: 100, stock: 10 } }));
  expectOk(w.run({ from: c.sponsor, type: 'offer.approve', body: { offer: 'tea' } }));
  expectOk(w.run({ from: u, type: 'offer.redeem', body: { redemption: 'r1', offer: 'tea', quantity: 1 } }));
  refusedAlone(w, { from: c.metro, type: 'deed.reverse', body: { deed: d1.body.deed, reason: 'fraud' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.regulator, type: 'deed.reverse', body: { deed: 'nope', reason: 'fraud' } }, Code.NOT_FOUND);
  const r = expectOk(w.run({ from: c.regulator, type: 'deed.reverse', body: { deed: d1.body.deed, reason: 'fraud' } }));
  assert.equal([r.events[0]!.attributes.clawedBack, r.events[0]!.attributes.shortfall], ['30', '20']);
  refusedAlone(w, { from: c.regulator, type: 'deed.reverse', body: { deed: d1.body.deed, reason: 'again' } }, Code.BAD_STATE);
  let audit = w.query('audit/scheme/green') as Record<string, number>;
  assert.equal([audit.issued, audit.live, audit.redeemed, audit.clawedBack, audit.shortfall], [50, 0, 20, 30, 20]);
  // Cancelling the redemption gives the spent part back to the clawback, not to the user.
  expectOk(w.run({ from: c.exchange, type: 'redemption.cancel', body: { redemption: 'r1' } }));
  audit = w.query('audit/scheme/green') as Record<string, number>;
  assert.equal([audit.issued, audit.live, audit.redeemed, audit.clawedBack, audit.shortfall], [50, 0, 0, 50, 0]);
  assert.is((w.query(`account/${u.publicKey}`) as { points: number }).points, 0);
  // Expiry: a new lot lives 30 days, then burns by itself.
  w.advanceDays(1);
  expectOk(w.run(deed(s, 2, { quantity: 4, occurredAt: w.time + 1000 })));
  assert.is((w.query(`account/${u.publicKey}`) as { points: number }).points, 40);
  w.advanceDays(30);
  w.block([]);
  assert.is((w.query(`account/${u.publicKey}`) as { points: number }).points, 0);
  audit = w.query('audit/scheme/green') as Record<string, number>;
  assert.equal([audit.issued, audit.live, audit.expired], [90, 0, 40]);
});

// ---- spending

test('offer.publish / approve / redeem, redemption.fulfil / cancel: earliest expiry first, exact re-credit; refusals', async () => {
  const s = await scene({ funding: 1000 });
  const { w, c, users } = s;
  const u = users[0]!;
  expectOk(w.run(deed(s, 1, { quantity: 2 }))); // 20 points, expires first
  w.advanceDays(1);
  expectOk(w.run(deed(s, 2, { quantity: 3, occurredAt: w.time + 1000 }))); // 30 points
  const publish = (over: Record<string, unknown> = {}, from = c.exchange): TxSpec => ({ from, type: 'offer.publish', body: { offer: 'bus', pool: 'pool1', pricePoints: 15, unitValue: 100, stock: 4, ...over } });
  refusedAlone(w, publish({}, c.sponsor), Code.NOT_PERMITTED);
  refusedAlone(w, publish({ pool: 'nope' }), Code.NOT_FOUND);
  expectOk(w.run(publish()));
  refusedAlone(w, publish(), Code.ALREADY_EXISTS);
  const redeem = (over: Record<string, unknown> = {}, from = u): TxSpec => ({ from, type: 'offer.redeem', body: { redemption: 'r1', offer: 'bus', quantity: 1, ...over } });
  refusedAlone(w, redeem(), Code.BAD_STATE, /not approved/);
  refusedAlone(w, { from: c.bank, type: 'offer.approve', body: { offer: 'bus' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.sponsor, type: 'offer.approve', body: { offer: 'nope' } }, Code.NOT_FOUND);
  expectOk(w.run({ from: c.sponsor, type: 'offer.approve', body: { offer: 'bus' } }));
  refusedAlone(w, { from: c.sponsor, type: 'offer.approve', body: { offer: 'bus' } }, Code.BAD_STATE);
  refusedAlone(w, redeem({ quantity: 5 }), Code.OUT_OF_STOCK);
  refusedAlone(w, redeem({ quantity: 4 }), Code.INSUFFICIENT_POINTS);
  refusedAlone(w, redeem({ offer: 'nope' }), Code.NOT_FOUND);
  refusedAlone(w, redeem({}, c.metro), Code.NOT_PERMITTED);
  const r1 = expectOk(w.run(redeem({ quantity: 2 })));
  assert.equal(r1.events[0]!.attributes.points, '30');
  const red = w.query('redemption/r1', u) as { burned: { points: number }[]; value: number };
  assert.equal(red.burned.map((b) => b.points), [20, 10], 'the lot expiring first is burned first');
  assert.is(red.value, 200);
  refusedAlone(w, redeem({ quantity: 1 }), Code.ALREADY_EXISTS);
  expectOk(w.run(redeem({ redemption: 'r2', quantity: 1 })));
  assert.is((w.query(`account/${u.publicKey}`) as { points: number }).points, 5);
  assert.is((w.query('offer/bus') as { stock: number }).stock, 1);
  refusedAlone(w, { from: c.bikes, type: 'redemption.fulfil', body: { redemption: 'r1' } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.exchange, type: 'redemption.fulfil', body: { redemption: 'rx' } }, Code.NOT_FOUND);
  expectOk(w.run({ from: c.exchange, type: 'redemption.fulfil', body: { redemption: 'r1' } }));
  refusedAlone(w, { from: c.exchange, type: 'redemption.cancel', body: { redemption: 'r1' } }, Code.BAD_STATE, /fulfilled/);
  const before = w.query(`account/${u.publicKey}`, u) as { lots: unknown[] };
  expectOk(w.run({ from: c.exchange, type: 'redemption.cancel', body: { redemption: 'r2' } }));
  const after = w.query(`account/${u.publicKey}`, u) as { points: number; lots: { points: number; expiresAt: number }[] };
  assert.is(after.points, 20);
  assert.is(after.lots.length, before.lots.length, 'the re-credit merges into the lot it came from');
  assert.is((w.query('offer/bus') as { stock: number }).stock, 2);
  assert.is((w.query('pool/pool1') as { reserved: number }).reserved, 200);
  // Over budget: the pool cannot cover another reservation beyond its confirmed funds.
  expectOk(w.run(publish({ offer: 'bike', pricePoints: 1, unitValue: 900, stock: 5 })));
  expectOk(w.run({ from: c.sponsor, type: 'offer.approve', body: { offer: 'bike' } }));
  refusedAlone(w, redeem({ redemption: 'r3', offer: 'bike', quantity: 1 }), Code.OVER_BUDGET);
  // Frozen offer, exchange.
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: 'offer/bus', reason: 'x' } }));
  refusedAlone(w, redeem({ redemption: 'r4' }), Code.FROZEN);
  expectOk(w.run({ from: c.regulator, type: 'supervise.unfreeze', body: { target: 'offer/bus', reason: 'ok' } }));
  expectOk(w.run({ from: c.regulator, type: 'supervise.freeze', body: { target: c.exchange.publicKey, reason: 'x' } }));
  refusedAlone(w, redeem({ redemption: 'r4' }), Code.FROZEN, /exchange/);
  refusedAlone(w, publish({ offer: 'new' }), Code.FROZEN);
  // The clearing provider of a pool may not publish offers paid from it.
  const both = newSigner();
  expectOk(w.run({ from: c.governors[0]!, type: 'gov.propose', body: { proposal: 'ex', action: { type: 'org.register', org: both.publicKey, name: 'Both', roles: ['exchange', 'clearing'] } } }));
  expectOk(w.run({ from: c.governors[1]!, type: 'gov.vote', body: { proposal: 'ex', approve: true } }));
  expectOk(w.run({ from: c.sponsor, type: 'pool.commit', body: { pool: 'pool2', scheme: 'green', amount: 100 } }));
  expectOk(w.run({ from: both, type: 'pool.confirm', body: { pool: 'pool2', amount: 100, paymentRef: 'w' } }));
  refusedAlone(w, publish({ offer: 'mine', pool: 'pool2' }, both), Code.ROLE_CONFLICT);
});

// ---- clearing

test('clearing.close / settle / confirm / dispute: one line per (sponsor, exchange); refusals', async () => {
  const s = await scene({ funding: 10_000 });
  const { w, c, users } = s;
  for (let i = 0; i < 3; i++) expectOk(w.run(deed(s, i, { user: users[i]!.publicKey, consent: `c${i}`, quantity: 5 })));
  expectOk(w.run({ from: c.exchange, type: 'offer.publish', body: { offer: 'tea', pool: 'pool1', pricePoints: 10, unitValue: 150, stock: 100 } }));
  expectOk(w.run({ from: c.sponsor, type: 'offer.approve', body: { offer: 'tea' } }));
  w.block(users.map((u, i) => ({ from: u, type: 'offer.redeem', body: { redemption: `r${i}`, offer: 'tea', quantity: 2 } }))).result.receipts.forEach(expectOk);
  refusedAlone(w, { from: c.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['pool1'] } }, Code.BAD_STATE, /no fulfilled/);
  w.block([0, 1].map((i) => ({ from: c.exchange, type: 'redemption.fulfil', body: { redemption: `r${i}` } }))).result.receipts.forEach(expectOk);
  refusedAlone(w, { from: c.sponsor, type: 'clearing.close', body: { batch: 'b1', pools: ['pool1'] } }, Code.NOT_PERMITTED);
  refusedAlone(w, { from: c.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['nope'] } }, Code.NOT_FOUND);
  const close = expectOk(w.run({ from: c.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['pool1'] } }));
  assert.equal(close.events[0]!.attributes, { batch: 'b1', redemptions: '2', lines: '1', total: '600' });
  refusedAlone(w, { from: c.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['pool1'] } }, Code.ALREADY_EXISTS);
  refusedAlone(w, { from: c.bank, type: 'clearing.close', body: { batch: 'b2', pools: ['pool1'] } }, Code.BAD_STATE, /no fulfilled/);
  const batch = w.query('batch/b1', c.bank) as { lines: unknown[]; status: string; redemptions: string[] };
  assert.equal(batch.lines, [{ sponsor: c.sponsor.publicKey, exchange: c.exchange.publicKey, amount: 600, redemptions: 2 }]);
  assert.equal([batch.status, batch.redemptions], ['closed', ['r0', 'r1']]);
  refusedAlone(w, { from: c.sponsor, type: 'clearing.confirm', body: { batch: 'b1' } }, Code.BAD_STATE, /not settled/);
  refusedAlone(w, { from: c.bank, type: 'clearing.settle', body: { batch: 'b1', paymentRefs: ['a', 'b'] } }, Code.BAD_BODY, /one payment reference per line/);
  refusedAlone(w, { from: c.bank, type: 'clearing.settle', body: { batch: 'nope', paymentRefs: ['a'] } }, Code.NOT_FOUND);
  expectOk(w.run({ from: c.bank, type: 'clearing.settle', body: { batch: 'b1', paymentRefs: ['wire-77'] } }));
  refusedAlone(w, { from: c.bank, type: 'clearing.settle', body: { batch: 'b1', paymentRefs: ['wire-78'] } }, Code.BAD_STATE);
  const pool = w.query('pool/pool1') as { reserved: number; settled: number };
  assert.equal([pool.reserved, pool.settled], [300, 600]);
  refusedAlone(w, { from: c.metro, type: 'clearing.confirm', body: { batch: 'b1' } }, Code.NOT_PERMITTED);
  const other = newSigner();
  expectOk(w.run({ from: c.governors[0]!, type: 'gov.propose', body: { proposal: 'ex2', action: { type: 'org.register', org: other.publicKey, name: 'Ex 2', roles: ['exchange'] } } }));
  expectOk(w.run({ from: c.governors[1]!, type: 'gov.vote', body: { proposal: 'ex2', approve: true } }));
  refusedAlone(w, { from: other, type: 'clearing.confirm', body: { batch: 'b1' } }, Code.NOT_PERMITTED, /not a counterparty/);
  expectOk(w.run({ from: c.sponsor, type: 'clearing.confirm', body: { batch: 'b1' } }));
  refusedAlone(w, { from: c.sponsor, type: 'clearing.dispute', body: { batch: 'b1' } }, Code.BAD_STATE, /already answered/);
  const done = expectOk(w.run({ from: c.exchange, type: 'clearing.confirm', body: { batch: 'b1' } }));
  assert.equal(done.events[0]!.attributes.status, 'confirmed');
  // A second batch, disputed.
  expectOk(w.run({ from: c.exchange, type: 'redemption.fulfil', body: { redemption: 'r2' } }));
  expectOk(w.run({ from: c.bank, type: 'clearing.close', body: { batch: 'b2', pools: ['pool1'] } }));
  const d = expectOk(w.run({ from: c.exchange, type: 'clearing.dispute', body: { batch: 'b2' } }));
  assert.equal(d.events[0]!.attributes.status, 'disputed');
  refusedAlone(w, { from: c.bank, type: 'clearing.settle', body: { batch: 'b2', paymentRefs: ['x'] } }, Code.BAD_STATE, /disputed/);
});

// ---- supervision

test('supervise.freeze / unfreeze: targets by kind or bare id; refusals; a frozen sender is refused at admission', async () => {
  const s = await scene();
  const { w, c, users } = s;
  const freeze = (target: string, from = c.regulator, type = 'supervise.freeze'): TxSpec => ({ from, type, body: { target, reason: 'check' } });
  refusedAlone(w, freeze('pool1', c.bank), Code.NOT_PERMITTED);
  refusedAlone(w, freeze('nothing'), Code.NOT_FOUND);
  refusedAlone(w, freeze('vault/x'), Code.BAD_BODY);
  refusedAlone(w, freeze(c.regulator.publicKey), Code.NOT_PERMITTED, /own account/);
  refusedAlone(w, freeze('pool1', c.regulator, 'supervise.unfreeze'), Code.BAD_STATE, /not frozen/);
  // A bare id that names both a scheme and a pool is ambiguous.
  expectOk(w.run({ from: c.sponsor, type: 'pool.commit', body: { pool: 'green', scheme: 'green', amount: 5 } }));
  refusedAlone(w, freeze('green'), Code.BAD_BODY, /say which/);
  expectOk(w.run(freeze('pool/green')));
  refusedAlone(w, freeze('pool/green'), Code.BAD_STATE, /already frozen/);
  expectOk(w.run(freeze(`org/${c.metro.publicKey}`)));
  const run = w.block([deed(s, 1)]);
  assert.equal([run.admission[0], run.result.receipts[0]!.code], [Code.FROZEN, Code.FROZEN]);
  expectOk(w.run(freeze(c.metro.publicKey, c.regulator, 'supervise.unfreeze')));
  expectOk(w.run(deed(s, 2)));
  expectOk(w.run(freeze(users[0]!.publicKey)));
  const own = w.block([{ from: users[0]!, type: 'consent.revoke', body: { consent: 'c0' } }]);
  assert.is(own.admission[0], Code.FROZEN);
  const log = w.query('audit/log?from=0', c.regulator) as { type: string; detail: { target?: string } }[];
  assert.ok(log.filter((e) => e.type.startsWith('supervise.')).length >= 4);
});

test('no transfer of points exists: every transfer-like type is unknown', async () => {
  const s = await scene();
  for (const type of ['points.transfer', 'account.transfer', 'lot.transfer', 'points.cashout']) {
    const run = s.w.block([{ from: s.users[0]!, type, body: { to: s.users[1]!.publicKey, points: 1 } }]);
    assert.equal([run.admission[0], run.result.receipts[0]!.code], [Code.UNKNOWN_TYPE, Code.UNKNOWN_TYPE]);
  }
});

test.run();
