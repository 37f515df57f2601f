// npm run bench — the standard scenarios on this machine, in one report: the machine's own
// limits measured in the same run (Ed25519 verifications per second per core, BLS aggregate
// verifications per second, RocksDB batched writes per second, loopback libp2p messages per
// second), then kv and goodness on one node, kv and goodness on four validators, each at the
// maximum rate the cluster admits, and the ratio of each result to its limit. Clusters are made
// with `cluster init` and started with `cluster start` in temp folders, and stopped after each
// run. A run whose cluster cannot start is reported as skipped, with the reason.
//   npm run bench                           everything, 20 s per run
//   npm run bench -- --compare OLD.json     and print each result as a ratio to an older report
// Options (environment): BENCH_DURATION (20 s), BENCH_RATE (max, a fixed tx/s, or backlog:N),
//   BENCH_OUT (bench-out/suite-<time>), BENCH_BASE_PORT (27600), BENCH_USERS (2000),
//   BENCH_RUNS (e.g. "kv-1,goodness-4": only those)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initCluster } from '../cluster/init.ts';
import { listNodes, startCluster, stopCluster } from '../cluster/local.ts';
import { compareReports, comparisonTable, readReport } from '../cluster/bench/compare.ts';
import { measureLimits, type Limits } from '../cluster/bench/limits.ts';
import { defaultOutDir, writeReport } from '../cluster/bench/output.ts';
import { describeRate, type RateSpec } from '../cluster/bench/rate.ts';
import { markdownTable, REPORT_VERSION, skippedRun, type BenchReport, type RunReport } from '../cluster/bench/report.ts';
import { allLocal, benchRun, boundOf } from '../cluster/bench/run.ts';
import { GoodnessWorkload } from '../cluster/bench/workloads/goodness.ts';
import { KvWorkload } from '../cluster/bench/workloads/kv.ts';
import { WorkloadUnavailable, type Workload } from '../cluster/bench/workloads/types.ts';

const { values: args } = parseArgs({ options: { compare: { type: 'string' } } });
const DURATION = Number(process.env.BENCH_DURATION ?? 20);
const BASE_PORT = Number(process.env.BENCH_BASE_PORT ?? 27600);
const USERS = Number(process.env.BENCH_USERS ?? 2000);
const ONLY = process.env.BENCH_RUNS?.split(',').map((s) => s.trim()).filter(Boolean);
/**
 * max (default) measures capacity; a fixed rate (BENCH_RATE=2000) measures latency below
 * saturation; a fixed backlog (BENCH_RATE=backlog:10000) keeps latency bounded by Little's law.
 */
function rateFromEnv(text = 'max'): RateSpec {
  if (text === 'max') return { kind: 'max' };
  const backlog = /^backlog:(\d+)$/.exec(text);
  if (backlog && Number(backlog[1]) > 0) return { kind: 'backlog', inFlight: Number(backlog[1]) };
  if (Number(text) > 0) return { kind: 'rate', tps: Number(text) };
  throw new Error(`BENCH_RATE is max, a number of transactions per second, or backlog:N; not ${JSON.stringify(text)}`);
}
const RATE = rateFromEnv(process.env.BENCH_RATE);

interface Scenario {
  id: string;
  machine: 'kv' | 'goodness';
  validators: number;
}

const SCENARIOS: Scenario[] = [
  { id: 'kv-1', machine: 'kv', validators: 1 },
  { id: 'goodness-1', machine: 'goodness', validators: 1 },
  { id: 'kv-4', machine: 'kv', validators: 4 },
  { id: 'goodness-4', machine: 'goodness', validators: 4 },
];

const nameOf = (s: Scenario) => `${s.machine}, ${s.validators} validator${s.validators === 1 ? '' : 's'}`;

/**
 * Nodes that never wrote their pid file (still starting when another one failed) are found by
 * their command line, which names this run's unique temp folder, and stopped by pid.
 */
