// The key-value machine: admission, execution, the app hash (recomputed here from its
// definition with node:crypto and canonicalize), commit, queries, pipelining, and a restart from
// its writes persisted in RocksDB.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalizeImpl from 'canonicalize';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_CONSENSUS_PARAMS, type Genesis } from '../consensus/chain/types.ts';
import { Code } from '../state/codes.ts';
import { KV_MAX_KEY_BYTES, KV_MAX_TX_BYTES, KvMachine } from '../state/kv-machine.ts';
import { QueryError, type BlockTx } from '../state/machine.ts';
import { applyWrites, emptyReader, openRocks, readerOf, type RocksKvStore } from './fixtures/state-store.ts';

const canonicalize = canonicalizeImpl as unknown as (v: unknown) => string;
const sha256 = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};


// ---- helpers

const genesis = (app: unknown = {}): Genesis => ({ chain: 'kv-test', genesisTime: 0, validators: [], consensus: DEFAULT_CONSENSUS_PARAMS, app });

function kvTx(text: string | Uint8Array, machine?: KvMachine): BlockTx {
  const bytes = typeof text === 'string' ? new Uint8Array(Buffer.from(text, 'utf8')) : text;
  const hash = '0x' + sha256(bytes).toString('hex');
  if (!machine) return { hash, bytes };
  const check = machine.checkTx(bytes, { height: 1 });
  if (!check.ok) throw new Error(check.log);
  return { hash, bytes, checked: check.checked };
}

