// The transaction pool: every limit (count, bytes, per sender), deduplication by hash and by
// (sender, nonce), expiry, reaping order and removal, unverified and held entries, the added
// hook and the stats.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADD_RESULT_RPC_CODE, TxPool, type PoolEntryInput } from '../consensus/pool.ts';

let counter = 0;
function entry(over: Partial<PoolEntryInput> & { size?: number } = {}): PoolEntryInput {
  const n = counter++;
  const { size = 10, ...rest } = over;
  return { hash: `0x${n.toString(16).padStart(64, '0')}`, bytes: new Uint8Array(size), checked: { n }, ...rest };
}

const limits = { maxTxs: 100, maxBytes: 10_000, maxPerSender: 5 };

test('add stores the entry with its size and arrival time; has, size, bytes', () => {
  let now = 1000;
  const pool = new TxPool(limits, () => now);
  const e = entry({ size: 33, sender: 'alice', nonce: '1', expires: 7 });
  assert.is(pool.add(e), 'ok');
  now = 2000;
  assert.is(pool.add(entry({ size: 7 })), 'ok');
  assert.ok(pool.has(e.hash));
  assert.not.ok(pool.has('0xnope'));
  assert.ok(pool.hasSenderNonce('alice', '1'));
  assert.is(pool.size, 2);
  assert.is(pool.bytes, 40);
  const [first] = pool.reap(1, 1000);
  assert.equal({ ...first, bytes: undefined }, { ...e, bytes: undefined, size: 33, addedAt: 1000 });
  assert.is(first!.checked, e.checked, 'checked is handed back as is');
  assert.is(pool.oldestAddedAt(), 1000);
});

test('duplicates: the same hash, or the same (sender, nonce) under another hash', () => {
  const pool = new TxPool(limits);
  const e = entry({ sender: 'alice', nonce: 'n' });
  assert.is(pool.add(e), 'ok');
  assert.is(pool.add({ ...e }), 'duplicate');
  assert.is(pool.add(entry({ sender: 'alice', nonce: 'n' })), 'duplicate');
  assert.is(pool.add(entry({ sender: 'bob', nonce: 'n' })), 'ok', 'nonces are per sender');
  assert.is(pool.add(entry({ sender: 'alice', nonce: 'm' })), 'ok');
  // Without a sender (the kv machine) only the hash deduplicates.
  const kv = entry();
  assert.is(pool.add(kv), 'ok');
  assert.is(pool.add({ ...kv }), 'duplicate');
  assert.is(pool.add(entry()), 'ok');
  assert.is(pool.size, 5);
  assert.is(pool.stats().refusedDuplicate, 3);
  assert.is(ADD_RESULT_RPC_CODE.duplicate, -32003);
});

test('full by count and by bytes: backpressure (-32002), and room again after removal', () => {
  const byCount = new TxPool({ maxTxs: 3, maxBytes: 10_000, maxPerSender: 10 });
  const added = [entry(), entry(), entry()];
  for (const e of added) assert.is(byCount.add(e), 'ok');
  assert.ok(byCount.isFull());
  assert.is(byCount.add(entry()), 'full');
  byCount.removeCommitted([added[0]!.hash]);
  assert.not.ok(byCount.isFull());
  assert.is(byCount.add(entry()), 'ok');

  const byBytes = new TxPool({ maxTxs: 100, maxBytes: 100, maxPerSender: 10 });
  assert.is(byBytes.add(entry({ size: 60 })), 'ok');
  assert.ok(byBytes.isFull(41));
  assert.not.ok(byBytes.isFull(40));
  assert.is(byBytes.add(entry({ size: 41 })), 'full');
  assert.is(byBytes.add(entry({ size: 40 })), 'ok');
  assert.is(byBytes.bytes, 100);
  assert.is(byBytes.add(entry({ size: 1 })), 'full');
  assert.is(byBytes.stats().refusedFull, 2);
  assert.is(ADD_RESULT_RPC_CODE.full, -32002);
});

test('per-sender cap: one sender cannot fill the pool; others still get in', () => {
  const pool = new TxPool({ maxTxs: 100, maxBytes: 10_000, maxPerSender: 3 });
  const mine = [0, 1, 2].map((i) => entry({ sender: 'busy', nonce: `${i}` }));
  for (const e of mine) assert.is(pool.add(e), 'ok');
  assert.is(pool.add(entry({ sender: 'busy', nonce: '3' })), 'sender-cap');
  assert.is(pool.add(entry({ sender: 'quiet', nonce: '0' })), 'ok');
  for (let i = 0; i < 10; i++) assert.is(pool.add(entry()), 'ok', 'transactions without a sender are not capped');
  pool.removeCommitted([mine[1]!.hash]);
  assert.is(pool.add(entry({ sender: 'busy', nonce: '3' })), 'ok');
  assert.is(pool.stats().refusedSenderCap, 1);
  assert.is(pool.stats().senders, 2);
  assert.is(ADD_RESULT_RPC_CODE['sender-cap'], -32002);
});

