import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ed25519Keygen, Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { utf8 } from '../consensus/crypto/encoding.ts';
import { InlineVerifier, WorkerVerifier, type SignatureJob, type VerifyPriority } from '../consensus/crypto/verifier.ts';
import { linuxThreadNames, threadNames } from './fixtures/threads.ts';

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
    // On Linux the workers name themselves, for top and perf.
    if (linuxThreadNames) assert.is(threadNames().filter((n) => n === 'gdn:verifier').length, 2);
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

/**
 * Queues 2,000 jobs at priority `behind`, then one at `ahead`, and says where the late one came in
 * the order they finished. `whileQueued` runs once all are queued.
 */
async function finishingPlace(workers: WorkerVerifier, behind: VerifyPriority, ahead: VerifyPriority, whileQueued: () => void = () => {}): Promise<{ at: number; of: number }> {
  const { jobs: js } = jobs(2001);
  const order: string[] = [];
  const early = js.slice(0, 2000).map((j, i) => workers.verify(j, behind).then(() => order.push(`${behind} ${i}`)));
  const late = workers.verify(js[2000]!, ahead).then(() => order.push(ahead));
  whileQueued();
  await Promise.all([...early, late]);
  return { at: order.indexOf(ahead), of: order.length };
}

test('a block\'s signature goes ahead of the admissions queued before it', async () => {
  // Small chunks, so that most admissions are still queued on the main thread when the block's job arrives.
  const workers = new WorkerVerifier(1, 50_000, 4_096, 16);
  try {
    const { at, of } = await finishingPlace(workers, 'peer', 'block');
    assert.ok(at >= 0 && at < 100, `the block's job finished at position ${at} of ${of}`);
  } finally {
    await workers.close();
  }
});

test("a peer's signature goes ahead of the clients' queued before it; backlog counts what is owed", async () => {
  const workers = new WorkerVerifier(1, 50_000, 50_000, 16);
  try {
    const { at, of } = await finishingPlace(workers, 'client', 'peer', () => assert.is(workers.backlog(), 2001));
    assert.ok(at >= 0 && at < 100, `the peer's job finished at position ${at} of ${of}`);
    assert.is(workers.backlog(), 0);
  } finally {
    await workers.close();
  }
});

test('an admission a block needs moves ahead, and both callers get its verdict', async () => {
  const { jobs: js, expected } = jobs(2000);
  const workers = new WorkerVerifier(1, 50_000, 4_096, 16);
  try {
    const order: string[] = [];
    const admissions = js.map((j, i) => workers.verify(j, 'peer').then((ok) => (order.push(`peer ${i}`), ok)));
    // The block needs admission 1990 (a bad signature) and 1995 (a good one), queued near the end.
    const promoted = [1990, 1995].map((i) => workers.verify(js[i]!, 'block').then((ok) => (order.push(`block ${i}`), ok)));
    assert.equal(await Promise.all(promoted), [expected[1990], expected[1995]]);
    assert.equal(await Promise.all(admissions), expected, 'every admission still gets its own verdict');
    assert.ok(order.indexOf('peer 1995') < 100, `the promoted admission finished at ${order.indexOf('peer 1995')}`);
    assert.is(order.length, 2002);
  } finally {
    await workers.close();
  }
});

test('clients are refused first: past their share, peers\' transactions still queue, blocks\' always', async () => {
  const { jobs: js } = jobs(60);
  const workers = new WorkerVerifier(1, 50, 10);
  try {
    const pending = js.slice(0, 20).map((j) => workers.verify(j, 'peer'));
    assert.not.ok(workers.canAcceptWork('client'), 'over the client share');
    assert.ok(workers.canAcceptWork('peer'), 'under the whole bound');
    pending.push(...js.slice(20, 55).map((j) => workers.verify(j, 'peer')));
    assert.not.ok(workers.canAcceptWork('peer'), 'over the whole bound');
    assert.ok(workers.canAcceptWork('block'), 'a block is never refused');
    await Promise.all(pending);
    assert.ok(workers.canAcceptWork('client'), 'drained');
  } finally {
    await workers.close();
  }
});

test.run();