/** appHash_h from its definition, with the sorted [key, value] list of the block's puts. */
function expectedAppHash(previous: string, puts: [string, string][]): string {
  const sorted = [...puts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const digest = sha256(canonicalize(sorted));
  return '0x' + sha256('goodness/app/v1', Buffer.from(previous.slice(2), 'hex'), digest).toString('hex');
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

const ctx = (height: number) => ({ height, timestamp: 1_700_000_000_000 + height, proposer: 0 });

// ---- tests

test('genesis app hash: SHA-256 of JCS of the app section, or of {} without one', async () => {
  const m = new KvMachine();
  const info = await m.open(emptyReader, genesis({ b: 1, a: [true] }));
  assert.equal(info, { height: 0, appHash: '0x' + sha256('{"a":[true],"b":1}').toString('hex') });
  const none = await new KvMachine().open(emptyReader, genesis(null));
  assert.is(none.appHash, '0x' + sha256('{}').toString('hex'));
});

test('checkTx: key=value, no sender; malformed bytes are refused', async () => {
  const m = new KvMachine();
  await m.open(emptyReader, genesis());
  const ok = m.checkTx(Buffer.from('name=ünïcode'), { height: 1 });
  assert.ok(ok.ok);
  if (ok.ok) {
    assert.is(ok.hash, '0x' + sha256('name=ünïcode').toString('hex'));
    assert.is(ok.sender, undefined);
    assert.is(ok.expires, undefined);
    assert.equal(ok.checked, { key: 'name', value: 'ünïcode' });
  }
  assert.ok(m.checkTx(Buffer.from('k='), { height: 1 }).ok, 'an empty value is a value');
  const refused = [
    Buffer.from('novalue'),
    Buffer.from('a=b=c'),
    Buffer.from('=value'),
    Buffer.from(''),
    Buffer.from('k'.repeat(KV_MAX_KEY_BYTES + 1) + '=v'),
    Buffer.from('k=' + 'v'.repeat(KV_MAX_TX_BYTES)),
    Buffer.from([0x6b, 0x3d, 0xff, 0xfe]),
  ];
  for (const bytes of refused) {
    const r = m.checkTx(bytes, { height: 1 });
    assert.equal(r.ok ? 'ok' : r.code, Code.MALFORMED, bytes.toString('utf8').slice(0, 20));
  }
  assert.ok(m.checkTx(Buffer.from('k'.repeat(KV_MAX_KEY_BYTES) + '=v'), { height: 1 }).ok);
});

test('executeBlock: receipts, events, writes and the app hash; commit makes it queryable', async () => {
  const m = new KvMachine();
  const g = await m.open(emptyReader, genesis());
  const txs = [kvTx('b=2', m), kvTx('a=1', m), kvTx('not a put'), kvTx('b=3')];
  const result = m.executeBlock(ctx(1), txs);
  assert.equal(
    result.receipts.map((r) => [r.txHash, r.status, r.code, r.events]),
    [
      [txs[0]!.hash, 'ok', 0, [{ type: 'kv.put', attributes: { key: 'b' } }]],
      [txs[1]!.hash, 'ok', 0, [{ type: 'kv.put', attributes: { key: 'a' } }]],
      [txs[2]!.hash, 'rejected', Code.MALFORMED, []],
      [txs[3]!.hash, 'ok', 0, [{ type: 'kv.put', attributes: { key: 'b' } }]],
    ],
  );
  assert.ok(result.receipts[2]!.log.length > 0);
  // The last put of a key in the block wins.
  assert.is(result.appHash, expectedAppHash(g.appHash, [['a', '1'], ['b', '3']]));
  assert.equal(result.validatorUpdates, []);
  const writes = new Map(result.writes.map(([k, v]) => [Buffer.from(k).toString(), v && Buffer.from(v).toString()]));
  assert.is(writes.get('k/a'), '1');
  assert.is(writes.get('k/b'), '3');
  assert.equal(JSON.parse(writes.get('m')!), { height: 1, appHash: result.appHash });
  assert.is(writes.size, 3);

  // Not visible before commit: queries read committed state only.
  expectQueryError(() => m.query('kv/a', null), -32004);
  assert.equal(m.info(), g);
  m.commit(1);
  assert.equal(m.info(), { height: 1, appHash: result.appHash });
  assert.equal(m.query('kv/a', null), { height: 1, value: '1' });
  assert.equal(m.query('kv/b', null), { height: 1, value: '3' });
  expectQueryError(() => m.query('kv/missing', null), -32004);
  expectQueryError(() => m.query('account/x', null), -32602);
});

test('an empty block still chains the app hash', async () => {
  const m = new KvMachine();
  const g = await m.open(emptyReader, genesis());
  const r = m.executeBlock(ctx(1), []);
  assert.is(r.appHash, expectedAppHash(g.appHash, []));
  assert.is.not(r.appHash, g.appHash);
});

test('heights: a block executes only on the tip; re-execution replaces; pipelined blocks commit in order', async () => {
  const m = new KvMachine();
  await m.open(emptyReader, genesis());
  assert.throws(() => m.executeBlock(ctx(2), []), /cannot execute block 2/);
  const first = m.executeBlock(ctx(1), [kvTx('x=1')]);
  // A different block 1 (another proposal after a view change) replaces the first.
  const replaced = m.executeBlock(ctx(1), [kvTx('x=2')]);
  assert.is.not(replaced.appHash, first.appHash);
  // Block 2 executes on top of block 1 before block 1 is committed.
  const second = m.executeBlock(ctx(2), [kvTx('y=1')]);
  assert.is(second.appHash, expectedAppHash(replaced.appHash, [['y', '1']]));
  assert.throws(() => m.commit(2), /oldest executed block is 1/);
  m.commit(1);
  assert.equal(m.query('kv/x', null).value, '2');
  expectQueryError(() => m.query('kv/y', null), -32004);
  m.commit(2);
  assert.equal(m.info(), { height: 2, appHash: second.appHash });
  assert.equal(m.query('kv/y', null), { height: 2, value: '1' });
});

test('determinism: two machines, the same blocks, the same app hashes; order of distinct keys does not matter', async () => {
  const a = new KvMachine();
  const b = new KvMachine();
  await a.open(emptyReader, genesis({ n: 1 }));
  await b.open(emptyReader, genesis({ n: 1 }));
  for (let h = 1; h <= 5; h++) {
    const texts = Array.from({ length: 50 }, (_, i) => `key-${(i * 7 + h) % 30}=v${h}.${i}`);
    // One machine admitted the transactions itself; the other sees them only in blocks.
    const ra = a.executeBlock(ctx(h), texts.map((t) => kvTx(t, a)));
    const rb = b.executeBlock(ctx(h), texts.map((t) => kvTx(t)));
    assert.is(ra.appHash, rb.appHash, `height ${h}`);
    a.commit(h);
    b.commit(h);
  }
  const c = new KvMachine();
  const d = new KvMachine();
  await c.open(emptyReader, genesis());
  await d.open(emptyReader, genesis());
  const one = c.executeBlock(ctx(1), [kvTx('p=1'), kvTx('q=2'), kvTx('r=3')]);
  const other = d.executeBlock(ctx(1), [kvTx('r=3'), kvTx('p=1'), kvTx('q=2')]);
  assert.is(one.appHash, other.appHash);
});

test('restart: writes persisted in RocksDB give back the same state and app hash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-machine-'));
  let db: RocksKvStore | null = null;
  try {
    db = await openRocks(dir);
    const m = new KvMachine();
    await m.open(readerOf(db), genesis());
    let last = '';
    for (let h = 1; h <= 3; h++) {
      const r = m.executeBlock(ctx(h), [kvTx(`k${h}=v${h}`), kvTx(`shared=${h}`), kvTx(`ключ=${h}`)]);
      await applyWrites(db, r.writes);
      m.commit(h);
      last = r.appHash;
    }
    await db.close();
    db = await openRocks(dir);
    const reopened = new KvMachine();
    assert.equal(await reopened.open(readerOf(db), genesis()), { height: 3, appHash: last });
    for (const [key, value] of [['k1', 'v1'], ['k3', 'v3'], ['shared', '3'], ['ключ', '3']]) {
      assert.equal(reopened.query('kv/' + key, null), { height: 3, value });
    }
    // And it continues exactly where the first instance would have.
    const next = reopened.executeBlock(ctx(4), [kvTx('k4=v4')]);
    assert.is(next.appHash, m.executeBlock(ctx(4), [kvTx('k4=v4')]).appHash);
  } finally {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
