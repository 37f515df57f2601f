// Query visibility (goodness.md "Queries"): every path of the table, asked by every role and
// anonymously. Who may see a path gets the whole object; anyone else gets -32007, never a
// partial answer; unauthenticated callers see public figures only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { QueryError } from '../state/machine.ts';
import { DAY_MS } from '../state/goodness/records.ts';
import { castApp, evidence, newCast, newSigner, World } from '../state/goodness/testing.ts';

const c = newCast(2);
const alice = newSigner(); // the user whose records are asked for
const bob = newSigner(); // another user
const otherIssuer = newSigner();
const app = castApp(c);
app.orgs.push({ org: otherIssuer.publicKey, name: 'Traffic Authority', roles: ['issuer'] });

const CALLERS: Record<string, Ed25519Signer | null> = {
  anonymous: null,
  owner: alice,
  otherUser: bob,
  governor: c.governors[0]!,
  issuer: c.bureau,
  otherIssuer,
  distributor: c.metro,
  otherDistributor: c.bikes,
  sponsor: c.sponsor,
  exchange: c.exchange,
  clearing: c.bank,
  supervisor: c.regulator,
};

function ask(w: World, path: string, caller: Ed25519Signer | null): { ok: true; value: unknown } | { ok: false; code: number } {
  try {
    return { ok: true, value: w.ledger.query(path, caller ? caller.publicKey : null).value };
  } catch (e) {
    assert.instance(e, QueryError, `${path}: ${String(e)}`);
    return { ok: false, code: (e as QueryError).rpcCode };
  }
}

/** Asks `path` as every caller: those in `allowed` get `value(caller)`, the others -32007. */
function expectVisibility(w: World, path: string, allowed: string[] | 'everyone', value: (who: string) => unknown): void {
  for (const [who, signer] of Object.entries(CALLERS)) {
    const answer = ask(w, path, signer);
    if (allowed === 'everyone' || allowed.includes(who)) {
      assert.ok(answer.ok, `${who} should see ${path}`);
      if (answer.ok) assert.equal(answer.value, value(who), `${who} sees ${path}`);
    } else {
      assert.equal(answer, { ok: false, code: -32007 }, `${who} must not see ${path}`);
    }
  }
}

async function world(): Promise<World> {
  const w = await World.open(app);
  const ok = (specs: Parameters<World['block']>[0]) => {
    const run = w.block(specs);
    for (const r of run.result.receipts) assert.is(r.status, 'ok', r.log);
  };
  ok([
    { from: c.bureau, type: 'scheme.define', body: { scheme: 'green', name: 'Green', unit: 'km', pointsPerUnit: 10, dailyCap: 500, pointValue: 1, lotValidityDays: 30, claimWindowDays: 3, autoIssue: true } },
    { from: otherIssuer, type: 'scheme.define', body: { scheme: 'bus', name: 'Bus', unit: 'trip', pointsPerUnit: 5, dailyCap: 100, pointValue: 1, lotValidityDays: 30, claimWindowDays: 3, autoIssue: true } },
    { from: alice, type: 'account.open', body: {} },
    { from: bob, type: 'account.open', body: {} },
  ]);
  ok([
    { from: c.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: c.metro.publicKey } },
    { from: otherIssuer, type: 'scheme.assign', body: { scheme: 'bus', distributor: c.bikes.publicKey } },
    { from: c.sponsor, type: 'pool.commit', body: { pool: 'city', scheme: 'green', amount: 10_000 } },
    { from: c.sponsor, type: 'pool.commit', body: { pool: 'buses', scheme: 'bus', amount: 10_000 } },
    { from: c.regulator, type: 'scheme.approve', body: { scheme: 'green' } },
    { from: c.regulator, type: 'scheme.approve', body: { scheme: 'bus' } },
  ]);
  ok([
    { from: c.bank, type: 'pool.confirm', body: { pool: 'city', amount: 10_000, paymentRef: 'w' } },
    { from: c.bank, type: 'pool.confirm', body: { pool: 'buses', amount: 10_000, paymentRef: 'w' } },
    { from: alice, type: 'consent.grant', body: { consent: 'ca', distributor: c.metro.publicKey, scheme: 'green', expiresAt: w.time + 10 * DAY_MS } },
    { from: alice, type: 'consent.grant', body: { consent: 'cb', distributor: c.bikes.publicKey, scheme: 'bus', expiresAt: w.time + 10 * DAY_MS } },
    { from: c.exchange, type: 'offer.publish', body: { offer: 'tea', pool: 'city', pricePoints: 10, unitValue: 20, stock: 9 } },
  ]);
  ok([
    { from: c.metro, type: 'deed.submit', body: { deed: 'd1', user: alice.publicKey, scheme: 'green', quantity: 4, occurredAt: w.time, evidenceHash: evidence('d1'), consent: 'ca' } },
    { from: c.bikes, type: 'deed.submit', body: { deed: 'd2', user: alice.publicKey, scheme: 'bus', quantity: 2, occurredAt: w.time, evidenceHash: evidence('d2'), consent: 'cb' } },
    { from: c.sponsor, type: 'offer.approve', body: { offer: 'tea' } },
  ]);
  ok([{ from: alice, type: 'offer.redeem', body: { redemption: 'r1', offer: 'tea', quantity: 2 } }]);
  ok([{ from: c.exchange, type: 'redemption.fulfil', body: { redemption: 'r1' } }]);
  ok([
    { from: c.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['city'] } },
    { from: c.regulator, type: 'supervise.freeze', body: { target: bob.publicKey, reason: 'check' } },
  ]);
  return w;
}

