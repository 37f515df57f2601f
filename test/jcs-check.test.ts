// isJcsText (consensus/crypto/encoding.ts) against the canonicalize library it stands in for at
// admission: for any JSON text, "text is JCS of what JSON.parse makes of it" must get the same
// answer from both. Texts are generated canonical (the library's own output) and then perturbed
// (members reordered, whitespace, escapes, number forms, index-like names), so that both answers
// occur often.
import canonicalizeImpl from 'canonicalize';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isJcsText } from '../consensus/crypto/encoding.ts';

const canonicalize = canonicalizeImpl as unknown as (v: unknown) => string;

function reference(text: string): boolean {
  return canonicalize(JSON.parse(text)) === text;
}

// Names that stress the ordering rules: array-index names (V8 puts them first, numerically),
// near-index names, non-ASCII and astral characters (JCS orders by UTF-16 code units).
const name = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('0', '1', '9', '10', '17', '01', '-1', '4294967294', '4294967295', '1e3', 'é', 'z', '\u{1F600}', '\uFFFD', 'a\u0000'),
);
const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -0, 1, -1, 2 ** 53 - 1, 1.5, 1e21, 1e-7),
    fc.integer(),
    fc.string({ maxLength: 8 }),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(name, tie('json'), { maxKeys: 5 }),
  ),
}));

/** Perturbations of a canonical text that keep it valid JSON (some keep it canonical). */
const perturbed = fc.tuple(json, fc.nat(), fc.constantFrom('reverse-members', 'space', 'escape', 'exponent', 'stringify', 'none')).map(([value, at, how]) => {
  const canonical = canonicalize(value);
  switch (how) {
    case 'reverse-members':
      // JSON.stringify of an object rebuilt with its members in reverse order.
      return JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v));
    case 'space': {
      const i = at % (canonical.length + 1);
      return /[,:[{]/.test(canonical[i - 1] ?? '') ? canonical.slice(0, i) + ' ' + canonical.slice(i) : canonical + ' ';
    }
    case 'escape':
      // Only where a string starts: `"a` is inside a string in any JSON text.
      return canonical.replace('"a', '"\\u0061');
    case 'exponent':
      return canonical.replace(/(?<=[:,[])1(?=[,}\]])/, '1e0');
    case 'stringify':
      return JSON.stringify(value);
    default:
      return canonical;
  }
});

test('isJcsText agrees with the canonicalize library on canonical and perturbed texts', () => {
  let canonicalSeen = 0;
  let notCanonicalSeen = 0;
  fc.assert(
    fc.property(perturbed, (text) => {
      const expected = reference(text);
      if (expected) canonicalSeen++;
      else notCanonicalSeen++;
      return isJcsText(JSON.parse(text), text) === expected;
    }),
    { numRuns: 5000 },
  );
  // The generator must exercise both answers, or the agreement above proves little.
  assert.ok(canonicalSeen > 500, `canonical texts generated: ${canonicalSeen}`);
  assert.ok(notCanonicalSeen > 500, `non-canonical texts generated: ${notCanonicalSeen}`);
});

test('index-like member names: canonical order is by code units, not numeric', () => {
  // JCS sorts "10" before "9"; V8 would enumerate 9 first, so the fast path must not be used.
  assert.ok(isJcsText(JSON.parse('{"10":1,"9":2}'), '{"10":1,"9":2}'));
  assert.not.ok(isJcsText(JSON.parse('{"9":2,"10":1}'), '{"9":2,"10":1}'));
  // A name that is not an array index (2^32 - 1 and above) keeps its place.
  assert.ok(isJcsText(JSON.parse('{"4294967295":1,"a":2}'), '{"4294967295":1,"a":2}'));
});

test('a duplicate member is not canonical (JSON.parse keeps the last one)', () => {
  const text = '{"a":1,"a":2}';
  assert.not.ok(isJcsText(JSON.parse(text), text));
});

test('astral characters order by UTF-16 code units, as JCS says', () => {
  // U+1F600 is D83D DE00 in UTF-16: below U+FFFD by code units, above it by code points.
  const text = canonicalize({ '\u{1F600}': 1, '\uFFFD': 2 });
  assert.ok(text.indexOf('\u{1F600}') < text.indexOf('\uFFFD'));
  assert.ok(isJcsText(JSON.parse(text), text));
});

test.run();
