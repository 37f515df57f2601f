// Ed25519 verification is libsodium's (consensus/crypto/ed25519.ts); keys and signatures come
// from node:crypto. These are the cases where the two libraries could part: a signature made by
// one must verify by the other, and the edge cases libsodium refuses must be refused the same way
// on the main thread and in the verifier's worker threads, since a node's verdict on a
// transaction's signature must not depend on which thread checked it.
import { verify as openSslVerify } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ed25519Keygen, ed25519PublicKeyOf, Ed25519Signer, ed25519Verify, nodeCryptoPublicKey } from '../consensus/crypto/ed25519.ts';
import { utf8 } from '../consensus/crypto/encoding.ts';
import { InlineVerifier, WorkerVerifier, type SignatureJob } from '../consensus/crypto/verifier.ts';

/** The group order L of Ed25519, little-endian as S is encoded. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** The identity point's encoding: a public key of small order. */
const IDENTITY = '01' + '00'.repeat(31);

function leToBig(bytes: Buffer): bigint {
  return BigInt('0x' + Buffer.from(bytes).reverse().toString('hex'));
}

function bigToLe(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();
}

const signer = new Ed25519Signer(ed25519Keygen().secretKey);
const message = utf8('{"body":{},"chain":"goodness-test","expires":10,"from":"...","nonce":"n1","type":"account.open"}');
const signature = signer.sign(message);

/** Each case: a job and whether a node accepts it. */
const CASES: { name: string; job: SignatureJob; ok: boolean }[] = [
  { name: 'a node:crypto signature', job: { publicKey: signer.publicKey, message, signature }, ok: true },
  { name: 'another message', job: { publicKey: signer.publicKey, message: utf8('another'), signature }, ok: false },
  { name: 'another key', job: { publicKey: ed25519PublicKeyOf(ed25519Keygen().secretKey), message, signature }, ok: false },
  { name: 'one bit of the signature flipped', job: { publicKey: signer.publicKey, message, signature: (signature[0] === '0' ? '1' : '0') + signature.slice(1) }, ok: false },
  {
    // S + L verifies under the cofactorless equation; RFC 8032 requires S < L, as both libraries do
    name: 'S replaced by S + L (malleated)',
    job: { publicKey: signer.publicKey, message, signature: signature.slice(0, 64) + bigToLe(leToBig(Buffer.from(signature.slice(64), 'hex')) + L).toString('hex') },
    ok: false,
  },
  {
    // R = identity and S = 0 satisfy [S]B = R + [k]A for every message when A is the identity:
    // OpenSSL accepts it (a forgery for anyone, under that account id); libsodium refuses small-order keys
    name: 'the small-order key universal forgery',
    job: { publicKey: IDENTITY, message, signature: IDENTITY + '00'.repeat(32) },
    ok: false,
  },
  { name: 'upper-case hex', job: { publicKey: signer.publicKey.toUpperCase(), message, signature }, ok: false },
  { name: 'a short signature', job: { publicKey: signer.publicKey, message, signature: signature.slice(2) }, ok: false },
  { name: 'a short key', job: { publicKey: signer.publicKey.slice(2), message, signature }, ok: false },
  { name: 'not hex', job: { publicKey: 'zz' + signer.publicKey.slice(2), message, signature }, ok: false },
];

test('ed25519Verify: node:crypto signatures verify; tampering, malleated S, small-order keys and malformed hex are refused', () => {
  for (const c of CASES) assert.is(ed25519Verify(c.job.publicKey, c.job.message, c.job.signature), c.ok, c.name);
});

test('the small-order forgery is one that OpenSSL, the verifier before libsodium, accepted', () => {
  const key = nodeCryptoPublicKey(IDENTITY);
  const forged = Buffer.from(IDENTITY + '00'.repeat(32), 'hex');
  assert.ok(openSslVerify(null, utf8('any message at all'), key, forged), 'OpenSSL accepts it: the case above is a real difference between the two libraries');
  assert.not.ok(ed25519Verify(IDENTITY, utf8('any message at all'), forged.toString('hex')));
});

test('the worker threads and the main thread give every case the same verdict', async () => {
  const workers = new WorkerVerifier(2);
  const inline = new InlineVerifier();
  try {
    const fromWorkers = await Promise.all(CASES.map((c) => workers.verify(c.job)));
    const fromInline = await Promise.all(CASES.map((c) => inline.verify(c.job)));
    assert.equal(fromWorkers, CASES.map((c) => c.ok));
    assert.equal(fromInline, CASES.map((c) => c.ok));
  } finally {
    await workers.close();
  }
});

test.run();
