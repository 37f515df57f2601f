// The goodness ledger's first slice: genesis validation, account.open, replay protection,
// expiry, refusals, queries, determinism, the app hash from its definition, and a restart from
// writes persisted in RocksDB.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalizeImpl from 'canonicalize';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_CONSENSUS_PARAMS, type Genesis } from '../consensus/chain/types.ts';
import { Ed25519Signer, ed25519Keygen, ed25519Verify } from '../consensus/crypto/ed25519.ts';
import { Code } from '../state/codes.ts';
import { GenesisError } from '../state/goodness/genesis.ts';
import { GoodnessLedger } from '../state/goodness/ledger.ts';
import { listWrites, QueryError, type BlockTx, type StateReader } from '../state/machine.ts';
import { buildTx, type TxFields } from '../state/tx.ts';
import { applyWrites, emptyReader, openRocks, readerOf, type RocksKvStore } from './fixtures/state-store.ts';

const canonicalize = canonicalizeImpl as unknown as (v: unknown) => string;
const sha256 = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};


// ---- a small world: two governors, a metro operator, a regulator, and citizens

const CHAIN = 'goodness-test';
const keys = () => new Ed25519Signer(ed25519Keygen().secretKey);
const governor = keys();
const alliance = keys(); // a governor that is also an issuer
const metro = keys();
const regulator = keys();
const alice = keys();
const bob = keys();

const APP = {
  governors: [governor.publicKey, alliance.publicKey],
  orgs: [
    { org: metro.publicKey, name: 'Metro', roles: ['sponsor', 'distributor'] },
    { org: regulator.publicKey, name: 'Regulator', roles: ['supervisor'] },
    { org: alliance.publicKey, name: 'Alliance', roles: ['issuer'] },
  ],
};

const genesis = (app: unknown = APP, chain = CHAIN): Genesis => ({ chain, genesisTime: 0, validators: [], consensus: DEFAULT_CONSENSUS_PARAMS, app });

async function ledger(reader: StateReader = emptyReader): Promise<GoodnessLedger> {
  const l = new GoodnessLedger();
  await l.open(reader, genesis());
  return l;
}

function tx(signer: Ed25519Signer, over: Partial<Omit<TxFields, 'from'>> = {}): BlockTx {
  const built = buildTx(signer, { chain: CHAIN, type: 'account.open', nonce: 'n1', expires: 100, body: {}, ...over });
  return { hash: built.hash, bytes: built.bytes };
}

/** The BlockTx a node that admitted the transaction itself would execute. */
function admitted(l: GoodnessLedger, t: BlockTx, height = 1): BlockTx {
  const c = l.checkTx(t.bytes, { height });
  if (!c.ok) throw new Error(`refused at admission: ${c.code} ${c.log}`);
  assert.is(c.hash, t.hash);
  return { ...t, checked: c.checked };
}

const ctx = (height: number) => ({ height, timestamp: 1_700_000_000_000 + height * 1000, proposer: 0 });

function refusalCode(l: GoodnessLedger, t: BlockTx, height = 1): number | 'ok' {
  const c = l.checkTx(t.bytes, { height });
  return c.ok ? 'ok' : c.code;
}

function expectQueryError(fn: () => unknown, code: number): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, QueryError);
    assert.is((e as QueryError).rpcCode, code);
    return;
  }
  assert.unreachable('query answered instead of refusing');
}

/** Executes and commits one block; returns the receipts' (status, code). */
function runBlock(l: GoodnessLedger, height: number, txs: BlockTx[]) {
  const r = l.executeBlock(ctx(height), txs);
  l.commit(height);
  return r;
}

// ---- genesis

test('genesis: a valid app section opens; its accounts are queryable with their roles', async () => {
  const l = new GoodnessLedger();
  const info = await l.open(emptyReader, genesis());
  assert.equal(info, { height: 0, appHash: '0x' + sha256(canonicalize(APP)).toString('hex') });
  assert.equal(l.query(`account/${metro.publicKey}`, null), {
    height: 0,
    value: { id: metro.publicKey, roles: ['distributor', 'sponsor'], status: 'active', points: 0 },
  });
  assert.equal(l.query(`account/${governor.publicKey}`, null).value, { id: governor.publicKey, roles: ['governor'], status: 'active', points: 0 });
  assert.equal((l.query(`account/${alliance.publicKey}`, null).value as { roles: string[] }).roles, ['governor', 'issuer']);
  assert.equal((l.query(`account/${regulator.publicKey}`, null).value as { roles: string[] }).roles, ['supervisor']);
});

