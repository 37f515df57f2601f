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
import { parseArgs } from 'node:util';
import { compareReports, comparisonTable, readReport } from '../cluster/bench/compare.ts';
import { BenchCluster } from '../cluster/bench/local-cluster.ts';
import { limitsLine, measureLimits, type Limits } from '../cluster/bench/limits.ts';
import { defaultOutDir, writeReport } from '../cluster/bench/output.ts';
import { describeRate, parseRateSpec } from '../cluster/bench/rate.ts';
import { markdownTable, REPORT_VERSION, type BenchReport, type RunReport } from '../cluster/bench/report.ts';

const { values: args } = parseArgs({ options: { compare: { type: 'string' } } });
const DURATION = Number(process.env.BENCH_DURATION ?? 20);
const BASE_PORT = Number(process.env.BENCH_BASE_PORT ?? 27600);
const USERS = Number(process.env.BENCH_USERS ?? 2000);
const ONLY = process.env.BENCH_RUNS?.split(',').map((s) => s.trim()).filter(Boolean);
/**
 * max (default) measures capacity; a fixed rate (BENCH_RATE=2000) measures latency below
 * saturation; a fixed backlog (BENCH_RATE=backlog:10000) keeps latency bounded by Little's law.
 */
const RATE = parseRateSpec(process.env.BENCH_RATE ?? 'max', 'BENCH_RATE');

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

async function runScenario(s: Scenario, index: number, limits: Limits): Promise<RunReport> {
  const name = nameOf(s);
  console.log(`\n${name}:`);
  const cluster = await BenchCluster.create({ id: s.id, machine: s.machine, validators: s.validators, basePort: BASE_PORT + index * 40, users: USERS });
  try {
    const run = { name, rate: RATE, durationSec: DURATION, limits };
    const notStarted = await cluster.start();
    if (notStarted) {
      console.log(`${name}: skipped: ${notStarted}`);
      return cluster.skippedRun(run, notStarted);
    }
    return await cluster.run(run);
  } finally {
    await cluster.close();
  }
}

const oldReport = args.compare ? readReport(args.compare) : null;
console.log(`goodness bench suite: ${DURATION} s per run, ${describeRate(RATE)}`);
const limits = await measureLimits({ log: (l) => console.log(l) });
console.log(limitsLine(limits));
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
