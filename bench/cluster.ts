// npm run bench:cluster — issue 3's cluster benchmark, with the kv machine, on this machine:
//   1. the machine's limits (as `npm run bench` measures them);
//   2. one validator at max rate: the one-node figure;
//   3. four validators at max rate: committed tx/s, p50/p99 (target: >= 10,000 tx/s);
//   4. four validators at a fixed rate of half what step 3 committed (target: p99 < 1 s);
//   5. n = 7 and n = 10 at max rate, and each at the fixed rate of step 4, so that latency at
//      equal load compares across n.
// Each run gets a fresh cluster (`cluster init` + `cluster start` in a temp folder), stopped and
// removed afterwards, on failure and on Ctrl-C too. A cluster that does not start is
// reported as skipped, with its reason. The closing table puts each run beside the one-node
// figure with pass/fail for the two targets; report.json (spec/cli.md) and report.html follow.
//   npm run bench:cluster                         15 s per run, n = 1, 4, 7, 10 (5 to 10 minutes)
//   npm run bench:cluster -- --n 1,4 --duration 20
//   npm run bench:cluster -- --quick              smoke run: n = 1 and 4, 3 s each, 300 tx/s
// Flags (environment): --duration S (BENCH_DURATION, 15), --n LIST (BENCH_N, 1,4,7,10),
//   --rate max|TPS (BENCH_RATE: the top runs' rate, max), --fixed-rate TPS (BENCH_FIXED_RATE:
//   instead of half the 4-validator figure), --base-port P (BENCH_BASE_PORT, 30200),
//   --out DIR (BENCH_OUT, bench-out/cluster-<time>), --quick (BENCH_QUICK=1), --compare OLD.json,
//   --warmup S (BENCH_WARMUP, 5; 0 in quick mode): seconds of load on each fresh cluster first, not measured
import { parseArgs } from 'node:util';
import { clusterTable, judgeTargets, oneNodeFigure, type ClusterRow } from '../cluster/bench/cluster-table.ts';
import { compareReports, comparisonTable, readReport } from '../cluster/bench/compare.ts';
import { limitsLine, measureLimits, type Limits } from '../cluster/bench/limits.ts';
import { BenchCluster } from '../cluster/bench/local-cluster.ts';
import { defaultOutDir, writeReport } from '../cluster/bench/output.ts';
import { describeRate, parseRateSpec, type RateSpec } from '../cluster/bench/rate.ts';
import { REPORT_VERSION, runNotes, type BenchReport } from '../cluster/bench/report.ts';
import { MAX_NODES } from '../cluster/init.ts';

const USAGE = `usage: npm run bench:cluster -- [--quick] [--duration S] [--n 1,4,7,10] [--rate max|TPS] [--fixed-rate TPS]
                                [--warmup S] [--base-port P] [--out DIR] [--compare OLD.json]`;