test('reap: arrival order, at most maxTxs and maxBytes, nothing removed', () => {
  const pool = new TxPool(limits);
  const es = Array.from({ length: 10 }, (_, i) => entry({ size: 10 + i, sender: `s${i % 3}`, nonce: `${i}` }));
  for (const e of es) pool.add(e);
  assert.equal(pool.reap(4, 10_000).map((e) => e.hash), es.slice(0, 4).map((e) => e.hash));
  // 10 + 11 + 12 = 33 fits in 40; the fourth (13) does not, and reaping stops there (no overtaking).
  assert.equal(pool.reap(100, 40).map((e) => e.hash), es.slice(0, 3).map((e) => e.hash));
  assert.equal(pool.reap(0, 10_000), []);
  assert.is(pool.size, 10);
  assert.equal(pool.reap(100, 10_000).map((e) => e.hash), es.map((e) => e.hash));
});

test('reap skips a transaction too large for any block, and those expiring before the height', () => {
  const pool = new TxPool(limits);
  const huge = entry({ size: 500 });
  const stale = entry({ expires: 4 });
  const edge = entry({ expires: 5 });
  const forever = entry();
  for (const e of [huge, stale, edge, forever]) pool.add(e);
  assert.equal(pool.reap(10, 100, 5).map((e) => e.hash), [edge.hash, forever.hash]);
  assert.equal(pool.reap(10, 1000).map((e) => e.hash), [huge.hash, stale.hash, edge.hash, forever.hash]);
});

test('removeCommitted frees the hash, the (sender, nonce), the sender slot and the bytes; with nextHeight it drops the expired', () => {
  const pool = new TxPool(limits);
  const a = entry({ size: 20, sender: 'alice', nonce: '1', expires: 10 });
  const b = entry({ size: 30, sender: 'bob', nonce: '1', expires: 3 });
  const c = entry({ size: 40, sender: 'carol', nonce: '1', expires: 4 });
  const d = entry({ size: 50 });
  for (const e of [a, b, c, d]) pool.add(e);
  assert.is(pool.removeCommitted([a.hash, '0xunknown'], 4), 2, 'a committed, b expired (3 < 4), c still valid at 4');
  assert.not.ok(pool.has(a.hash));
  assert.not.ok(pool.has(b.hash));
  assert.ok(pool.has(c.hash));
  assert.ok(pool.has(d.hash));
  assert.not.ok(pool.hasSenderNonce('alice', '1'));
  assert.is(pool.bytes, 90);
  assert.is(pool.add({ ...a }), 'ok', 'a committed hash is the store\'s business, not the pool\'s');
  assert.is(pool.pruneExpired(5), 1);
  assert.not.ok(pool.has(c.hash));
  assert.is(pool.pruneExpired(1_000_000), 1, 'a expires at 10');
  assert.ok(pool.has(d.hash), 'a transaction without expiry stays');
  const s = pool.stats();
  assert.equal([s.removedCommitted, s.removedExpired, s.size, s.bytes, s.senders], [1, 3, 1, 50, 0]);
});

test('onAdded tells the block producer; unsubscribing stops it; a failing listener does not fail admission', () => {
  const pool = new TxPool(limits);
  const seen: string[] = [];
  const off = pool.onAdded((e) => seen.push(e.hash));
  pool.onAdded(() => {
    throw new Error('listener bug');
  });
  const e1 = entry();
  assert.is(pool.add(e1), 'ok');
  pool.add({ ...e1 });
  off();
  pool.add(entry());
  assert.equal(seen, [e1.hash]);
  assert.is(pool.size, 2);
});

test('thousands of transactions: reaping a block and removing it keeps arrival order', () => {
  const pool = new TxPool({ maxTxs: 20_000, maxBytes: 20_000 * 200, maxPerSender: 20_000 });
  const es = Array.from({ length: 12_000 }, (_, i) => entry({ size: 200, sender: `s${i % 97}`, nonce: `${i}`, expires: 1000 }));
  for (const e of es) assert.is(pool.add(e), 'ok');
  const block = pool.reap(5000, 4 * 1024 * 1024);
  assert.is(block.length, 5000);
  pool.removeCommitted(block.map((e) => e.hash), 2);
  const next = pool.reap(5000, 4 * 1024 * 1024);
  assert.is(next[0]!.hash, es[5000]!.hash);
  assert.is(next.at(-1)!.hash, es[9999]!.hash);
  assert.is(pool.size, 7000);
  assert.is(pool.bytes, 7000 * 200);
});

test('limits must be positive integers', () => {
  assert.throws(() => new TxPool({ maxTxs: 0, maxBytes: 1, maxPerSender: 1 }), /maxTxs/);
  assert.throws(() => new TxPool({ maxTxs: 1, maxBytes: 1.5, maxPerSender: 1 }), /maxBytes/);
  assert.throws(() => new TxPool({ maxTxs: 1, maxBytes: 1, maxPerSender: -1 }), /maxPerSender/);
});

