// The validator schedule: which set signs which height, as every node computes it from
// committed blocks (consensus/validator-schedule.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ValidatorRegistration } from '../consensus/chain/types.ts';
import { ValidatorSchedule } from '../consensus/validator-schedule.ts';

const reg = (index: number): ValidatorRegistration => ({ index, peerId: `peer-${index}`, blsPublicKey: '0x' + (index + 1).toString(16).padStart(2, '0').repeat(48), pop: '0x' + '00'.repeat(96) });
const indexes = (set: { index: number }[] | null) => set?.map((v) => v.index) ?? null;
const genesis = [reg(0), reg(1), reg(2), reg(3)];

test('a change made by block h applies from h + window + 1, and heights beyond the committed window are unknown', () => {
  const s = new ValidatorSchedule(genesis, 4);
  assert.is(s.delay, 5);
  assert.equal(indexes(s.at(0)), [0, 1, 2, 3], 'block 0 has the genesis set');
  assert.equal(indexes(s.at(5)), [0, 1, 2, 3]);
  assert.is(s.at(6), null, 'nothing committed: only heights 1..5 are final');
  assert.throws(() => s.require(6), /not known yet/);
  for (let h = 1; h <= 6; h++) assert.is(s.commit(h, []), null, 'an unchanged schedule needs no write');
  assert.equal(indexes(s.at(11)), [0, 1, 2, 3]);
  const record = s.commit(7, [{ type: 'remove', index: 3 }, { type: 'add', validator: reg(4) }]);
  assert.ok(record, 'a change is persisted with its block');
  assert.equal(indexes(s.at(11)), [0, 1, 2, 3]);
  assert.equal(indexes(s.at(12)), [0, 1, 2, 4], 'block 7 + 5 = 12 is the first height of the new set');
  assert.equal(indexes(s.at(13)), null, 'height 13 waits for block 8');
  s.commit(8, []);
  assert.equal(indexes(s.at(12)), [0, 1, 2, 4]);
  assert.equal(indexes(s.at(13)), [0, 1, 2, 4]);
  assert.equal(indexes(s.at(11)), [0, 1, 2, 3], 'earlier heights keep their set');
});

test('the persisted record restores the same schedule, and the tip may be above it', () => {
  const s = new ValidatorSchedule(genesis, 2);
  s.commit(1, []);
  const record = JSON.parse(JSON.stringify(s.commit(2, [{ type: 'remove', index: 0 }])));
  const again = new ValidatorSchedule(genesis, 2, record);
  again.resumeAt(9);
  assert.equal(indexes(again.at(4)), [0, 1, 2, 3]);
  assert.equal(indexes(again.at(5)), [1, 2, 3]);
  assert.equal(indexes(again.at(12)), [1, 2, 3]);
  assert.is(again.at(13), null);
  assert.throws(() => again.resumeAt(1), /above the chain/);
  assert.throws(() => again.commit(11, []), /committed after 9/, 'blocks commit one after another');
});

test('upcoming lists everyone who signs a height from the next on; a departed validator keeps its key', () => {
  const s = new ValidatorSchedule(genesis, 1);
  s.commit(1, [{ type: 'remove', index: 2 }, { type: 'add', validator: reg(7) }]);
  assert.equal(indexes(s.upcoming(2)), [0, 1, 2, 3, 7], 'height 2 still has validator 2; height 3 has 7');
  assert.equal(indexes(s.upcoming(3)), [0, 1, 3, 7]);
  assert.ok(s.blsKey(2), 'votes of validator 2 for the heights it signed still verify');
  assert.ok(s.blsKey(7));
  assert.is(s.blsKey(5), undefined, 'an index never registered has no key');
});

test('a change that would leave no validator is refused', () => {
  const s = new ValidatorSchedule([reg(0)], 4);
  assert.throws(() => s.commit(1, [{ type: 'remove', index: 0 }]), /no validators/);
});

test.run();
