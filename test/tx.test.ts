// tx.md: the canonical bytes, signing, decoding and every refusal of decodeTx. The reference
// values are computed here with node:crypto and the canonicalize package directly, not with the
// code under test, so that a mistake shared by buildTx and decodeTx still shows.
import { createHash, createPrivateKey, sign as nodeSign } from 'node:crypto';
import canonicalizeImpl from 'canonicalize';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { Code } from '../state/codes.ts';
import { buildTx, checkExpiry, decodeTx, MAX_EXPIRY_AHEAD, txHash, type TxFields } from '../state/tx.ts';

const canonicalize = canonicalizeImpl as unknown as (v: unknown) => string;
const CHAIN = 'goodness-test';
// RFC 8032 section 7.1, TEST 1: a seed whose public key is published.
const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const PKCS8_PREFIX = '302e020100300506032b657004220420';

/** Signs with node:crypto straight from the seed: the reference the SDK must agree with. */
function referenceSign(seedHex: string, message: string): string {
  const key = createPrivateKey({ key: Buffer.from(PKCS8_PREFIX + seedHex, 'hex'), format: 'der', type: 'pkcs8' });
  return nodeSign(null, Buffer.from(message, 'utf8'), key).toString('hex');
}

function referenceEnvelope(seedHex: string, tx: Record<string, unknown>): string {
  return canonicalize({ sig: referenceSign(seedHex, canonicalize(tx)), tx });
}

const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

function fields(from: string, overrides: Partial<TxFields> = {}): TxFields {
  return { chain: CHAIN, type: 'account.open', from, nonce: 'n-1', expires: 10, body: {}, ...overrides };
}

function refusal(text: string, chain = CHAIN): { code: number; log: string } {
  const r = decodeTx(bytesOf(text), chain);
  if (r.ok) throw new Error(`decodeTx accepted ${text}`);
  return r;
}

const signer = new Ed25519Signer(RFC8032_SEED);
const validTx = fields(RFC8032_PUBLIC);
const validText = referenceEnvelope(RFC8032_SEED, validTx as unknown as Record<string, unknown>);

test('the signer derives the RFC 8032 public key: account ids are that key in lowercase hex', () => {
  assert.is(signer.publicKey, RFC8032_PUBLIC);
});

test('canonical bytes: the envelope literally, members sorted, no whitespace', () => {
  const sig = referenceSign(RFC8032_SEED, canonicalize(validTx));
  const expected =
    `{"sig":"${sig}","tx":{"body":{},"chain":"goodness-test","expires":10,` +
    `"from":"${RFC8032_PUBLIC}","nonce":"n-1","type":"account.open"}}`;
  assert.is(validText, expected);
  const built = buildTx(signer, { chain: CHAIN, type: 'account.open', nonce: 'n-1', expires: 10, body: {} });
  assert.is(Buffer.from(built.bytes).toString('utf8'), expected);
  assert.is(built.hash, '0x' + createHash('sha256').update(expected, 'utf8').digest('hex'));
});

test('build, sign and decode round trip, with nested bodies and the largest safe integer', () => {
  const keys = ed25519Keygen();
  const s = new Ed25519Signer(keys.secretKey);
  const body = { z: [1, { b: 'x', a: 9007199254740991 }], a: 'ünïcode ✓', m: { y: true, x: null } };
  const built = buildTx(s, { chain: CHAIN, type: 'deed.submit', nonce: 'A_z-09', expires: 1200, body });
  const text = referenceEnvelope(keys.secretKey, { chain: CHAIN, type: 'deed.submit', from: keys.publicKey, nonce: 'A_z-09', expires: 1200, body });
  assert.is(Buffer.from(built.bytes).toString('utf8'), text);
  const decoded = decodeTx(built.bytes, CHAIN);
  assert.ok(decoded.ok);
  if (!decoded.ok) return;
  assert.is(decoded.tx.hash, built.hash);
  assert.is(decoded.tx.size, built.bytes.length);
  assert.equal(decoded.tx.envelope, JSON.parse(text));
  assert.is(decoded.tx.envelope.tx.from, keys.publicKey);
});

test('the hash is 0x + SHA-256 of the bytes', () => {
  const bytes = bytesOf(validText);
  assert.is(txHash(bytes), '0x' + createHash('sha256').update(bytes).digest('hex'));
  const d = decodeTx(bytes, CHAIN);
  assert.ok(d.ok && d.tx.hash === txHash(bytes));
});

test('not canonical: whitespace, member order, number forms', () => {
  const obj = JSON.parse(validText);
  const cases = [
    JSON.stringify(obj, null, 1),
    validText + '\n',
    ' ' + validText,
    validText.replace('"tx":', '"tx": '),
    JSON.stringify({ tx: obj.tx, sig: obj.sig }),
    validText.replace(`"expires":10,"from":"${RFC8032_PUBLIC}"`, `"from":"${RFC8032_PUBLIC}","expires":10`),
    validText.replace('"expires":10', '"expires":1e1'),
    validText.replace('"expires":10', '"expires":10.0'),
    validText.replace('"nonce":"n-1"', '"nonce":"n\\u002d1"'),
  ];
  for (const text of cases) assert.is(refusal(text).code, Code.NOT_CANONICAL, text);
});

test('duplicate members are not canonical (JSON.parse would keep the last one)', () => {
  const obj = JSON.parse(validText);
  const dupSig = `{"sig":"${'0'.repeat(128)}","sig":"${obj.sig}","tx":${canonicalize(obj.tx)}}`;
  assert.is(refusal(dupSig).code, Code.NOT_CANONICAL);
  const dupType = validText.replace('"type":"account.open"', '"type":"gov.vote","type":"account.open"');
  assert.is(refusal(dupType).code, Code.NOT_CANONICAL);
  const dupBody = validText.replace('"body":{}', '"body":{"a":1,"a":1}');
  assert.is(refusal(dupBody).code, Code.NOT_CANONICAL);
});