test('reap with addedBy takes only what was admitted by then, in arrival order', () => {
  let now = 1000;
  const pool = new TxPool(limits, () => now);
  pool.add(entry({ hash: '0x01' }));
  now = 1010;
  pool.add(entry({ hash: '0x02' }));
  now = 1050;
  pool.add(entry({ hash: '0x03' }));
  assert.equal(pool.reap(10, 1 << 20, undefined, 1010).map((e) => e.hash), ['0x01', '0x02']);
  assert.equal(pool.reap(10, 1 << 20, undefined, 999).map((e) => e.hash), []);
  assert.equal(pool.reap(10, 1 << 20).map((e) => e.hash), ['0x01', '0x02', '0x03']);
});

test('an unverified entry is never reaped until markVerified, which tells the added listeners; discard drops it', () => {
  let now = 1000;
  const pool = new TxPool(limits, () => now);
  const heard: string[] = [];
  pool.onAdded((e) => heard.push(e.hash));
  const signature = { publicKey: 'aa', message: new Uint8Array(1), signature: 'bb' };
  const vouched = entry({ checked: undefined, unverified: { checked: { form: 'ok' }, signature, vouchers: [2] } });
  const later = entry({ checked: undefined, unverified: { checked: { form: 'ok' }, signature, vouchers: [1] } });
  const plain = entry();
  assert.is(pool.add(vouched), 'ok');
  now = 2000;
  assert.is(pool.add(later), 'ok');
  assert.is(pool.add(plain), 'ok');
  assert.equal(heard, [plain.hash], 'listeners hear only of what may be proposed');
  assert.equal(pool.reap(10, 10_000).map((e) => e.hash), [plain.hash]);
  assert.is(pool.unverifiedCount, 2);
  assert.equal(pool.unverified(10).map((e) => e.hash), [vouched.hash, later.hash], 'oldest first');
  assert.equal(pool.unverified(10, 1500).map((e) => e.hash), [vouched.hash], 'only those admitted before then');
  pool.get(vouched.hash)!.unverified!.verifying = true;
  assert.equal(pool.unverified(10).map((e) => e.hash), [later.hash], 'not the ones being verified');

  pool.markVerified(vouched.hash);
  assert.equal(pool.get(vouched.hash)!.checked, { form: 'ok' }, 'the check kept aside becomes the entry\'s');
  assert.is(pool.get(vouched.hash)!.unverified, undefined);
  assert.equal(heard, [plain.hash, vouched.hash]);
  assert.equal(pool.reap(10, 10_000).map((e) => e.hash), [vouched.hash, plain.hash], 'arrival order kept');

  assert.ok(pool.discard(later.hash));
  assert.not.ok(pool.discard(later.hash));
  assert.is(pool.unverifiedCount, 0);
  assert.is(pool.size, 2);
});

test('a held entry is not reaped until released (a vouch) or its hold is over (releaseDue); listeners hear of it then; removal forgets the hold', () => {
  let now = 1000;
  const pool = new TxPool(limits, () => now);
  const heard: string[] = [];
  pool.onAdded((e) => heard.push(e.hash));
  const first = entry({ holdUntil: 3000 });
  const second = entry({ holdUntil: 3500 });
  const third = entry({ holdUntil: 4000 });
  const plain = entry();
  for (const e of [first, second, third, plain]) assert.is(pool.add(e), 'ok');
  assert.equal(heard, [plain.hash], 'held entries are not announced as proposable');
  assert.equal(pool.reap(10, 10_000).map((e) => e.hash), [plain.hash]);
  assert.is(pool.heldCount, 3);

  pool.release(second.hash);
  pool.release(second.hash);
  pool.release(plain.hash);
  assert.equal(heard, [plain.hash, second.hash], 'a release is heard once; releasing what is not held does nothing');
  assert.equal(pool.reap(10, 10_000).map((e) => e.hash), [second.hash, plain.hash], 'arrival order kept');

  now = 2999;
  assert.is(pool.releaseDue(), 0, 'no hold is over yet');
  now = 3000;
  assert.is(pool.releaseDue(), 1);
  assert.equal(heard, [plain.hash, second.hash, first.hash]);
  assert.equal(pool.reap(10, 10_000).map((e) => e.hash), [first.hash, second.hash, plain.hash]);

  assert.ok(pool.discard(third.hash));
  assert.is(pool.heldCount, 0, 'a removed entry is no longer held');
  now = 5000;
  assert.is(pool.releaseDue(), 0);
  assert.equal(heard, [plain.hash, second.hash, first.hash], 'the removed one is never announced');
});

test('an unverified entry that is also held becomes proposable only when both are over', () => {
  const pool = new TxPool(limits, () => 0);
  const heard: string[] = [];
  pool.onAdded((e) => heard.push(e.hash));
  const signature = { publicKey: 'aa', message: new Uint8Array(1), signature: 'bb' };
  const e = entry({ checked: undefined, unverified: { checked: {}, signature, vouchers: [1] }, holdUntil: 10 });
  pool.add(e);
  pool.markVerified(e.hash);
  assert.equal(heard, [], 'verified, still held');
  assert.equal(pool.reap(10, 10_000), []);
  pool.release(e.hash);
  assert.equal(heard, [e.hash]);
  assert.equal(pool.reap(10, 10_000).map((x) => x.hash), [e.hash]);
});

test.run();

