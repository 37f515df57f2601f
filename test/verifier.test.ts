import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ed25519Keygen, Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { utf8 } from '../consensus/crypto/encoding.ts';
import { InlineVerifier, WorkerVerifier, type SignatureJob } from '../consensus/crypto/verifier.ts';

function jobs(n: number): { jobs: SignatureJob[]; expected: boolean[] } {
  const signers = [new Ed25519Signer(ed25519Keygen().secretKey), new Ed25519Signer(ed25519Keygen().secretKey)];
  const out: SignatureJob[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const s = signers[i % 2]!;
    const message = utf8(`message ${i}`);
    let signature = s.sign(message);
    let publicKey = s.publicKey;
    let ok = true;
    if (i % 5 === 1) (signature = s.sign(utf8('another message'))), (ok = false);
    if (i % 5 === 2) (publicKey = signers[(i + 1) % 2]!.publicKey), (ok = false);
    if (i % 5 === 3 && i % 2 === 0) (signature = 'zz' + signature.slice(2)), (ok = false);
    if (i % 5 === 3 && i % 2 === 1) (publicKey = 'not a key'), (ok = false);
    out.push({ publicKey, message, signature });
    expected.push(ok);
  }
  return { jobs: out, expected };
}

test('worker threads give each signature the same verdict as the main thread, batched or alone', async () => {
  const { jobs: js, expected } = jobs(400);
  const workers = new WorkerVerifier(2);
  const inline = new InlineVerifier();
  try {
    const batched = await Promise.all(js.map((j) => workers.verify(j)));
    assert.equal(batched, expected);
    assert.equal(await Promise.all(js.map((j) => inline.verify(j))), expected);
    // one at a time, across ticks
    for (let i = 0; i < 10; i++) assert.is(await workers.verify(js[i]!), expected[i]);
    assert.ok(workers.canAcceptWork());
  } finally {
    await workers.close();
  }
});

test('a bounded queue says when it is busy', async () => {
  const { jobs: js } = jobs(50);
  const workers = new WorkerVerifier(1, 20);
  try {
    const pending = js.map((j) => workers.verify(j));
    assert.not.ok(workers.canAcceptWork(), 'over its bound, the verifier refuses more work');
    await Promise.all(pending);
    assert.ok(workers.canAcceptWork(), 'and accepts again once drained');
  } finally {
    await workers.close();
  }
});

test.run();
