// Observability of one real node (`goodness node` in a child process, kv machine): the Grafana
// dashboard in deploy/grafana uses only metrics that a live node's GET /metrics exports (so it
// cannot drift from the code); every log line is JSON with level, time, name and component, and
// --log-level decides what is written; `cluster status` reads role, leader, last commit, view
// changes and sync state from the node.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statusTable } from '../cluster/cli.ts';
import { clusterStatus } from '../cluster/local.ts';
import { GoodnessClient } from '../rpc/client.ts';
import { kvTx } from './fixtures/cluster-process.ts';
import { startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 29920;
const DASHBOARD = join(import.meta.dirname, '..', 'deploy', 'grafana', 'goodness-dashboard.json');

/** What issue 6 asks operators to see: each must be on the dashboard. */
const REQUIRED = [
  'goodness_height',
  'goodness_view',
  'goodness_view_changes_total',
  'goodness_tx_commit_latency_seconds_bucket',
  'goodness_pool_transactions',
  'goodness_p2p_peers_connected',
  'goodness_p2p_sent_bytes',
  'goodness_p2p_received_messages',
  'goodness_consensus_messages_total',
  'goodness_consensus_message_bytes_total',
  'goodness_consensus_dropped_messages',
  'goodness_db_write_seconds_bucket',
  'goodness_sync_target_height',
  'goodness_syncing',
  'goodness_sync_blocks_total',
];

interface Panel {
  type: string;
  id: number;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

/**
 * The names a query can use, from the `# TYPE` lines of Prometheus text (declared even while a
 * labelled metric has no series yet, such as per-peer ones on a node with no peers): a histogram
 * is queried as NAME_bucket, NAME_sum and NAME_count.
 */
function exportedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (!m) continue;
    const [, name, type] = m;
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) out.add(name + suffix);
    else out.add(name!);
  }
  return out;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.is(res.status, 200);
  return res.text();
}

function logLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`a log line that is not JSON: ${l}`);
      }
    });
}

let node: NodeProcess;
let client: GoodnessClient;

test.before(async () => {
  node = await startNode({ machine: 'kv', basePort: BASE_PORT, chain: 'goodness-observability', logLevel: 'debug' });
  client = new GoodnessClient(node.url, { timeoutMs: 10_000 });
  // A few commits, so that histograms and the last-commit time have values.
  for (let i = 0; i < 3; i++) await client.sendTransactionAndWait(kvTx(`obs-${i}`, String(i)), 10_000);
});

test.after(async () => {
  await client?.close();
  await node?.cleanup();
});

test('the Grafana dashboard is importable and uses only metrics a live node exports', async () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { schemaVersion: number; uid: string; title: string; templating: { list: { name: string; type: string; query: unknown }[] }; panels: Panel[] };
  assert.ok(dash.schemaVersion >= 36 && dash.schemaVersion <= 41, `schemaVersion ${dash.schemaVersion}`);
  assert.ok(dash.uid && dash.title);
  const ds = dash.templating.list.find((v) => v.type === 'datasource');
  assert.equal([ds?.name, ds?.query], ['datasource', 'prometheus'], 'a Prometheus datasource variable');
  assert.is(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, 'panel ids are unique');

  const names = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.is(p.datasource?.uid, '${datasource}', `${p.title} queries the chosen datasource`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets!) {
      assert.ok(t.expr.trim().length > 0 && t.refId, `${p.title}: a query with an expr and refId`);
      for (const m of t.expr.matchAll(/\bgoodness_[a-z0-9_]+/g)) names.add(m[0]);
    }
  }
  const live = exportedNames(await scrape(node.url));
  const missing = [...names].filter((n) => !live.has(n));
  assert.equal(missing, [], `every metric the dashboard queries is exported (missing: ${missing.join(', ')})`);
  const unused = REQUIRED.filter((n) => !names.has(n));
  assert.equal(unused, [], `the dashboard shows what operators watch (not shown: ${unused.join(', ')})`);
  console.log(`  ${dash.panels.filter((p) => p.type !== 'row').length} panels, ${names.size} metrics, all exported`);
});

test('cluster status reads role, leader, last commit, view changes and sync state from the node', async () => {
  const [s] = await clusterStatus(node.dir);
  assert.ok(s);
  const height = await client.getBlockNumber();
  // spec/cli.md's keys stay, with their meaning.
  for (const k of ['name', 'dir', 'rpc', 'p2p', 'pid', 'height', 'view', 'peers', 'pending']) assert.ok(k in s!, `key ${k}`);
  assert.equal([s!.name, s!.rpc, s!.height, s!.view, s!.peers, s!.pending], ['node0', node.url, height, 0, 0, 0]);
  assert.equal([s!.role, s!.validatorIndex, s!.leader, s!.viewChanges, s!.syncing, s!.highestKnownHeight], ['validator', 0, 0, 0, false, height]);
  assert.ok(s!.lastCommitAgeMs !== null && s!.lastCommitAgeMs >= 0 && s!.lastCommitAgeMs < 60_000, `last commit ${s!.lastCommitAgeMs} ms ago`);
  const table = statusTable([s!]);
  console.log(table.replace(/^/gm, '  '));
  assert.match(table.split('\n')[1]!, /^node0\s+\d+\s+0\s+\d+\s+0\s+0\s+\d+(\.\d)?s\s+0\s+no\s+0\s+0\s+http/);
});

test('logs: every line is JSON with level, time, name and component; debug shows commits; warn hides info', async () => {
  await client.sendTransactionAndWait(kvTx('obs-log', 'x'), 10_000);
  const lines = logLines(node.output());
  for (const l of lines) {
    for (const k of ['level', 'time', 'name', 'component', 'msg']) assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
    assert.is(l.name, 'node0');
  }
  assert.ok(lines.some((l) => l.level === 20 && l.msg === 'block committed'), 'debug: each commit is logged');
  assert.ok(lines.some((l) => l.level === 30 && l.component === 'node' && l.msg === 'node started'));

  // The same node again at warn: nothing below warn is written.
  await node.stop();
  const before = node.output().length;
  const quiet = await startNode({ machine: 'kv', basePort: BASE_PORT, dir: node.dir, logLevel: 'warn' });
  try {
    const quietClient = new GoodnessClient(quiet.url, { timeoutMs: 10_000 });
    await quietClient.sendTransactionAndWait(kvTx('obs-quiet', 'y'), 10_000);
    await quietClient.close();
    await quiet.stop();
    const written = logLines(quiet.output());
    assert.equal(written.filter((l) => (l.level as number) < 40), [], 'no debug or info line at --log-level warn');
    assert.is(node.output().length, before, 'the first process wrote nothing more after it stopped');
  } finally {
    await quiet.stop();
  }
});

test.run();
