import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { eventsJcs, headerHash, receiptHash, validatorsHash, commitMessage } from '../consensus/chain/header.ts';
import { maxFaulty, quorumSize } from '../consensus/chain/certificate.ts';
import type { ReceiptCore } from '../consensus/chain/types.ts';
import { jcs, jcsHash, sha256, toHex, utf8 } from '../consensus/crypto/encoding.ts';

// Keys and values that stress JCS: escapes, control characters, non-BMP characters (surrogate
// pairs sort by UTF-16 code units), and integer-like keys (which JavaScript objects order first).
const tricky = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('10', '9', '0', 'é', '\u0000', '"', '\\', '😀', '\uffff', 'a\nb'));
const receipt: fc.Arbitrary<ReceiptCore> = fc.record({
  txHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => '0x' + toHex(b)),
  status: fc.constantFrom('ok' as const, 'rejected' as const),
  code: fc.integer({ min: 0, max: 1000 }),
  log: tricky,
  events: fc.array(fc.record({ type: tricky, attributes: fc.dictionary(tricky, tricky, { maxKeys: 6 }) }), { maxLength: 4 }),
});

test('receiptHash (written by hand for speed) equals SHA-256 of JCS of the receipt core, as chain.md defines it', () => {
  fc.assert(
    fc.property(receipt, (r) => {
      const reference = jcsHash({ txHash: r.txHash, status: r.status, code: r.code, log: r.log, events: r.events });
      assert.equal(toHex(receiptHash(r)), toHex(reference));
      assert.is(eventsJcs(r.events), jcs(r.events));
    }),
    { numRuns: 500 },
  );
});

test('header hash covers exactly the eleven header fields', () => {
  const h = {
    chain: 'c', number: 3, parentHash: '0x' + '11'.repeat(32), timestamp: 5, proposer: 0, txCount: 0,
    txRoot: '0x' + '22'.repeat(32), receiptRoot: '0x' + '33'.repeat(32), appHash: '0x' + '44'.repeat(32),
    validatorsHash: '0x' + '55'.repeat(32), nextValidatorsHash: '0x' + '66'.repeat(32),
  };
  const expected = toHex(sha256(utf8(jcs(h))));
  assert.is(toHex(headerHash(h)), expected);
  assert.is(toHex(headerHash({ ...h, hash: '0xabc', view: 9 } as typeof h)), expected, 'served extras do not change the hash');
  for (const k of Object.keys(h) as (keyof typeof h)[]) {
    const changed = { ...h, [k]: typeof h[k] === 'number' ? (h[k] as number) + 1 : (h[k] as string).replace(/.$/, 'f') };
    assert.is.not(toHex(headerHash(changed)), expected, `${k} is covered`);
  }
});

test('validator-set hash sorts by index and ignores proofs of possession', () => {
  const a = { index: 0, peerId: 'p0', blsPublicKey: '0x' + 'aa'.repeat(48) };
  const b = { index: 1, peerId: 'p1', blsPublicKey: '0x' + 'bb'.repeat(48) };
  assert.is(validatorsHash([b, a]), validatorsHash([a, b]));
  assert.is(validatorsHash([{ ...a, pop: '0x00' } as typeof a, b]), validatorsHash([a, b]));
  assert.is(validatorsHash([a, b]), '0x' + toHex(sha256(utf8(jcs([a, b])))));
});

test('commit message and quorum sizes of chain.md', () => {
  const hash = new Uint8Array(32).fill(7);
  assert.is(toHex(commitMessage(hash)), toHex(sha256(utf8('goodness/commit/v1'), hash)));
  assert.equal([1, 4, 7, 10, 16].map(quorumSize), [1, 3, 5, 7, 11]);
  assert.equal([1, 4, 7, 10, 16].map(maxFaulty), [0, 1, 2, 3, 5]);
});

test.run();
