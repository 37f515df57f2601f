// Two validators on real libp2p: consensus messages overtake a backlog of transaction batches,
// the oldest batches are dropped (and counted) when the tx queue is full, and a benchmark-like
// run that prints msg/s for 200-byte consensus messages and a ping-pong round trip. The printed
// figures are not asserted (a shared machine is noisy); what is asserted is that nothing was
// lost or reordered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { P2PNode } from '../p2p/node.ts';
import { startLocalCluster, waitFor, waitFullMesh } from '../p2p/testing.ts';

const tick = () => new Promise((r) => setImmediate(r));

test('consensus first: a vote overtakes queued tx batches; a full tx queue drops its oldest batches', async () => {
  const batchBytes = 256 * 1024;
  const cluster = await startLocalCluster(2, { tuning: { queues: { consensus: { maxMessages: 1000, maxBytes: 1 << 20 }, txs: { maxMessages: 64, maxBytes: 16 * batchBytes }, sync: { maxMessages: 16, maxBytes: 1 << 20 } } } });
  try {
    await waitFullMesh(cluster.nodes);
    const [a, b] = cluster.nodes as [P2PNode, P2PNode];
    const batches: number[] = [];
    let batchesWhenVoteArrived = -1;
    b.onMessage('txs', (_from, bytes) => batches.push(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0)));
    b.onMessage('consensus', (_from, bytes) => {
      if (bytes[0] === 1) batchesWhenVoteArrived = batches.length;
    });
    // open both streams first, so the race below is about queues, not stream setup
    a.send(1, 'consensus', new Uint8Array([0]));
    a.send(1, 'txs', new Uint8Array(4).fill(255));
    await waitFor(() => batches.length === 1, 3_000, 'warm-up');
    batches.length = 0;

    const total = 100;
    for (let i = 0; i < total; i++) {
      const batch = new Uint8Array(batchBytes);
      new DataView(batch.buffer).setUint32(0, i);
      a.send(1, 'txs', batch);
    }
    a.send(1, 'consensus', new Uint8Array([1]));
    const dropped = () => a.stats().peers[0]!.dropped.txs.queue_full ?? 0;
    await waitFor(() => batches.length + dropped() === total, 10_000, 'every batch delivered or dropped');
    console.log(`    vote arrived after ${batchesWhenVoteArrived} of ${batches.length} delivered tx batches (${dropped()} dropped as the queue was full)`);
    assert.ok(batchesWhenVoteArrived >= 0 && batchesWhenVoteArrived <= 3, `the vote waited for ${batchesWhenVoteArrived} batches`);
    assert.ok(dropped() > 0, 'the tx queue overflowed');
    assert.ok(batches.every((id, i) => i === 0 || id > batches[i - 1]!), 'batches arrive in order');
    assert.is(batches.at(-1), total - 1, 'the newest batch is never the one dropped');
    assert.is(a.stats().peers[0]!.dropped.consensus.queue_full, undefined, 'no consensus message was dropped');
  } finally {
    await cluster.stop();
  }
});

test('benchmark-like: 200-byte consensus messages between two nodes (printed, not asserted)', async () => {
  const cluster = await startLocalCluster(2);
  try {
    await waitFullMesh(cluster.nodes);
    const [a, b] = cluster.nodes as [P2PNode, P2PNode];
    let received = 0;
    let outOfOrder = 0;
    b.onMessage('consensus', (_from, bytes) => {
      if (new DataView(bytes.buffer, bytes.byteOffset).getUint32(0) !== received) outOfOrder++;
      received++;
    });
    const count = 200_000;
    const started = performance.now();
    for (let sent = 0; sent < count; ) {
      // pace on the queue, as a real sender would, instead of overflowing it
      while (a.queueDepth(1, 'consensus') > 5_000) await tick();
      for (let i = 0; i < 1_000 && sent < count; i++, sent++) {
        const msg = new Uint8Array(200);
        new DataView(msg.buffer).setUint32(0, sent);
        a.send(1, 'consensus', msg);
      }
      await tick();
    }
    await waitFor(() => received === count, 30_000, 'every message');
    const seconds = (performance.now() - started) / 1000;
    console.log(`    one-way: ${count} x 200 B in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)} msg/s (${((count * 200) / seconds / 1e6).toFixed(1)} MB/s), both nodes in this one process`);
    assert.is(received, count);
    assert.is(outOfOrder, 0);

    // ping-pong: one message in flight at a time, so this is latency, not throughput
    a.onMessage('consensus', (_from, bytes) => void pong(bytes));
    b.onMessage('consensus', (_from, bytes) => void b.send(0, 'consensus', bytes));
    const rounds = 2_000;
    const rtts: number[] = [];
    let pong: (bytes: Uint8Array) => void = () => {};
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        pong = () => resolve();
        a.send(1, 'consensus', new Uint8Array(200));
      });
      rtts.push(performance.now() - t0);
    }
    rtts.sort((x, y) => x - y);
    const pct = (p: number) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]!.toFixed(3);
    console.log(`    round trip (200 B): median ${pct(0.5)} ms, p99 ${pct(0.99)} ms over ${rounds} rounds`);
    assert.is(rtts.length, rounds);
  } finally {
    await cluster.stop();
  }
});

test.run();
