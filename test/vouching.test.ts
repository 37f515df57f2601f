// Vouched transactions (cluster/vouching.ts): which validators verify a gossiped transaction,
// and when vouchers suffice. The rules are pure; the cluster test with a lying validator is
// test/cluster-vouching.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { EarlyVouches, designatedVerifiers, enoughVouchers, gossipedTxAction } from '../cluster/vouching.ts';

const hash = () => '0x' + randomBytes(32).toString('hex');
const set = (n: number) => Array.from({ length: n }, (_, i) => i);

test('designated verifiers: f of them, never the sender, the same for everyone, spread evenly', () => {
  for (const n of [4, 5, 7, 10, 13]) {
    const validators = set(n);
    const f = Math.floor((n - 1) / 3);
    const load = new Array<number>(n).fill(0);
    for (let i = 0; i < 4000; i++) {
      const h = hash();
      const sender = i % n;
      const chosen = designatedVerifiers(h, sender, validators);
      assert.is(chosen.length, f);
      assert.is(new Set(chosen).size, f, 'distinct');
      assert.not.ok(chosen.includes(sender));
      assert.equal(designatedVerifiers(h, sender, [...validators].reverse()), chosen, 'independent of the order the set is given in');
      for (const v of chosen) load[v]!++;
    }
    const expected = (4000 * f) / n;
    for (const l of load) assert.ok(Math.abs(l - expected) < expected * 0.2, `n=${n}: load ${load.join(',')} around ${expected}`);
  }
});

test('f + 1 validators verify each transaction: the sender and the designated ones; everyone else defers', () => {
  for (const n of [4, 7, 10]) {
    const validators = set(n);
    const f = Math.floor((n - 1) / 3);
    for (let i = 0; i < 200; i++) {
      const h = hash();
      const sender = i % n;
      const actions = validators.map((me) => (me === sender ? null : gossipedTxAction({ me, validators }, h, sender)));
      assert.is(actions.filter((a) => a === 'verify-and-vouch').length, f);
      assert.is(actions.filter((a) => a === 'defer').length, n - 1 - f);
      assert.is(actions.filter((a) => a === 'verify').length, 0);
    }
  }
});

test('no vouching where it cannot be safe or gains nothing: an observer, fewer than 4 validators, a sender outside the set', () => {
  const h = hash();
  assert.is(gossipedTxAction({ me: -1, validators: set(4) }, h, 1), 'verify');
  assert.is(gossipedTxAction({ me: 7, validators: set(4) }, h, 1), 'verify', 'a node not in the set');
  for (const n of [1, 2, 3]) for (const me of set(n)) assert.is(gossipedTxAction({ me, validators: set(n) }, h, (me + 1) % n), 'verify');
  assert.is(gossipedTxAction({ me: 0, validators: set(4) }, h, 9), 'verify', 'a sender that is not a validator');
});

test('enough vouchers: f + 1 distinct members of the set; repeats, strangers and undefined do not count', () => {
  const four = set(4);
  assert.not.ok(enoughVouchers([2], four));
  assert.not.ok(enoughVouchers([2, 2, undefined], four));
  assert.not.ok(enoughVouchers([2, 9], four), 'a non-validator vouches for nothing');
  assert.ok(enoughVouchers([2, 3], four));
  assert.ok(enoughVouchers([2, undefined, 0], four));
  const seven = set(7);
  assert.not.ok(enoughVouchers([1, 2], seven), 'f = 2 needs three');
  assert.ok(enoughVouchers([1, 2, 6], seven));
});

test('early vouches: kept per transaction without repeats until taken, the oldest forgotten beyond the bound', () => {
  const early = new EarlyVouches(2);
  early.note('0xa', 1);
  early.note('0xa', 1);
  early.note('0xa', 2);
  assert.equal(early.take('0xa'), [1, 2]);
  assert.equal(early.take('0xa'), [], 'taken once');
  early.note('0xb', 1);
  early.note('0xc', 1);
  early.note('0xd', 3);
  assert.is(early.size, 2);
  assert.equal(early.take('0xb'), [], 'the oldest went first');
  assert.equal([early.take('0xc'), early.take('0xd')], [[1], [3]]);
});

test.run();