test('account/<id>: anyone sees roles, status and live points; only the owner and the supervisor see lots', async () => {
  const w = await world();
  const full = w.ledger.query(`account/${alice.publicKey}`, alice.publicKey).value as { lots: unknown[]; points: number };
  assert.is(full.points, 30);
  assert.is(full.lots.length, 2);
  expectVisibility(w, `account/${alice.publicKey}`, 'everyone', (who) => {
    const pub = { id: alice.publicKey, roles: ['user'], status: 'active', points: 30 };
    return who === 'owner' || who === 'supervisor' ? { ...pub, lots: full.lots } : pub;
  });
  // An organisation's account and a frozen one are public too.
  assert.equal(ask(w, `account/${bob.publicKey}`, null), { ok: true, value: { id: bob.publicKey, roles: ['user'], status: 'frozen', points: 0 } });
  assert.equal(ask(w, `account/${c.metro.publicKey}`, null), { ok: true, value: { id: c.metro.publicKey, roles: ['distributor'], status: 'active', points: 0 } });
});

test('account/<id>/deeds: the owner and supervisor see all; distributors and issuers their own; nobody else', async () => {
  const w = await world();
  const d1 = w.ledger.query('deed/d1', alice.publicKey).value;
  const d2 = w.ledger.query('deed/d2', alice.publicKey).value;
  expectVisibility(w, `account/${alice.publicKey}/deeds`, ['owner', 'supervisor', 'issuer', 'otherIssuer', 'distributor', 'otherDistributor'], (who) => {
    if (who === 'owner' || who === 'supervisor') return [d1, d2];
    if (who === 'issuer' || who === 'distributor') return [d1];
    return [d2]; // the traffic authority and the bike share: the bus deed
  });
});

test('scheme/, pool/, offer/ and audit/scheme/: anyone, anonymously too', async () => {
  const w = await world();
  for (const path of ['scheme/green', 'pool/city', 'offer/tea', 'audit/scheme/green']) {
    const value = w.ledger.query(path, null).value;
    expectVisibility(w, path, 'everyone', () => value);
  }
  assert.equal(w.ledger.query('audit/scheme/green', null).value, {
    scheme: 'green',
    issued: 40,
    live: 20,
    redeemed: 20,
    expired: 0,
    clawedBack: 0,
    budget: 10_000,
    funded: 10_000,
    pointValue: 1,
    pending: 0,
    shortfall: 0,
  });
});

test('deed/, consent/, redemption/: the parties named in it and the supervisor', async () => {
  const w = await world();
  const get = (path: string) => w.ledger.query(path, c.regulator.publicKey).value;
  expectVisibility(w, 'deed/d1', ['owner', 'distributor', 'issuer', 'supervisor'], () => get('deed/d1'));
  expectVisibility(w, 'deed/d2', ['owner', 'otherDistributor', 'otherIssuer', 'supervisor'], () => get('deed/d2'));
  expectVisibility(w, 'consent/ca', ['owner', 'distributor', 'supervisor'], () => get('consent/ca'));
  expectVisibility(w, 'redemption/r1', ['owner', 'exchange', 'sponsor', 'supervisor'], () => get('redemption/r1'));
});

test('batch/: its counterparties, its clearing provider and the supervisor', async () => {
  const w = await world();
  const value = w.ledger.query('batch/b1', c.bank.publicKey).value as { lines: unknown[]; status: string };
  assert.is(value.status, 'closed');
  expectVisibility(w, 'batch/b1', ['sponsor', 'exchange', 'clearing', 'supervisor'], () => value);
});

test('audit/log?from=<height>: the supervisor only; governance and supervision actions from that height', async () => {
  const w = await world();
  const log = w.ledger.query('audit/log?from=0', c.regulator.publicKey).value as { type: string; height: number }[];
  assert.equal(log.map((e) => e.type), ['scheme.approve', 'scheme.approve', 'supervise.freeze']);
  expectVisibility(w, 'audit/log?from=0', ['supervisor'], () => log);
  const last = log.at(-1)!.height;
  assert.equal((w.ledger.query(`audit/log?from=${last}`, c.regulator.publicKey).value as unknown[]).length, 1);
  assert.equal(w.ledger.query(`audit/log?from=${last + 1}`, c.regulator.publicKey).value, []);
  assert.equal((w.ledger.query('audit/log', c.regulator.publicKey).value as unknown[]).length, 3);
});

test('unknown objects are -32004 and malformed paths -32602, for every caller', async () => {
  const w = await world();
  for (const signer of Object.values(CALLERS)) {
    for (const path of ['deed/nope', 'scheme/nope', 'batch/nope', 'redemption/nope', 'consent/nope', 'audit/scheme/nope', `account/${newSigner().publicKey}`]) {
      assert.equal(ask(w, path, signer), { ok: false, code: -32004 }, path);
    }
    for (const path of ['', 'deed', 'deed/a/b', 'proposal/x', 'account/xyz', 'audit/log?from=-1', 'audit/log?from=abc', 'deed/has space']) {
      assert.equal(ask(w, path, signer), { ok: false, code: -32602 }, JSON.stringify(path));
    }
  }
});

test.run();
