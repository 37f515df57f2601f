// Profiles the validators of a local kv cluster under load (diagnosis only, not part of the
// suite): every node runs with --cpu-prof (profiles in /tmp/prof); the load comes from `goodness bench`.
// NO_PROF=1 runs without profiling; METRICS=regex prints matching metrics summed over the nodes.
// PERF=S: `perf record -a` for S seconds from 3 s after the clock starts (nodes get
// --perf-basic-prof), then the machine's CPU by thread and category (scripts/perf-categories.ts);
// perf.data stays in PERF_DIR (/tmp/prof). WARMUP=S: S seconds of load at 2,000 tx/s first, not measured.
// DRIVER_PROF=1: the load driver runs with --cpu-prof too (its profile in PROF_DIR).
// ALLOC=1: what the nodes allocate per committed transaction, while the clock runs, by file and
// function (V8's sampling heap profiler, freed objects included: scripts/alloc-sample.mjs).
//   npx node --import tsx scripts/profile-cluster.ts [RATE|max|backlog:N] [SECONDS] [VALIDATORS]
//   NO_PROF=1 PERF=15 WORKLOAD=goodness npx node --import tsx scripts/profile-cluster.ts max 20 4
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../test/fixtures/cluster-process.ts';
import { allocReport } from './alloc-report.ts';

const rate = process.argv[2] ?? '6000';
const seconds = process.argv[3] ?? '15';
const validators = Number(process.argv[4] ?? 4);
const workload = process.env.WORKLOAD ?? 'kv';
const perfSeconds = process.env.PERF ? Number(process.env.PERF) : 0;
const perfDir = process.env.PERF_DIR ?? '/tmp/prof';
/** where the nodes' and the driver's profiles go, and the allocation samples */
const profDir = process.env.PROF_DIR ?? '/tmp/prof';
/** the driver's report (always here, whatever PROF_DIR says) */
const BENCH_OUT = '/tmp/prof/bench';
if (process.env.ALLOC) {
  mkdirSync(profDir, { recursive: true });
  for (const f of readdirSync(profDir)) if (f.startsWith('alloc.')) rmSync(join(profDir, f));
  process.env.ALLOC_DIR = profDir;
}
/** The sampled nodes' pids (each writes alloc.PID.ready); SIGUSR2 starts their sampling, the next stops it. */
const signalSampledNodes = () => {
  for (const f of readdirSync(profDir)) if (f.endsWith('.ready')) process.kill(Number(f.split('.')[1]), 'SIGUSR2');
};
const cluster = await LocalCluster.init({ nodes: validators, basePort: 27900, machine: workload === 'goodness' ? 'goodness' : 'kv', logLevel: process.env.LOG_LEVEL ?? 'info', execArgv: [...(process.env.NO_PROF ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`]), ...(perfSeconds ? ['--perf-basic-prof'] : []), ...(process.env.ALLOC ? ['--import', join(import.meta.dirname, 'alloc-sample.mjs')] : []), ...(process.env.PROF_FLAGS ? process.env.PROF_FLAGS.split(' ') : [])] });
try {
  await cluster.startAll();
  const urls = cluster.nodes.map((n) => n.url).join(',');
  const benchArgs = (rateArgs: string[], secs: string) => [join(import.meta.dirname, '..', 'bin', 'goodness.js'), 'bench', ...(workload === 'goodness' ? ['--dir', cluster.dir] : ['--rpc', urls]), '--workload', workload, ...rateArgs, '--duration', secs, '--out', BENCH_OUT];
  if (process.env.WARMUP) spawnSync(process.execPath, benchArgs(['--rate', '2000'], process.env.WARMUP), { stdio: 'ignore' });
  const driverFlags = process.env.DRIVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const bench = spawn(process.execPath, [...driverFlags, ...benchArgs(rate.startsWith('backlog:') ? ['--backlog', rate.slice(8)] : ['--rate', rate], seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let perf: ReturnType<typeof spawn> | null = null;
  let allocStarted = false;
  bench.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (process.env.ALLOC && !allocStarted && chunk.toString().includes('the clock starts')) {
      allocStarted = true;
      signalSampledNodes();
    }
    if (perfSeconds && !perf && chunk.toString().includes('the clock starts')) {
      mkdirSync(perfDir, { recursive: true });
      perf = spawn('sh', ['-c', `sleep 3 && perf record -F 499 -a -g -o ${join(perfDir, 'perf.data')} -- sleep ${perfSeconds}`], { stdio: 'inherit' });
    }
  });
  const [status] = (await once(bench, 'exit')) as [number | null];
  if (perf) {
    const recorder: ReturnType<typeof spawn> = perf;
    if (recorder.exitCode === null) await once(recorder, 'exit');
    const script = spawnSync('sh', ['-c', `perf script -i ${join(perfDir, 'perf.data')} -F pid,tid,comm,ip,sym,dso 2>/dev/null | ${process.execPath} --import tsx ${join(import.meta.dirname, 'perf-categories.ts')}`], { stdio: 'inherit' });
    if (script.status !== 0) console.log('perf: no breakdown (is perf installed: apt-get install linux-perf?)');
  }
  console.log('bench exit', status);
  if (process.env.ALLOC) {
    signalSampledNodes();
    const ready = readdirSync(profDir).filter((f) => f.endsWith('.ready'));
    const files = ready.map((f) => join(profDir, f.replace('.ready', '.heapprofile')));
    for (let waited = 0; waited < 20_000 && !files.every((f) => existsSync(f)); waited += 200) await new Promise((r) => setTimeout(r, 200));
    const committed = (JSON.parse(readFileSync(join(BENCH_OUT, 'report.json'), 'utf8')) as { runs: { committed: number }[] }).runs[0]!.committed;
    for (const line of allocReport(files.filter((f) => existsSync(f)), committed)) console.log(line);
  }
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