test('genesis: every malformed or conflicting app section is refused', async () => {
  const id = (k: Ed25519Signer) => k.publicKey;
  const org = (o: Record<string, unknown>) => ({ governors: [id(governor)], orgs: [{ org: id(metro), name: 'Metro', roles: ['issuer'], ...o }] });
  const bad: [string, unknown][] = [
    ['not an object', []],
    ['null', null],
    ['missing orgs', { governors: [id(governor)] }],
    ['unknown member', { governors: [id(governor)], orgs: [], validators: [] }],
    ['no governors', { governors: [], orgs: [] }],
    ['governor not an id', { governors: [id(governor).toUpperCase()], orgs: [] }],
    ['governor twice', { governors: [id(governor), id(governor)], orgs: [] }],
    ['orgs not a list', { governors: [id(governor)], orgs: {} }],
    ['org not an id', org({ org: 'metro' })],
    ['org unknown member', org({ city: 'x' })],
    ['org missing roles', { governors: [id(governor)], orgs: [{ org: id(metro), name: 'Metro' }] }],
    ['empty name', org({ name: ' ' })],
    ['name not a string', org({ name: 7 })],
    ['no roles', org({ roles: [] })],
    ['unknown role', org({ roles: ['king'] })],
    ['user is not an org role', org({ roles: ['user'] })],
    ['governor is not an org role', org({ roles: ['governor'] })],
    ['role twice', org({ roles: ['issuer', 'issuer'] })],
    ['supervisor with another role', org({ roles: ['supervisor', 'exchange'] })],
    ['supervisor who is a governor', { governors: [id(metro)], orgs: [{ org: id(metro), name: 'M', roles: ['supervisor'] }] }],
    [
      'org twice',
      {
        governors: [id(governor)],
        orgs: [
          { org: id(metro), name: 'A', roles: ['issuer'] },
          { org: id(metro), name: 'B', roles: ['sponsor'] },
        ],
      },
    ],
  ];
  for (const [name, app] of bad) {
    try {
      await new GoodnessLedger().open(emptyReader, genesis(app));
      assert.unreachable(`accepted: ${name}`);
    } catch (e) {
      assert.instance(e, GenesisError, name);
    }
  }
});

// ---- account.open

test('account.open: admitted once, executed, visible after commit; the app hash follows its definition', async () => {
  const l = await ledger();
  const g = l.info();
  const t = tx(alice, { nonce: 'open-1', expires: 50 });
  const c = l.checkTx(t.bytes, { height: 1 });
  assert.ok(c.ok);
  if (!c.ok) return;
  assert.equal([c.hash, c.sender, c.nonce, c.expires], [t.hash, alice.publicKey, 'open-1', 50]);

  const r = l.executeBlock(ctx(1), [{ ...t, checked: c.checked }]);
  assert.equal(r.receipts, [{ txHash: t.hash, status: 'ok', code: 0, log: '', events: [{ type: 'account.open', attributes: { account: alice.publicKey } }] }]);
  const account = { id: alice.publicKey, roles: ['user'], status: 'active', points: 0, lots: [] };
  const changes = [
    [`a/${alice.publicKey}`, account],
    [`n/open-1/${alice.publicKey}`, 50],
  ];
  const expected = sha256('goodness/app/v1', Buffer.from(g.appHash.slice(2), 'hex'), sha256(canonicalize(changes)));
  assert.is(r.appHash, '0x' + expected.toString('hex'));
  const writes = new Map(listWrites(r.writes).map(([k, v]) => [Buffer.from(k).toString(), v && Buffer.from(v).toString()]));
  assert.equal(JSON.parse(writes.get(`a/${alice.publicKey}`)!), account);
  assert.equal(JSON.parse(writes.get('_meta')!), { height: 1, appHash: r.appHash });

  expectQueryError(() => l.query(`account/${alice.publicKey}`, null), -32004);
  l.commit(1);
  assert.equal(l.info(), { height: 1, appHash: r.appHash });
  const publicView = { id: alice.publicKey, roles: ['user'], status: 'active', points: 0 };
  assert.equal(l.query(`account/${alice.publicKey}`, null), { height: 1, value: publicView });
  assert.equal(l.query(`account/${alice.publicKey}`, bob.publicKey).value, publicView, 'others see no lots');
  assert.equal(l.query(`account/${alice.publicKey}`, metro.publicKey).value, publicView, 'nor do organisations');
  assert.equal(l.query(`account/${alice.publicKey}`, alice.publicKey).value, { ...publicView, lots: [] }, 'the owner sees lots');
  assert.equal(l.query(`account/${alice.publicKey}`, regulator.publicKey).value, { ...publicView, lots: [] }, 'the supervisor sees lots');
});

