// The rate controllers against a real one-node kv chain, driven over JSON-RPC as the load
// driver drives any cluster: a fixed rate is held within 5 %, a fixed backlog stays at its
// size, and the maximum rate commits everything it sends. Modest rates: the machine is shared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { drive } from '../cluster/bench/driver.ts';
import { analyzeRun } from '../cluster/bench/report.ts';
import { KvWorkload } from '../cluster/bench/workloads/kv.ts';
import { GoodnessClient } from '../rpc/client.ts';
import { startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 29100;
let node: NodeProcess;

const meta = { name: 'kv, 1 validator', workload: 'kv' as const, validators: 1, bound: 1, boundBy: 'test' };

async function prepare(count: number) {
  const client = new GoodnessClient(node.url);
  try {
    return await new KvWorkload().prepare({ urls: [node.url], clients: [client], chain: 'goodness-local', log: () => {} }, count);
  } finally {
    await client.close();
  }
}

test.before(async () => {
  node = await startNode({ machine: 'kv', basePort: BASE_PORT });
});

test.after(async () => {
  await node?.cleanup();
});

test('fixed rate: 1000 tx/s for 6 s is offered and committed within 5 %', async () => {
  const rate = 1000;
  const duration = 6;
  const d = await drive({ urls: [node.url], txs: await prepare(rate * duration), rate: { kind: 'rate', tps: rate }, durationSec: duration, drainTimeoutSec: 20 });
  const r = analyzeRun(d, meta);
  assert.is(r.rejected, 0);
  assert.is(r.committed, r.sent, 'everything sent commits');
  assert.ok(Math.abs(r.sent - rate * duration) <= rate * duration * 0.05, `sent ${r.sent} of ${rate * duration}`);
  assert.ok(Math.abs(r.sendTps - rate) <= rate * 0.05, `first sends at ${r.sendTps} tx/s`);
  assert.ok(Math.abs(r.committedTps! - rate) <= rate * 0.05, `committed ${r.committedTps} tx/s, asked ${rate}`);
  // Every full second of sending stays within 5 % too: the rate is held, not averaged out of bursts.
  for (const t of r.timeline.slice(0, duration - 1)) assert.ok(Math.abs(t.sent - rate) <= rate * 0.05, `second ${t.second}: ${t.sent} sent`);
  // The chain itself agrees on what was committed.
  const client = new GoodnessClient(node.url);
  try {
    const total = await client.getTotalTransactionCount();
    assert.ok(total.transactions >= r.committed);
  } finally {
    await client.close();
  }
});

test('fixed backlog: 300 in flight, never more, and at it while sending', async () => {
  const backlog = 300;
  const duration = 4;
  let maxPending = 0;
  const samples: number[] = [];
  const d = await drive({
    urls: [node.url],
    txs: await prepare(60_000),
    rate: { kind: 'backlog', inFlight: backlog },
    durationSec: duration,
    drainTimeoutSec: 20,
    progressEveryMs: 50,
    onProgress: (p) => {
      if (p.phase !== 'sending' || p.elapsedMs < 500) return;
      maxPending = Math.max(maxPending, p.pending);
      samples.push(p.pending);
    },
  });
  const r = analyzeRun(d, meta);
  assert.is(r.rejected, 0);
  assert.is(r.committed, r.sent);
  assert.ok(maxPending <= backlog, `at most ${backlog} in flight, saw ${maxPending}`);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  assert.ok(mean >= backlog * 0.9, `the backlog is kept full: mean ${mean.toFixed(0)} of ${backlog}`);
  // Each full second ends with the backlog in flight.
  for (const p of d.pendingBySecond.slice(1, duration - 1)) assert.ok(p >= backlog * 0.9 && p <= backlog, `pending ${p} at the end of a second`);
  assert.ok(r.committedTps! > 0);
});

test('maximum rate: as fast as the node admits, everything committed', async () => {
  const txs = await prepare(30_000);
  const d = await drive({ urls: [node.url], txs, rate: { kind: 'max' }, durationSec: 3, drainTimeoutSec: 30 });
  const r = analyzeRun(d, meta);
  assert.is(r.rejected, 0);
  assert.is(r.committed, r.sent);
  assert.equal(r.unresolved, { admitted: 0, backpressured: 0, unknown: 0 });
  assert.ok(r.sent > 3000, `sent ${r.sent}`);
  assert.ok(r.latencyMs!.p50 > 0 && r.latencyMs!.p50 <= r.latencyMs!.p95 && r.latencyMs!.p95 <= r.latencyMs!.p99 && r.latencyMs!.p99 <= r.latencyMs!.max);
});

test.run();
