// The app hash's fast encoder (state/app-hash.ts ChangesEncoder, via encodeChanges) writes a
// block's change list straight into one buffer; it must give exactly the app hash and bytes of
// the reference definition (nextAppHash over changesJcs) for any keys and values: keys JSON must
// escape (quotes, backslashes, control characters), non-ASCII, long keys, and lists far larger
// than the encoder's first size hint, and lists written over the buffers of earlier ones. A
// property test (fast-check) over random lists.
import * as fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromUtf8, jcs, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { ChangesEncoder, changesJcs, encodeChanges, nextAppHash, type CanonicalChange } from '../state/app-hash.ts';

const PREVIOUS = to0x(sha256(utf8('previous')));
const keyArb = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', 'é', '€', '😀', 'a'), maxLength: 300 }));
const valueArb = fc.oneof(fc.constant(null), fc.integer(), fc.string({ unit: 'grapheme', maxLength: 50 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 }))));

function reference(changes: [string, unknown][]): { appHash: string; sorted: CanonicalChange[] } {
  const sorted = [...new Map(changes)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]): CanonicalChange => [k, jcs(v)]);
  return { appHash: nextAppHash(PREVIOUS, sorted), sorted };
}

test('encodeChanges gives the reference app hash, keys and values for any change list', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(keyArb, valueArb), { maxLength: 60 }), (changes) => {
      const { appHash, sorted } = reference(changes);
      const enc = encodeChanges(PREVIOUS, sorted.map(([k]) => k), sorted.map(([, v]) => v));
      assert.is(enc.appHash, appHash);
      assert.equal(enc.keyBytes.map(fromUtf8), sorted.map(([k]) => k));
      assert.equal(enc.valueBytes.map(fromUtf8), sorted.map(([, v]) => v));
      assert.is(enc.bytes, utf8(changesJcs(sorted)).length);
    }),
    { numRuns: 300 },
  );
});

test('a size hint far too small only makes the buffer grow', () => {
  const sorted: CanonicalChange[] = Array.from({ length: 2000 }, (_, i) => [`k/${String(i).padStart(5, '0')}/"quoted"\\${'é'.repeat(i % 7)}`, jcs({ i, text: 'x'.repeat(i % 300) })]);
  const encoder = new ChangesEncoder(1, 1);
  for (const [k, v] of sorted) encoder.add(k, v);
  assert.is(encoder.finish(PREVIOUS).appHash, nextAppHash(PREVIOUS, sorted));
});

test('a list encoded into the space of an earlier one (longer or shorter) is the reference list', () => {
  // The ledger encodes each block into the buffers of a committed one: what the earlier list
  // left there must not show through, whichever of the two is larger.
  fc.assert(
    fc.property(fc.array(fc.tuple(keyArb, valueArb), { maxLength: 60 }), fc.array(fc.tuple(keyArb, valueArb), { maxLength: 60 }), (first, second) => {
      const before = reference(first).sorted;
      const earlier = new ChangesEncoder(before.length, 16);
      for (const [k, v] of before) earlier.add(k, v);
      const { list: used } = earlier.finish(PREVIOUS);
      const { appHash, sorted } = reference(second);
      const encoder = new ChangesEncoder(sorted.length, 16, used.space);
      for (const [k, v] of sorted) encoder.add(k, v);
      const { appHash: got, list, bytes } = encoder.finish(PREVIOUS);
      assert.is(got, appHash);
      assert.is(bytes, utf8(changesJcs(sorted)).length);
      assert.equal(Array.from({ length: list.count }, (_, i) => fromUtf8(list.key(i))), sorted.map(([k]) => k));
      assert.equal(Array.from({ length: list.count }, (_, i) => fromUtf8(list.value(i))), sorted.map(([, v]) => v));
    }),
    { numRuns: 200 },
  );
});

test.run();