test('a second open is a rejected receipt (ALREADY_EXISTS), in the same block or later; organisations have accounts already', async () => {
  const l = await ledger();
  const r1 = runBlock(l, 1, [admitted(l, tx(alice, { nonce: 'a' })), admitted(l, tx(alice, { nonce: 'b' })), admitted(l, tx(metro, { nonce: 'm' }))]);
  assert.equal(
    r1.receipts.map((r) => [r.status, r.code]),
    [
      ['ok', 0],
      ['rejected', Code.ALREADY_EXISTS],
      ['rejected', Code.ALREADY_EXISTS],
    ],
  );
  const r2 = runBlock(l, 2, [admitted(l, tx(alice, { nonce: 'c' }), 2)]);
  assert.equal([r2.receipts[0]!.status, r2.receipts[0]!.code], ['rejected', Code.ALREADY_EXISTS]);
  // The organisation's account is unchanged: roles from genesis, no user role.
  assert.equal((l.query(`account/${metro.publicKey}`, null).value as { roles: string[] }).roles, ['distributor', 'sponsor']);
});

test('a refused transaction changes nothing but its receipt: not even its nonce', async () => {
  const l = await ledger();
  const before = l.info().appHash;
  const refused = tx(alice, { nonce: 'x', body: { extra: 1 } });
  assert.is(refusalCode(l, refused), Code.BAD_BODY);
  const r = l.executeBlock(ctx(1), [refused]);
  assert.equal([r.receipts[0]!.status, r.receipts[0]!.code], ['rejected', Code.BAD_BODY]);
  // Only the meta record is written, and the app hash is that of an empty change list.
  assert.equal(listWrites(r.writes).map(([k]) => Buffer.from(k).toString()), ['_meta']);
  assert.is(r.appHash, '0x' + sha256('goodness/app/v1', Buffer.from(before.slice(2), 'hex'), sha256('[]')).toString('hex'));
  l.commit(1);
  // The same nonce is still free.
  const ok = runBlock(l, 2, [admitted(l, tx(alice, { nonce: 'x' }), 2)]);
  assert.is(ok.receipts[0]!.status, 'ok');
});

test('replay: (from, nonce) is accepted once while unexpired; the record persists and is pruned after expiry', async () => {
  const l = await ledger();
  runBlock(l, 1, [admitted(l, tx(alice, { nonce: 'once', expires: 3 }))]);
  // Another transaction (another hash) with the same (from, nonce): refused at admission and in a block.
  const replay = tx(alice, { nonce: 'once', expires: 4 });
  assert.is(refusalCode(l, replay, 2), Code.NONCE_USED);
  const r2 = runBlock(l, 2, [replay]);
  assert.equal([r2.receipts[0]!.status, r2.receipts[0]!.code], ['rejected', Code.NONCE_USED]);
  // Block 3 is the last that could include a transaction expiring at 3; block 4 prunes its record.
  const r3 = runBlock(l, 3, []);
  assert.ok(!listWrites(r3.writes).some(([k]) => Buffer.from(k).toString().startsWith('n/')));
  const r4 = runBlock(l, 4, []);
  const pruned = listWrites(r4.writes).filter(([k]) => Buffer.from(k).toString() === `n/once/${alice.publicKey}`);
  assert.equal(pruned.map(([, v]) => v), [null]);
  // Now the nonce is free again: admission passes and execution refuses for the account's own reason.
  const again = tx(alice, { nonce: 'once', expires: 10 });
  assert.is(refusalCode(l, again, 5), 'ok');
  assert.is(runBlock(l, 5, [again]).receipts[0]!.code, Code.ALREADY_EXISTS);
});

