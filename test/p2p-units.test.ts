// The pure parts of p2p/: frame decoding (any chunking, limits checked before buffering), sync
// frame headers, bounded send queues and their drop rule, reconnect backoff, peer scores, and
// the transaction batch format. No network here; the libp2p tests are the other p2p-* files.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelay } from '../p2p/backoff.ts';
import { decodeSyncFrame, encodeFrames, FrameDecoder, FrameError, frameHeader, syncHeader, SyncKind } from '../p2p/framing.ts';
import { DEFAULT_SCORE_OPTIONS, PeerScore } from '../p2p/score.ts';
import { SendQueue } from '../p2p/send-queue.ts';
import { decodeTxBatch, decodeVouchBatch, encodeTxBatch, encodeVouchBatch, TxGossip } from '../p2p/tx-gossip.ts';
import type { Channel, MessageHandler } from '../p2p/types.ts';

const bytes = (...xs: number[]) => new Uint8Array(xs);

function splitAt(buf: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
}

test('frames survive any chunking: what goes in comes out, in order', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (bodies, cuts) => {
      const wire = encodeFrames(bodies.map((b) => [b]));
      const decoder = new FrameDecoder(300);
      const got = splitAt(wire, cuts).flatMap((chunk) => decoder.push(chunk));
      assert.equal(got, bodies);
      assert.is(decoder.pendingBytes, 0);
    }),
    { numRuns: 300 },
  );
});

test('a frame body made of several parts is one frame', () => {
  const wire = encodeFrames([[bytes(1, 2), bytes(3)], [bytes()]]);
  assert.equal([...wire], [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0]);
  assert.equal(new FrameDecoder(10).push(wire), [bytes(1, 2, 3), bytes()]);
});

test('decoded frames are copies: reusing the input chunk does not change them', () => {
  const chunk = encodeFrames([[bytes(7, 7, 7)]]);
  const [frame] = new FrameDecoder(10).push(chunk);
  chunk.fill(0);
  assert.equal(frame, bytes(7, 7, 7));
});

test('an oversized frame is refused as soon as its header is in, before the body is buffered', () => {
  const decoder = new FrameDecoder(1000);
  assert.equal(decoder.push(frameHeader(1000).subarray(0, 2)), []);
  const ok = decoder.push(frameHeader(1000).subarray(2));
  assert.equal(ok, []);
  assert.is(decoder.pendingBytes, 0, 'only the header was consumed');

  const bad = new FrameDecoder(1000);
  try {
    bad.push(frameHeader(1001));
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, FrameError);
    assert.is((err as FrameError).reason, 'oversized_frame');
  }
  assert.is(bad.pendingBytes, 0, 'nothing kept after the fault');
  // 4 GiB claimed by random garbage: refused without allocating
  assert.throws(() => new FrameDecoder(4 << 20).push(bytes(0xff, 0xff, 0xff, 0xff, 1, 2, 3)), (e: unknown) => e instanceof FrameError);
});

test('a partial frame is held, and counted as pending bytes', () => {
  const decoder = new FrameDecoder(100);
  const wire = encodeFrames([[new Uint8Array(50)]]);
  assert.equal(decoder.push(wire.subarray(0, 30)), []);
  assert.is(decoder.pendingBytes, 26, 'header consumed, 26 body bytes held');
  assert.is(decoder.push(wire.subarray(30)).length, 1);
  assert.is(decoder.pendingBytes, 0);
});

test('sync frames: header round trip; short or unknown kinds are malformed', () => {
  const body = new Uint8Array([...syncHeader(SyncKind.response, 0xdeadbeef), 9, 8]);
  const frame = decodeSyncFrame(body);
  assert.is(frame.kind, SyncKind.response);
  assert.is(frame.id, 0xdeadbeef);
  assert.equal(frame.payload, bytes(9, 8));
  for (const bad of [bytes(), bytes(1, 0, 0), bytes(4, 0, 0, 0, 1), bytes(255, 0, 0, 0, 0, 1)]) {
    try {
      decodeSyncFrame(bad);
      assert.unreachable(`${bad} should be malformed`);
    } catch (err) {
      assert.is((err as FrameError).reason, 'malformed_frame');
    }
  }
});

test('send queue: bounded by count and bytes, drops the oldest, reports what it dropped', () => {
  const q = new SendQueue({ maxMessages: 3, maxBytes: 100 });
  const msg = (n: number, size = 10) => ({ parts: [new Uint8Array(size).fill(n)], bytes: size });
  for (let i = 0; i < 3; i++) assert.equal(q.push(msg(i)), []);
  const dropped = q.push(msg(3));
  assert.is(dropped.length, 1);
  assert.is(dropped[0]!.parts[0]![0], 0, 'the oldest went');
  assert.is(q.length, 3);
  // bytes: a 90-byte message forces out everything older
  const dropped2 = q.push(msg(4, 90));
  assert.is(dropped2.length, 2);
  assert.is(q.bytes, 100);
  assert.equal(
    [q.shift(), q.shift()].map((m) => m!.parts[0]![0]),
    [3, 4],
  );
  assert.is(q.shift(), undefined);
  assert.is(q.bytes, 0);
  // a single message larger than maxBytes still goes out once the queue is empty
  assert.equal(q.push(msg(5, 500)), []);
  assert.is(q.length, 1);
  assert.is(q.clear().length, 1);
  assert.is(q.length, 0);
});

