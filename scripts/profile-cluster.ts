// Profiles the validators of a local kv cluster under load (diagnosis only, not part of the
// suite): every node runs with --cpu-prof (profiles in /tmp/prof); the load comes from `goodness bench`.
// NO_PROF=1 runs without profiling; METRICS=regex prints matching metrics summed over the nodes.
//   npx node --import tsx scripts/profile-cluster.ts [RATE|max|backlog:N] [SECONDS] [VALIDATORS]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LocalCluster } from '../test/fixtures/cluster-process.ts';

const rate = process.argv[2] ?? '6000';
const seconds = process.argv[3] ?? '15';
const validators = Number(process.argv[4] ?? 4);
const workload = process.env.WORKLOAD ?? 'kv';
const cluster = await LocalCluster.init({ nodes: validators, basePort: 27900, machine: workload === 'goodness' ? 'goodness' : 'kv', logLevel: process.env.LOG_LEVEL ?? 'info', execArgv: [...(process.env.NO_PROF ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR ?? '/tmp/prof'}`]), ...(process.env.PROF_FLAGS ? process.env.PROF_FLAGS.split(' ') : [])] });
try {
  await cluster.startAll();
  const urls = cluster.nodes.map((n) => n.url).join(',');
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'goodness.js'), 'bench', ...(workload === 'goodness' ? ['--dir', cluster.dir] : ['--rpc', urls]), '--workload', workload, ...(rate.startsWith('backlog:') ? ['--backlog', rate.slice(8)] : ['--rate', rate]), '--duration', seconds, '--out', '/tmp/prof/bench'], { stdio: 'inherit' });
  console.log('bench exit', r.status);
  // METRICS=regex: the matching metric series, summed over the nodes (e.g. p2p bytes per channel).
  if (process.env.METRICS) {
    const match = new RegExp(process.env.METRICS);
    const sums = new Map<string, number>();
    for (const n of cluster.nodes) {
      for (const line of (await (await fetch(`${n.url}/metrics`)).text()).split('\n')) {
        if (line.startsWith('#') || !match.test(line)) continue;
        const series = line.slice(0, line.lastIndexOf(' ')).replace(/peer="\d+",?/, '');
        sums.set(series, (sums.get(series) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
      }
    }
    for (const [series, v] of sums) console.log(`metric ${series} ${v}`);
  }
} finally {
  await cluster.cleanup();
}