test('missing and extra members are malformed', () => {
  const obj = JSON.parse(validText);
  const variants: unknown[] = [
    { tx: obj.tx },
    { sig: obj.sig },
    { sig: obj.sig, tx: obj.tx, extra: 1 },
    [obj.sig, obj.tx],
    'a string',
    null,
  ];
  for (const member of ['body', 'chain', 'expires', 'from', 'nonce', 'type']) {
    const tx = { ...obj.tx };
    delete tx[member];
    variants.push({ sig: obj.sig, tx });
  }
  variants.push({ sig: obj.sig, tx: { ...obj.tx, memo: 'x' } });
  for (const v of variants) {
    const r = refusal(canonicalize(v));
    assert.is(r.code, Code.MALFORMED, canonicalize(v));
  }
  assert.is(refusal('{"sig":').code, Code.MALFORMED);
  assert.is(decodeTx(new Uint8Array([0x7b, 0xff, 0x7d]), CHAIN).ok, false, 'invalid UTF-8');
});

test('malformed member forms: hex, case, nonce, type, expires, body', () => {
  const obj = JSON.parse(validText);
  const withTx = (patch: Record<string, unknown>) => canonicalize({ sig: obj.sig, tx: { ...obj.tx, ...patch } });
  const withSig = (sig: unknown) => canonicalize({ sig, tx: obj.tx });
  const cases = [
    withSig('zz' + obj.sig.slice(2)),
    withSig(obj.sig.toUpperCase()),
    withSig(obj.sig.slice(0, 126)),
    withSig(obj.sig + '00'),
    withSig('0x' + obj.sig.slice(2)),
    withSig(123),
    withTx({ from: RFC8032_PUBLIC.toUpperCase() }),
    withTx({ from: RFC8032_PUBLIC.slice(0, 62) }),
    withTx({ from: 'did:goodness:' + RFC8032_PUBLIC }),
    withTx({ nonce: '' }),
    withTx({ nonce: 'x'.repeat(65) }),
    withTx({ nonce: 'a/b' }),
    withTx({ nonce: 'a b' }),
    withTx({ nonce: 'é' }),
    withTx({ nonce: 7 }),
    withTx({ type: 'Account.Open' }),
    withTx({ type: 'account..open' }),
    withTx({ type: '' }),
    withTx({ chain: 5 }),
    withTx({ expires: -1 }),
    withTx({ expires: '10' }),
    withTx({ expires: 10.5 }),
    withTx({ expires: 9007199254740992 }),
    withTx({ body: [] }),
    withTx({ body: null }),
    withTx({ body: { amount: 1.5 } }),
    withTx({ body: { nested: [{ x: 0.1 }] } }),
    withTx({ body: { big: 9007199254740992 } }),
  ];
  for (const text of cases) assert.is(refusal(text).code, Code.MALFORMED, text);
  // Numbers beyond 2^53-1 in the raw text: JSON.parse rounds them, and they are still refused.
  assert.is(refusal(validText.replace('"body":{}', '"body":{"n":9007199254740993}')).code, Code.MALFORMED);
  assert.is(refusal(validText.replace('"expires":10', '"expires":18446744073709551616')).code, Code.MALFORMED);
});

test('wrong chain: a transaction signed for another chain', () => {
  const other = referenceEnvelope(RFC8032_SEED, { ...validTx, chain: 'goodness-other' });
  const r = refusal(other);
  assert.is(r.code, Code.WRONG_CHAIN);
  assert.ok(decodeTx(bytesOf(other), 'goodness-other').ok);
});

test('bad signature: flipped bit, another key, tampered body, swapped sender', () => {
  const obj = JSON.parse(validText);
  const flipped = obj.sig.slice(0, 10) + (obj.sig[10] === 'a' ? 'b' : 'a') + obj.sig.slice(11);
  assert.is(refusal(canonicalize({ sig: flipped, tx: obj.tx })).code, Code.BAD_SIGNATURE);

  const other = ed25519Keygen();
  const signedByOther = canonicalize({ sig: referenceSign(other.secretKey, canonicalize(obj.tx)), tx: obj.tx });
  assert.is(refusal(signedByOther).code, Code.BAD_SIGNATURE);

  const tampered = canonicalize({ sig: obj.sig, tx: { ...obj.tx, body: { x: 1 } } });
  assert.is(refusal(tampered).code, Code.BAD_SIGNATURE);
  const laterExpiry = canonicalize({ sig: obj.sig, tx: { ...obj.tx, expires: 11 } });
  assert.is(refusal(laterExpiry).code, Code.BAD_SIGNATURE);
  const otherSender = canonicalize({ sig: obj.sig, tx: { ...obj.tx, from: other.publicKey } });
  assert.is(refusal(otherSender).code, Code.BAD_SIGNATURE);

  // Without signature verification the same tampered bytes pass the form checks.
  assert.ok(decodeTx(bytesOf(tampered), CHAIN, false).ok);
});

test('checkExpiry: valid from height up to expires, at most 1000 ahead', () => {
  assert.is(checkExpiry(100, 100), null);
  assert.is(checkExpiry(99, 100)?.code, Code.EXPIRED);
  assert.is(checkExpiry(100 + MAX_EXPIRY_AHEAD, 100), null);
  assert.is(checkExpiry(100 + MAX_EXPIRY_AHEAD + 1, 100)?.code, Code.EXPIRES_TOO_FAR);
});

test.run();