test('send queue: long runs of push/shift stay consistent (compaction)', () => {
  const q = new SendQueue({ maxMessages: 10_000, maxBytes: 1e9 });
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) q.push({ parts: [], bytes: next++ % 7 });
    for (let i = 0; i < 90; i++) assert.is(q.shift()!.bytes, expect++ % 7);
  }
  assert.is(q.length, 500);
  assert.is(q.peek()!.bytes, expect % 7);
});

test('backoff: doubles per attempt, capped, jittered into [step/2, step]', () => {
  const opts = { baseMs: 100, maxMs: 5000 };
  assert.is(backoffDelay(0, opts, () => 0), 50);
  assert.is(backoffDelay(0, opts, () => 1), 100);
  assert.is(backoffDelay(3, opts, () => 1), 800);
  assert.is(backoffDelay(40, opts, () => 1), 5000);
  assert.is(backoffDelay(40, opts, () => 0), 2500);
  fc.assert(
    fc.property(fc.nat(100), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
      const d = backoffDelay(attempt, opts, () => r);
      return d >= 50 && d <= 5000;
    }),
  );
});

test('score: faults lower it, time restores it, the threshold bans for the cool-down, then a fresh start', () => {
  const opts = { ...DEFAULT_SCORE_OPTIONS, coolDownMs: 1000, recoveryPerSecond: 10 };
  const s = new PeerScore(opts, 0);
  assert.is(s.penaltyFor('oversized_frame'), 40);
  assert.is(s.penaltyFor('bad_vote_signature'), opts.defaultPenalty);
  assert.not.ok(s.lower(40, 0));
  assert.is(s.current(0), 60);
  assert.is(s.current(2000), 80, '10 points a second');
  assert.is(s.current(10_000), 100, 'never above the initial score');
  assert.not.ok(s.lower(60, 10_000));
  assert.ok(s.lower(50, 10_000), 'crossing the threshold bans');
  assert.ok(s.isBanned(10_500));
  assert.not.ok(s.lower(50, 10_500), 'no second ban while banned');
  assert.not.ok(s.isBanned(11_000));
  s.unban(11_000);
  assert.is(s.current(11_000), 100);
});

test('tx batches: round trip, and every malformed shape is refused', () => {
  const txs = [bytes(1), new Uint8Array(300).fill(2), bytes(3, 3)];
  assert.equal(decodeTxBatch(encodeTxBatch(txs)), txs);
  assert.equal(decodeTxBatch(encodeTxBatch([])), []);
  const good = encodeTxBatch(txs);
  assert.is(decodeTxBatch(good.subarray(0, good.length - 1)), null, 'truncated');
  assert.is(decodeTxBatch(new Uint8Array([...good, 0])), null, 'trailing byte');
  assert.is(decodeTxBatch(bytes(0, 0)), null, 'shorter than the count');
  assert.is(decodeTxBatch(bytes(0xff, 0xff, 0xff, 0xff)), null, 'absurd count');
  assert.is(decodeTxBatch(encodeTxBatch([bytes()])), null, 'empty transaction');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
      const out = decodeTxBatch(junk);
      return out === null || encodeTxBatch(out).length === junk.length;
    }),
  );
});

/**
 * TxGossip over a one-node stand-in transport (no libp2p needed to check batching rules; the
 * cluster test runs it over real libp2p).
 */
function fakeTransport() {
  const sent: Uint8Array[] = [];
  const penalties: [number, string][] = [];
  let handler: MessageHandler | undefined;
  return {
    sent,
    penalties,
    deliver: (from: number, body: Uint8Array) => handler!(from, body),
    broadcast: (channel: Channel, b: Uint8Array) => {
      assert.is(channel, 'txs');
      sent.push(b);
      return 3;
    },
    onMessage: (channel: Channel, h: MessageHandler) => {
      assert.is(channel, 'txs');
      handler = h;
      return () => (handler = undefined);
    },
    penalize: (index: number, reason: string) => void penalties.push([index, reason]),
  };
}

