// Issue 6, "shown by": four kv validator processes under load, /metrics scraped before and after
// on every node, the figures moving as they should: height rises and agrees with getBlockNumber;
// the commit latency histogram counts about every committed transaction; one RocksDB block write
// per block; consensus messages of each voting round sent and received; the pool drains to 0;
// three peers each. Then SIGKILL of the leader: on the three survivors the view rises and
// goodness_view_changes_total{cause="timeout"} with it, as the log and `cluster status` say too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterStatus } from '../cluster/local.ts';
import { LocalCluster, SteadyLoad, kvTx, sleep, type ClusterNode } from './fixtures/cluster-process.ts';

const BASE_PORT = 29900;
const VIEW_TIMEOUT_MS = 1_000;
const LOAD_MS = 4_000;
/** per node, every LOAD_INTERVAL_MS: about 4 × 20 / 0.1 = 800 tx/s offered in all (a shared 2-core machine) */
const LOAD_BATCH = 20;
const LOAD_INTERVAL_MS = 100;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, the lines this test reads (no escapes in our label values). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** the sum of every series of `name` whose labels include `where` */
  get(name: string, where: Record<string, string> = {}): number {
    return this.samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
  }
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

async function scrape(n: ClusterNode): Promise<Scrape> {
  const res = await fetch(`${n.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return new Scrape(parse(await res.text()));
}

/** Batches of kv writes to every node of `targets` until stopped; returns the hashes admitted. */
function load(targets: ClusterNode[], prefix: string): { stop(): Promise<number> } {
  let stopped = false;
  let admitted = 0;
  const runs = targets.map(async (n) => {
    for (let b = 0; !stopped; b++) {
      const answers = await n.client
        .batch(Array.from({ length: LOAD_BATCH }, (_, j) => ({ method: 'sendTransaction' as const, params: [kvTx(`${prefix}-${n.name}-${b}-${j}`, String(j))] as [string] })))
        .catch(() => []);
      admitted += answers.filter((a) => a.ok).length;
      await sleep(LOAD_INTERVAL_MS);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(runs);
      return admitted;
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | null | false>, timeoutMs: number, tails: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${tails()}`);
    await sleep(200);
  }
}