function killStragglers(dir: string): void {
  for (const entry of readdirSync('/proc', { withFileTypes: true })) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(`${dir}/node`)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

/** Why a cluster did not start, in one line: what `cluster start` said, and the error in the node's log. */
export function shortReason(err: unknown): string {
  const lines = ((err as Error).message ?? String(err)).split('\n');
  const what = lines[0]!.replace(/\. See .*$/, '').replace(/\.$/, '');
  const error = lines.find((l) => /^\s*(\w*Error|UserError)\b[:]/.test(l)) ?? lines.find((l) => /"level":(50|60)/.test(l));
  return `the cluster did not start: ${what}${error ? ` (${error.trim().slice(0, 240)})` : ''}`;
}

/** The cluster folder of the run under way, so that Ctrl-C stops its nodes too. */
let current: string | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    const dir = current;
    console.log(`\n${signal}: stopping${dir ? ` the cluster in ${dir}` : ''} ...`);
    void (dir ? stopCluster(dir, 3_000).catch(() => []) : Promise.resolve()).finally(() => {
      if (dir) {
        killStragglers(dir);
        rmSync(dir, { recursive: true, force: true });
      }
      process.exit(130);
    });
  });
}

async function runScenario(s: Scenario, index: number, limits: Limits): Promise<RunReport> {
  const dir = mkdtempSync(join(tmpdir(), `goodness-suite-${s.id}-`));
  current = dir;
  const basePort = BASE_PORT + index * 40;
  const name = nameOf(s);
  let started = false;
  try {
    await initCluster({ nodes: s.validators, dir, basePort, chain: `goodness-bench-${s.id}`, machine: s.machine });
    const workload: Workload =
      s.machine === 'kv' ? new KvWorkload() : new GoodnessWorkload({ governorSecretKey: JSON.parse(readFileSync(join(dir, 'accounts', 'governor.json'), 'utf8')).secretKey, users: USERS });
    console.log(`\n${name}: goodness cluster init --nodes ${s.validators} --machine ${s.machine}; goodness cluster start ...`);
    try {
      started = true;
      await startCluster(dir, { timeoutMs: 60_000, logLevel: 'warn' });
    } catch (err) {
      const reason = shortReason(err);
      console.log(`${name}: skipped: ${reason}`);
      const { bound, boundBy } = boundOf(workload, limits, s.validators, true);
      return skippedRun({ name, workload: s.machine, validators: s.validators, bound, boundBy }, RATE, DURATION, reason);
    }
    const urls = listNodes(dir).map((n) => n.rpc);
    try {
      return await benchRun({ urls, workload, rate: RATE, durationSec: DURATION, drainTimeoutSec: 60, limits, name, progress: { plainEverySec: 5 } });
    } catch (err) {
      // The other runs still happen and the report is still written; a failure sets the exit code.
      const reason = err instanceof WorkloadUnavailable ? err.message : `failed: ${(err as Error).message}`;
      if (!(err instanceof WorkloadUnavailable)) process.exitCode = 1;
      console.log(`${name}: ${err instanceof WorkloadUnavailable ? 'skipped' : 'FAILED'}: ${reason}`);
      const { bound, boundBy } = boundOf(workload, limits, s.validators, allLocal(urls));
      return skippedRun({ name, workload: s.machine, validators: s.validators, bound, boundBy }, RATE, DURATION, reason);
    }
  } finally {
    if (started) {
      await stopCluster(dir).catch(() => []);
      killStragglers(dir);
    }
    rmSync(dir, { recursive: true, force: true });
    current = null;
  }
}

const oldReport = args.compare ? readReport(args.compare) : null;
console.log(`goodness bench suite: ${DURATION} s per run, ${describeRate(RATE)}`);
const limits = await measureLimits({ log: (l) => console.log(l) });
console.log(
  `machine: ${limits.cores} cores (${limits.cpu}), Node ${limits.node}; Ed25519 ${limits.ed25519VerifyPerSecPerCore.toLocaleString('en-US')} verify/s per core; BLS aggregate ${limits.blsAggregateVerifyPerSec.toLocaleString('en-US')}/s; RocksDB ${limits.rocksdbPutsPerSec.toLocaleString('en-US')} puts/s; libp2p ${limits.libp2pMsgsPerSec?.toLocaleString('en-US') ?? '-'} msg/s`,
);
const runs: RunReport[] = [];
for (const [i, s] of SCENARIOS.entries()) {
  if (ONLY && !ONLY.includes(s.id)) continue;
  runs.push(await runScenario(s, i, limits));
}
const report: BenchReport = { tool: 'goodness bench', version: REPORT_VERSION, createdAt: new Date().toISOString(), limits, runs };
const out = process.env.BENCH_OUT ?? defaultOutDir().replace('bench-out/', 'bench-out/suite-');
const paths = await writeReport(report, out);
console.log('\n' + markdownTable(report));
if (oldReport && args.compare) console.log('\n' + comparisonTable(compareReports(oldReport, report), args.compare));
console.log(`\nHTML report: ${paths.html}`);
console.log(paths.json);