test('tx gossip: flushes by count, by bytes and by time; drops transactions too big for a batch', async () => {
  const t = fakeTransport();
  const gossip = new TxGossip(t, { onTx: () => {}, maxBatchTxs: 3, maxBatchBytes: 100, flushMs: 30 });
  for (let i = 0; i < 3; i++) gossip.add(bytes(i + 1));
  assert.is(t.sent.length, 1, 'count limit flushes at once');
  assert.equal(decodeTxBatch(t.sent[0]!), [bytes(1), bytes(2), bytes(3)]);
  gossip.add(new Uint8Array(50));
  gossip.add(new Uint8Array(50));
  assert.is(t.sent.length, 2, 'the second 50-byte tx would pass 100 bytes: the first goes alone');
  assert.is(decodeTxBatch(t.sent[1]!)!.length, 1);
  gossip.add(new Uint8Array(200));
  assert.is(gossip.stats().oversizedDropped, 1);
  await new Promise((r) => setTimeout(r, 60));
  assert.is(t.sent.length, 3, 'the timer flushed the waiting tx');
  gossip.stop();
  assert.is(gossip.stats().txsSent, 5);
});

test('tx gossip: a batch flushed by count stops the timer, so the next batch gets its full wait', async () => {
  const t = fakeTransport();
  const gossip = new TxGossip(t, { onTx: () => {}, maxBatchTxs: 3, flushMs: 200 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 3; i++) gossip.add(bytes(i + 1));
  assert.is(t.sent.length, 1);
  await sleep(100);
  gossip.add(bytes(4));
  await sleep(150);
  assert.is(t.sent.length, 1, 'the first batch\'s timer (due at 200 ms) was stopped with it');
  await sleep(150);
  assert.is(t.sent.length, 2, 'the second batch went out 200 ms after its first transaction');
  gossip.stop();
});

test('tx gossip: hands each received tx to onTx, does not re-gossip, penalizes malformed batches', () => {
  const t = fakeTransport();
  const got: [number, number][] = [];
  const gossip = new TxGossip(t, { onTx: (tx, from) => got.push([from, tx[0]!]) });
  t.deliver(2, encodeTxBatch([bytes(5), bytes(6)]));
  assert.equal(got, [
    [2, 5],
    [2, 6],
  ]);
  assert.is(t.sent.length, 0, 'received transactions are not gossiped again');
  t.deliver(1, bytes(0, 0, 0, 9));
  assert.equal(t.penalties, [[1, 'malformed_tx_batch']]);
  assert.equal(gossip.stats(), { batchesSent: 0, txsSent: 0, batchesReceived: 1, txsReceived: 2, malformedBatches: 1, oversizedDropped: 0, vouchesSent: 0, vouchesReceived: 0 });
  gossip.stop();
});

test('vouch messages: round trip; told apart from transaction batches, the empty one included; malformed shapes refused', () => {
  const hashes = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const body = encodeVouchBatch(hashes);
  assert.is(body.length, 4 + 64, 'the tag and 32 bytes a vouch: no transaction bytes');
  assert.equal(decodeVouchBatch(body), hashes);
  assert.is(decodeTxBatch(body), null, 'never read as transactions');
  assert.is(decodeVouchBatch(encodeTxBatch([new Uint8Array(32).fill(1)])), null, 'a one-transaction batch is not a vouch');
  assert.is(decodeVouchBatch(encodeTxBatch([])), null, 'nor the empty batch');
  assert.is(decodeVouchBatch(body.subarray(0, body.length - 1)), null, 'a partial hash');
  assert.throws(() => encodeVouchBatch([new Uint8Array(31)]), /32-byte/);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      const out = decodeVouchBatch(junk);
      return out === null || (junk.length === 4 + 32 * out.length && decodeTxBatch(junk) === null);
    }),
  );
});

test('tx gossip: vouches go out after the transactions waiting with them, come in to onVouch; a malformed vouch message is penalised', async () => {
  const t = fakeTransport();
  const vouched: [number, number][] = [];
  const gossip = new TxGossip(t, { onTx: () => {}, onVouch: (h, from) => vouched.push([from, h[0]!]), flushMs: 20 });
  gossip.vouch(new Uint8Array(32).fill(7));
  gossip.add(bytes(1));
  await new Promise((r) => setTimeout(r, 50));
  assert.is(t.sent.length, 2, 'one flush, two messages');
  assert.equal(decodeTxBatch(t.sent[0]!), [bytes(1)]);
  assert.equal(decodeVouchBatch(t.sent[1]!), [new Uint8Array(32).fill(7)]);
  assert.throws(() => gossip.vouch(new Uint8Array(20)), /32-byte/);

  t.deliver(2, encodeVouchBatch([new Uint8Array(32).fill(8), new Uint8Array(32).fill(9)]));
  assert.equal(vouched, [
    [2, 8],
    [2, 9],
  ]);
  t.deliver(3, new Uint8Array([0, 0, 0, 0, 1, 2, 3]));
  assert.equal(t.penalties, [[3, 'malformed_vouch_batch']]);
  const stats = gossip.stats();
  assert.equal([stats.vouchesSent, stats.vouchesReceived, stats.malformedBatches], [1, 2, 1]);
  gossip.stop();
});

test.run();
