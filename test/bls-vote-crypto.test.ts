// BlsVoteCrypto, the votes' real signatures: checks one by one and in aggregate against the
// validators' keys, which it parses once per validator (a changed key is parsed again).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blsKeygen, BlsSigner } from '../consensus/crypto/bls.ts';
import { BlsVoteCrypto, verifyMany } from '../consensus/pbft/vote-crypto.ts';

const keys = [0, 1, 2, 3].map((i) => blsKeygen(new Uint8Array(32).fill(i + 1)));
const message = new Uint8Array(32).fill(9);
const sigs = keys.map((k) => new BlsSigner(k.secretKey).sign(message));

function cryptoWith(lookup: (i: number) => Uint8Array | undefined): BlsVoteCrypto {
  return new BlsVoteCrypto(keys[0]!.secretKey, lookup);
}

test('one vote: its signer\'s signature verifies, anyone else\'s or a malformed one does not; an unknown index is refused', () => {
  const c = cryptoWith((i) => keys[i]?.publicKey);
  assert.ok(c.verify(2, message, sigs[2]!));
  assert.not.ok(c.verify(2, message, sigs[1]!));
  assert.not.ok(c.verify(2, new Uint8Array(32), sigs[2]!));
  assert.not.ok(c.verify(2, message, sigs[2]!.subarray(1)));
  assert.not.ok(c.verify(7, message, sigs[2]!));
  assert.ok(c.verify(2, message, sigs[2]!), 'the parsed key, taken again from the cache');
});

test('an aggregate verifies for exactly its signers; verifyMany finds the one bad vote', () => {
  const c = cryptoWith((i) => keys[i]?.publicKey);
  const agg = c.aggregate([sigs[0]!, sigs[1]!, sigs[3]!])!;
  assert.ok(c.verifyAggregate([0, 1, 3], message, agg));
  assert.not.ok(c.verifyAggregate([0, 1, 2], message, agg));
  assert.not.ok(c.verifyAggregate([0, 1, 1], message, agg), 'repeated signers');
  assert.not.ok(c.verifyAggregate([0, 1, 9], message, agg), 'an unknown signer');
  assert.equal(verifyMany(c, message, [{ index: 0, signature: sigs[0]! }, { index: 1, signature: sigs[2]! }, { index: 3, signature: sigs[3]! }]), [true, false, true]);
});

test('a validator whose key bytes change is checked against the new key, not the parsed old one', () => {
  let keyOf1 = keys[1]!.publicKey;
  const c = cryptoWith((i) => (i === 1 ? keyOf1 : keys[i]?.publicKey));
  assert.ok(c.verify(1, message, sigs[1]!));
  keyOf1 = Uint8Array.from(keys[2]!.publicKey);
  assert.not.ok(c.verify(1, message, sigs[1]!));
  assert.ok(c.verify(1, message, sigs[2]!));
  keyOf1 = new Uint8Array(48).fill(1);
  assert.not.ok(c.verify(1, message, sigs[2]!), 'bytes that are no key');
});

test.run();
