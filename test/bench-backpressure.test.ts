// Backpressure is honoured: against a node whose pool holds only 100 transactions, the driver
// gets -32002 (pool full), backs off and sends again, and loses nothing: every transaction it
// sent is committed, and the chain's own count agrees.
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initCluster } from '../cluster/init.ts';
import { drive } from '../cluster/bench/driver.ts';
import type { RateSpec } from '../cluster/bench/rate.ts';
import { analyzeRun } from '../cluster/bench/report.ts';
import { KvWorkload } from '../cluster/bench/workloads/kv.ts';
import { GoodnessClient } from '../rpc/client.ts';
import { startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 29200;
const POOL = 100;
let dir: string;
let node: NodeProcess;
let client: GoodnessClient;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'goodness-bench-bp-'));
  await initCluster({ nodes: 1, dir, basePort: BASE_PORT, chain: 'goodness-local', machine: 'kv' });
  const configPath = join(dir, 'node0', 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.pool.maxTxs = POOL;
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  node = await startNode({ machine: 'kv', basePort: BASE_PORT, dir });
  client = new GoodnessClient(node.url);
});

test.after(async () => {
  await client?.close();
  await node?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run(rate: RateSpec, count: number) {
  const txs = await new KvWorkload().prepare({ urls: [node.url], clients: [client], chain: 'goodness-local', log: () => {} }, count);
  const before = (await client.getTotalTransactionCount()).transactions;
  const d = await drive({ urls: [node.url], txs, rate, durationSec: 30, batchMax: 200, drainTimeoutSec: 60 });
  const after = (await client.getTotalTransactionCount()).transactions;
  return { d, r: analyzeRun(d, { name: 'kv, tiny pool', workload: 'kv', validators: 1, bound: 1, boundBy: 'test' }), committedOnChain: after - before, count };
}

for (const rate of [{ kind: 'max' }, { kind: 'backlog', inFlight: 1000 }, { kind: 'rate', tps: 20_000 }] as RateSpec[]) {
  test(`${rate.kind}: a pool of ${POOL} pushes back with -32002; every transaction is still committed`, async () => {
    const { d, r, committedOnChain, count } = await run(rate, 4000);
    assert.ok(r.backpressured > 0, 'the node pushed back');
    assert.ok(d.attempts > count, `transactions were sent again (${d.attempts} attempts for ${count})`);
    assert.is(r.sent, count);
    assert.is(r.rejected, 0, JSON.stringify(r.rejectedByCode));
    assert.equal(r.unresolved, { admitted: 0, backpressured: 0, unknown: 0 });
    assert.is(r.committed, count, 'nothing lost');
    assert.is(committedOnChain, count, "the chain's own count agrees");
    assert.is(r.timeline.reduce((a, t) => a + t.backpressured, 0), r.backpressured, 'the timeline shows the pushback');
  });
}

test.run();
