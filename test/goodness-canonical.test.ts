// The ledger's fast serialisation and hashing against their definitions: canonicalJson is JCS
// (checked against the `canonicalize` package) on both its paths (members already in order, and
// not), and the app hash over bytes equals the app hash over JCS text.
import canonicalizeImpl from 'canonicalize';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { utf8 } from '../consensus/crypto/encoding.ts';
import { encodeChanges, nextAppHash, nextAppHashOfBytes, sortChanges, type CanonicalChange } from '../state/app-hash.ts';
import { canonicalJson } from '../state/goodness/canonical.ts';

const canonicalize = canonicalizeImpl as unknown as (v: unknown) => string;

/** JSON values with the awkward cases: integer-like keys, unicode, escapes, nesting, -0. */
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(-0, 0, 1e21, 5e-7, Number.MAX_SAFE_INTEGER),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('1', '10', '9', '02', 'a', 'B', 'é', '€')), tie('value'), { maxKeys: 6 }),
  ),
})).value;

test('canonicalJson equals the JCS of the canonicalize package on random JSON values', () => {
  fc.assert(
    fc.property(json, (v) => {
      assert.is(canonicalJson(v), canonicalize(v));
    }),
    { numRuns: 2000 },
  );
});

test('canonicalJson on records whose members are already in order (the JSON.stringify path)', () => {
  const sortedRecord = fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)), { maxKeys: 8 }).map((d) => {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(d).sort()) out[k] = d[k];
    return out;
  });
  fc.assert(
    fc.property(fc.array(sortedRecord, { maxLength: 4 }), (records) => {
      const v = { a: records, b: { c: records[0] ?? null } };
      assert.is(canonicalJson(v), canonicalize(v));
    }),
    { numRuns: 1000 },
  );
  assert.throws(() => canonicalJson({ a: Number.NaN }), /non-finite/);
});

test('the app hash over bytes equals the app hash over JCS text, keys needing escapes included', () => {
  const previous = '0x' + '11'.repeat(32);
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(fc.oneof(fc.string(), fc.constantFrom('a/1', 'n/x"y', 'k\\z', 'é/ü', 'tab\there'), fc.string({ unit: 'grapheme' })), json), { selector: ([k]) => k, maxLength: 12 }), (pairs) => {
      const changes: CanonicalChange[] = sortChanges(pairs.map(([k, v]) => [k, canonicalize(v)] as CanonicalChange));
      const expected = nextAppHash(previous, changes);
      const bytes = nextAppHashOfBytes(
        previous,
        changes.map(([k]) => utf8(k)),
        changes.map(([, v]) => utf8(v)),
      );
      assert.is(bytes, expected);
      const encoded = encodeChanges(previous, changes.map(([k]) => k), changes.map(([, v]) => v));
      assert.is(encoded.appHash, expected);
      changes.forEach(([k, v], i) => {
        assert.is(Buffer.from(encoded.keyBytes[i]!).toString(), k);
        assert.is(Buffer.from(encoded.valueBytes[i]!).toString(), v);
      });
    }),
    { numRuns: 500 },
  );
});

test.run();