const QUICK_RATE = 300;
const PORTS_PER_CLUSTER = 40;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    n: { type: 'string' },
    rate: { type: 'string' },
    'fixed-rate': { type: 'string' },
    'base-port': { type: 'string' },
    out: { type: 'string' },
    compare: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function positive(text: string, what: string, integer = false): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isSafeInteger(n))) {
    console.error(`${what} must be a positive ${integer ? 'whole ' : ''}number, not ${JSON.stringify(text)}.\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

function option(flag: string | undefined, env: string): string | undefined {
  return flag ?? process.env[env];
}

const QUICK = flags.quick ?? ['1', 'true'].includes(process.env.BENCH_QUICK ?? '');
const DURATION = positive(option(flags.duration, 'BENCH_DURATION') ?? (QUICK ? '3' : '15'), '--duration');
const warmupText = option(flags.warmup, 'BENCH_WARMUP') ?? (QUICK ? '0' : '5');
const WARMUP = warmupText.trim() === '0' ? 0 : positive(warmupText, '--warmup');
/** The warm-up's rate when the run itself has none below saturation (a top-rate run): a backlog left by it would weigh on the measured run. */
const WARMUP_RATE = 2_000;
const BASE_PORT = positive(option(flags['base-port'], 'BENCH_BASE_PORT') ?? '30200', '--base-port', true);
const SIZES = [...new Set((option(flags.n, 'BENCH_N') ?? (QUICK ? '1,4' : '1,4,7,10')).split(',').map((s) => positive(s.trim(), '--n', true)))].sort((a, b) => a - b);
if (SIZES.some((n) => n > MAX_NODES)) {
  console.error(`--n: a local cluster has at most ${MAX_NODES} validators.`);
  process.exit(2);
}
let TOP_RATE: RateSpec;
try {
  TOP_RATE = parseRateSpec(option(flags.rate, 'BENCH_RATE') ?? (QUICK ? String(QUICK_RATE) : 'max'), '--rate');
} catch (err) {
  console.error(`${(err as Error).message}.\n${USAGE}`);
  process.exit(2);
}
const fixedRateText = option(flags['fixed-rate'], 'BENCH_FIXED_RATE');
const FIXED_RATE_GIVEN = fixedRateText === undefined ? null : positive(fixedRateText, '--fixed-rate');
const DRAIN_TIMEOUT_SEC = QUICK ? 20 : 60;
const OUT = option(flags.out, 'BENCH_OUT') ?? defaultOutDir().replace('bench-out/', 'bench-out/cluster-');

const nameOf = (n: number, role: ClusterRow['role']) => `kv, ${n} validator${n === 1 ? '' : 's'}${role === 'fixed' ? ', equal load' : ''}`;

/** The fixed rate of the equal-load runs: given, or half of what 4 validators committed at the top rate. */
let fixedRate: number | null = FIXED_RATE_GIVEN;

/**
 * One run on a fresh cluster of its own: a top-rate run can leave a backlog in the pools (or a
 * stalled chain) that would weigh on the next run's latency, which must compare across n.
 */
async function benchOne(n: number, role: ClusterRow['role'], index: number, limits: Limits): Promise<ClusterRow> {
  const name = nameOf(n, role);
  console.log(`\n${name}:`);
  // tps 0 marks an equal-load run that has no rate to run at (it is then skipped)
  const rate: RateSpec = role === 'fixed' ? { kind: 'rate', tps: fixedRate ?? 0 } : TOP_RATE;
  const run = { name, rate, durationSec: DURATION, limits, drainTimeoutSec: DRAIN_TIMEOUT_SEC };
  const cluster = await BenchCluster.create({ id: `cluster-kv-${n}`, machine: 'kv', validators: n, basePort: BASE_PORT + index * PORTS_PER_CLUSTER });
  try {
    if (role === 'fixed' && fixedRate === null) {
      const reason = 'no fixed rate: the 4-validator run at the top rate committed nothing or did not run (give --fixed-rate)';
      console.log(`${name}: skipped: ${reason}`);
      return { role, run: cluster.skippedRun(run, reason) };
    }
    const notStarted = await cluster.start();
    if (notStarted) {
      console.log(`${name}: skipped: ${notStarted}`);
      return { role, run: cluster.skippedRun(run, notStarted) };
    }
    if (WARMUP > 0) {
      // A fresh node runs its code unoptimised for its first seconds (V8 tiers up as code gets
      // hot): in 20 s runs those seconds set the p99. Load first, then measure, as YCSB and JMH
      // do; the warm-up's transactions are all committed (drained) before the clock starts.
      const warmupRate: RateSpec = rate.kind === 'rate' ? rate : { kind: 'rate', tps: Math.min(WARMUP_RATE, fixedRate ?? WARMUP_RATE) };
      await cluster.run({ ...run, name: `${name} (warm-up, not measured)`, rate: warmupRate, durationSec: WARMUP });
    }
    const report = await cluster.run(run);
    if (n === 4 && role === 'max' && FIXED_RATE_GIVEN === null && report.committedTps) fixedRate = Math.max(1, Math.round(report.committedTps / 2));
    return { role, run: report };
  } finally {
    await cluster.close();
  }
}

const oldReport = flags.compare ? readReport(flags.compare) : null;
console.log(
  `goodness bench:cluster${QUICK ? ' (quick)' : ''}: kv, n = ${SIZES.join(', ')}; ${DURATION} s per run; top runs at ${describeRate(TOP_RATE)}; ` +
    `equal-load runs at ${FIXED_RATE_GIVEN === null ? 'half of what 4 validators commit' : `${FIXED_RATE_GIVEN} tx/s`}; ` +
    (WARMUP > 0 ? `each cluster warmed up for ${WARMUP} s first (not measured)` : 'no warm-up'),
);
const limits = await measureLimits({ seconds: QUICK ? 0.3 : 1, log: (l) => console.log(l) });
console.log(limitsLine(limits));
const plan = SIZES.flatMap((n): { n: number; role: ClusterRow['role'] }[] => (n === 1 ? [{ n, role: 'one-node' }] : [{ n, role: 'max' }, { n, role: 'fixed' }]));
const rows: ClusterRow[] = [];
for (const [i, { n, role }] of plan.entries()) rows.push(await benchOne(n, role, i, limits));

const targets = judgeTargets(rows);
const report: BenchReport & { oneNodeTps: number | null; fixedRateTps: number | null; warmupSec: number; targets: typeof targets } = {
  tool: 'goodness bench',
  version: REPORT_VERSION,
  createdAt: new Date().toISOString(),
  limits,
  runs: rows.map((r) => r.run),
  oneNodeTps: oneNodeFigure(rows),
  fixedRateTps: fixedRate,
  warmupSec: WARMUP,
  targets,
};
const paths = await writeReport(report, OUT);
console.log(`\n${limitsLine(limits)}\n`);
console.log([clusterTable(rows, targets), ...runNotes(report.runs)].join('\n'));
if (oldReport && flags.compare) console.log('\n' + comparisonTable(compareReports(oldReport, report), flags.compare));
console.log(`\nHTML report: ${paths.html}`);
console.log(paths.json);