test('expiry: refused at admission when past or more than 1000 ahead; a stale transaction in a block is rejected', async () => {
  const l = await ledger();
  runBlock(l, 1, []);
  runBlock(l, 2, []);
  // The next block is 3.
  assert.is(refusalCode(l, tx(alice, { expires: 2 }), 3), Code.EXPIRED);
  assert.is(refusalCode(l, tx(alice, { expires: 3 }), 3), 'ok');
  assert.is(refusalCode(l, tx(alice, { expires: 1003 }), 3), 'ok');
  assert.is(refusalCode(l, tx(alice, { expires: 1004 }), 3), Code.EXPIRES_TOO_FAR);
  const stale = admitted(l, tx(alice, { expires: 3 }), 3);
  runBlock(l, 3, []);
  const r = runBlock(l, 4, [stale, tx(bob, { expires: 1005 })]);
  assert.equal(
    r.receipts.map((x) => [x.status, x.code]),
    [
      ['rejected', Code.EXPIRED],
      ['rejected', Code.EXPIRES_TOO_FAR],
    ],
  );
});

test('wrong chain, bad signature, unknown types (no transfer of points exists), bad body', async () => {
  const l = await ledger();
  const other = buildTx(alice, { chain: 'other-chain', type: 'account.open', nonce: 'n', expires: 10, body: {} });
  const otherTx = { hash: other.hash, bytes: other.bytes };
  const good = tx(bob);
  const text = Buffer.from(good.bytes).toString();
  const forgedText = text.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === '0' ? '1' : '0'}`);
  const forged = { hash: '0x' + sha256(forgedText).toString('hex'), bytes: new Uint8Array(Buffer.from(forgedText)) };
  const shortBody = tx(metro, { type: 'deed.submit', body: { deed: 'd1' } });
  const unknown = tx(alice, { type: 'points.transfer', body: { to: bob.publicKey } });
  const badBody = tx(alice, { body: { name: 'Alice' } });

  assert.is(refusalCode(l, otherTx), Code.WRONG_CHAIN);
  // Admission leaves the signature to the engine's verifier: it must hand over exactly the
  // signed part, so that the forged signature fails there; a block-only copy fails in execution.
  const forgedCheck = l.checkTx(forged.bytes, { height: 1 });
  assert.ok(forgedCheck.ok && forgedCheck.signature, 'checkTx hands the signature to the engine');
  if (forgedCheck.ok && forgedCheck.signature) {
    const { publicKey, message, signature } = forgedCheck.signature;
    assert.not.ok(ed25519Verify(publicKey, message, signature), 'the forged signature does not verify');
  }
  const goodCheck = l.checkTx(good.bytes, { height: 1 });
  assert.ok(goodCheck.ok && goodCheck.signature && ed25519Verify(goodCheck.signature.publicKey, goodCheck.signature.message, goodCheck.signature.signature), 'a good signature verifies');
  const forgedInBlock = runBlock(await ledger(), 1, [forged]);
  assert.is(forgedInBlock.receipts[0]!.code, Code.BAD_SIGNATURE);
  const shortLog = l.checkTx(shortBody.bytes, { height: 1 });
  assert.ok(!shortLog.ok && shortLog.code === Code.BAD_BODY && /body.user is missing/.test(shortLog.log));
  const unknownLog = l.checkTx(unknown.bytes, { height: 1 });
  assert.ok(!unknownLog.ok && unknownLog.code === Code.UNKNOWN_TYPE && /unknown transaction type/.test(unknownLog.log));
  assert.is(refusalCode(l, badBody), Code.BAD_BODY);

  // The same transactions reaching the node only in a block are verified there and rejected alike.
  const r = l.executeBlock(ctx(1), [otherTx, forged, shortBody, unknown, badBody]);
  assert.equal(
    r.receipts.map((x) => [x.status, x.code]),
    [
      ['rejected', Code.WRONG_CHAIN],
      ['rejected', Code.BAD_SIGNATURE],
      ['rejected', Code.BAD_BODY],
      ['rejected', Code.UNKNOWN_TYPE],
      ['rejected', Code.BAD_BODY],
    ],
  );
});

test('execution trusts this node\'s admission: with `checked`, the bytes are not decoded or verified again', async () => {
  const l = await ledger();
  const t = admitted(l, tx(alice));
  // Bytes that would fail every check, paired with what admission learned: the receipt is ok.
  const r = l.executeBlock(ctx(1), [{ ...t, bytes: new Uint8Array([1, 2, 3]) }]);
  assert.is(r.receipts[0]!.status, 'ok');
});

test('queries: not found, bad paths, permissions', async () => {
  const l = await ledger();
  runBlock(l, 1, [admitted(l, tx(alice))]);
  expectQueryError(() => l.query(`account/${bob.publicKey}`, null), -32004);
  expectQueryError(() => l.query('account/alice', null), -32602);
  expectQueryError(() => l.query(`account/${alice.publicKey.toUpperCase()}`, null), -32602);
  expectQueryError(() => l.query('nothing/here', null), -32602);
  expectQueryError(() => l.query('', null), -32602);
  expectQueryError(() => l.query('scheme/s1', null), -32004);
  expectQueryError(() => l.query('audit/scheme/s1', null), -32004);
  assert.equal(l.query(`account/${alice.publicKey}/deeds`, alice.publicKey), { height: 1, value: [] });
  assert.equal(l.query(`account/${alice.publicKey}/deeds`, regulator.publicKey).value, []);
  expectQueryError(() => l.query(`account/${alice.publicKey}/deeds`, bob.publicKey), -32007);
  expectQueryError(() => l.query(`account/${alice.publicKey}/deeds`, null), -32007);
  assert.equal(l.query('audit/log?from=0', regulator.publicKey).value, []);
  expectQueryError(() => l.query('audit/log?from=0', governor.publicKey), -32007);
});

test('determinism: two ledgers, the same blocks (admitted on one, block-only on the other), the same receipts and app hashes', async () => {
  const a = await ledger();
  const b = await ledger();
  const users = Array.from({ length: 12 }, keys);
  for (let h = 1; h <= 4; h++) {
    const txs = users.map((u, i) => tx(u, { nonce: `h${h}-${i}`, expires: h + 2 }));
    const ra = a.executeBlock(ctx(h), txs.map((t) => admitted(a, t, h)));
    const rb = b.executeBlock(ctx(h), txs);
    assert.equal(ra.receipts, rb.receipts, `height ${h}`);
    assert.is(ra.appHash, rb.appHash, `height ${h}`);
    a.commit(h);
    b.commit(h);
  }
  assert.equal(a.info(), b.info());
});

test('pipelining: block h+1 executes before h commits; a re-executed block replaces the pending one', async () => {
  const l = await ledger();
  l.executeBlock(ctx(1), [admitted(l, tx(alice))]);
  // Block 2 sees block 1's account although it is not committed: the second open is refused.
  const r2 = l.executeBlock(ctx(2), [tx(alice, { nonce: 'n2' })]);
  assert.is(r2.receipts[0]!.code, Code.ALREADY_EXISTS);
  // A different block 2 replaces it.
  const r2b = l.executeBlock(ctx(2), [tx(bob)]);
  assert.is(r2b.receipts[0]!.status, 'ok');
  assert.throws(() => l.executeBlock(ctx(4), []), /cannot execute block 4/);
  l.commit(1);
  l.commit(2);
  assert.equal(l.info(), { height: 2, appHash: r2b.appHash });
  assert.is(l.query(`account/${bob.publicKey}`, null).height, 2);
});

test('restart: writes persisted in RocksDB give back the same state, replay records and app hash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-ledger-'));
  let db: RocksKvStore | null = null;
  try {
    db = await openRocks(dir);
    const l = new GoodnessLedger();
    await l.open(readerOf(db), genesis());
    const blocks = [[tx(alice, { nonce: 'p', expires: 3 })], [tx(bob, { nonce: 'q', expires: 50 })], []];
    for (let h = 1; h <= blocks.length; h++) {
      const r = l.executeBlock(ctx(h), blocks[h - 1]!);
      await applyWrites(db, listWrites(r.writes));
      l.commit(h);
    }
    await db.close();
    db = await openRocks(dir);
    const reopened = new GoodnessLedger();
    assert.equal(await reopened.open(readerOf(db), genesis()), l.info());
    for (const who of [alice, bob, metro, governor]) {
      assert.equal(reopened.query(`account/${who.publicKey}`, who.publicKey), l.query(`account/${who.publicKey}`, who.publicKey));
    }
    // The replay record of (bob, q) survived the restart.
    assert.is(refusalCode(reopened, tx(bob, { nonce: 'q', expires: 60 }), 4), Code.NONCE_USED);
    // Both continue alike: block 4 prunes (alice, p), which expired at 3, on both.
    const next = [tx(keys(), { nonce: 'z' })];
    const ra = reopened.executeBlock(ctx(4), next);
    const rb = l.executeBlock(ctx(4), next);
    assert.is(ra.appHash, rb.appHash);
    assert.ok(listWrites(ra.writes).some(([k, v]) => Buffer.from(k).toString() === `n/p/${alice.publicKey}` && v === null));
  } finally {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