test('metrics move as they should under load, and view changes are counted by cause when the leader dies', async () => {
  const started = Date.now();
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: VIEW_TIMEOUT_MS } });
  let steady: SteadyLoad | null = null;
  try {
    await cluster.startAll();
    const { nodes } = cluster;
    const tails = () => cluster.logTails(15);
    await until('every node connected to the three others', async () => (await Promise.all(nodes.map(scrape))).every((s) => s.get('goodness_p2p_peers_connected') === 3), 15_000, tails);

    const before = await Promise.all(nodes.map(scrape));
    const driver = load(nodes, 'load');
    await sleep(LOAD_MS);
    const admitted = await driver.stop();
    assert.ok(admitted > 500, `the load got in: ${admitted} transactions admitted`);

    // Every admitted transaction commits: the pools drain, on every node.
    const after = await until(
      'pools drained on every node',
      async () => {
        const s = await Promise.all(nodes.map(scrape));
        return s.every((x) => x.get('goodness_pool_transactions') === 0) ? s : null;
      },
      30_000,
      tails,
    );
    console.log(`  ${admitted} transactions admitted in ${LOAD_MS} ms; pools empty ${Math.round((Date.now() - started) / 1000)} s into the test`);

    for (const [i, n] of nodes.entries()) {
      const [b, a] = [before[i]!, after[i]!];
      const d = (name: string, where: Record<string, string> = {}) => a.get(name, where) - b.get(name, where);
      const blockNumber = await n.client.getBlockNumber();
      const height = a.get('goodness_height');
      assert.ok(d('goodness_height') > 0, `${n.name}: height rose`);
      assert.ok(Math.abs(blockNumber - height) <= 1, `${n.name}: goodness_height ${height} is getBlockNumber ${blockNumber} within a block`);

      // Each transaction that waited in this node's pool is observed once, when its block commits.
      // One gossiped here after its block committed never waited (its admission finds it
      // committed), so the count is at most the committed count and, with gossip, close to it.
      const committed = d('goodness_transactions_committed_total');
      const observed = d('goodness_tx_commit_latency_seconds_count');
      assert.ok(committed >= admitted, `${n.name}: ${committed} committed of ${admitted} admitted`);
      assert.ok(observed <= committed && observed >= 0.5 * committed, `${n.name}: latency observed ${observed} times for ${committed} committed`);
      assert.is(a.get('goodness_tx_commit_latency_seconds_bucket', { le: '+Inf' }), a.get('goodness_tx_commit_latency_seconds_count'));
      const mean = d('goodness_tx_commit_latency_seconds_sum') / observed;
      assert.ok(mean > 0 && mean < 30, `${n.name}: mean commit latency ${mean.toFixed(3)} s`);

      // One RocksDB batch per committed block; votes and views are written as consensus records.
      assert.is(d('goodness_db_write_seconds_count', { kind: 'block' }), d('goodness_height'), `${n.name}: one block write per block`);
      assert.ok(d('goodness_db_write_seconds_count', { kind: 'consensus' }) >= d('goodness_height'), `${n.name}: consensus records written for every block`);
      assert.ok(d('goodness_db_write_seconds_sum', { kind: 'block' }) > 0);

      // Every voting round went out to the three peers and came back from them. The leader's
      // PRE-PREPARE is its PREPARE (it sends no separate one).
      for (const type of ['prepare', 'precommit', 'commit']) {
        for (const direction of ['sent', 'received']) {
          const types = type === 'prepare' && direction === 'sent' ? ['prepare', 'pre-prepare'] : [type];
          const sum = (name: string) => types.reduce((acc, t) => acc + d(name, { direction, type: t }), 0);
          const msgs = sum('goodness_consensus_messages_total');
          assert.ok(msgs >= d('goodness_height'), `${n.name}: ${direction} ${type}: ${msgs} for ${d('goodness_height')} blocks`);
          assert.ok(sum('goodness_consensus_message_bytes_total') > msgs * 32, `${n.name}: ${direction} ${type} bytes`);
        }
      }
      assert.ok(a.get('goodness_consensus_messages_total', { type: 'pre-prepare' }) > 0, `${n.name}: proposals sent or received`);
      assert.is(a.get('goodness_p2p_peers_connected'), 3, `${n.name}: three peers`);
      assert.is(a.get('goodness_syncing'), 0, `${n.name}: not syncing`);
      assert.ok(a.get('goodness_sync_target_height') >= height, `${n.name}: sync target is at least its height`);
      assert.ok(a.has('goodness_sync_blocks_total'));
      console.log(
        `  ${n.name}: height ${b.get('goodness_height')} -> ${height}, ${committed} committed, latency observed ${observed} (mean ${(mean * 1000).toFixed(0)} ms), ` +
          `${d('goodness_db_write_seconds_count', { kind: 'consensus' })} consensus writes, view changes ${a.get('goodness_view_changes_total')}`,
      );
    }

    // SIGKILL the leader under a light load to the others (the view timer runs only with work pending).
    const status = await nodes[0]!.client.getConsensusStatus();
    const leader = cluster.node(status.leader);
    const survivors = nodes.filter((n) => n !== leader);
    const beforeKill = await Promise.all(survivors.map(scrape));
    steady = new SteadyLoad(() => survivors, 'after-kill');
    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    await until(
      'every survivor in a higher view, after a timeout',
      async () => {
        const s = await Promise.all(survivors.map(scrape));
        const moved = s.every((x, i) => x.get('goodness_view') > beforeKill[i]!.get('goodness_view'));
        const timeouts = s.reduce((sum, x, i) => sum + x.get('goodness_view_changes_total', { cause: 'timeout' }) - beforeKill[i]!.get('goodness_view_changes_total', { cause: 'timeout' }), 0);
        return moved && timeouts > 0;
      },
      20_000,
      tails,
    );
    const afterKill = await Promise.all(survivors.map(scrape));
    for (const [i, n] of survivors.entries()) {
      const [b, a] = [beforeKill[i]!, afterKill[i]!];
      assert.ok(a.get('goodness_view') > b.get('goodness_view'), `${n.name}: view ${b.get('goodness_view')} -> ${a.get('goodness_view')}`);
      assert.ok(a.get('goodness_view_changes_total') > b.get('goodness_view_changes_total'), `${n.name}: view changes counted`);
      assert.ok(a.get('goodness_consensus_messages_total', { direction: 'sent', type: 'view-change' }) > b.get('goodness_consensus_messages_total', { direction: 'sent', type: 'view-change' }), `${n.name}: VIEW-CHANGE sent`);
    }
    const timeoutLogs = survivors.flatMap((n) => n.logRecords().filter((r) => r.msg === 'view change' && r.cause === 'timeout' && r.component === 'consensus'));
    assert.ok(timeoutLogs.length > 0, 'a survivor logged its view change with cause timeout');
    assert.ok(timeoutLogs.every((r) => (r.to as number) > (r.from as number)));
    console.log(`  leader ${leader.name} killed; survivors' views ${afterKill.map((s) => s.get('goodness_view')).join(',')}, causes ${JSON.stringify(afterKill.map((s) => Object.fromEntries(['timeout', 'view-change-timeout', 'join', 'new-view'].map((c) => [c, s.get('goodness_view_changes_total', { cause: c })]))))} after ${Date.now() - killedAt} ms`);

    // `cluster status` says the same at a glance.
    const table = await clusterStatus(cluster.dir);
    const dead = table.find((s) => s.name === leader.name)!;
    assert.equal([dead.pid, dead.height, dead.viewChanges], [null, null, null], 'the killed node answers nothing');
    for (const n of survivors) {
      const s = table.find((x) => x.name === n.name)!;
      assert.is(s.role, 'validator');
      assert.is(s.validatorIndex, n.index);
      assert.ok((s.viewChanges ?? 0) >= 1, `${n.name}: view changes in cluster status`);
      assert.ok(s.leader !== null && s.leader !== leader.index, `${n.name}: the leader is no longer the dead one (${s.leader})`);
    }
    console.log(`  ${Math.round((Date.now() - started) / 1000)} s in all`);
  } finally {
    await steady?.stop();
    await cluster.cleanup();
  }
});

test.run();
