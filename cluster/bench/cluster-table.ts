// The closing table of `npm run bench:cluster`: each run beside the one-node figure, and the two
// targets of issue 3 judged on the four-validator runs (at least 10,000 kv tx/s at max rate;
// p99 commit latency under 1 s at half of what that run committed).
import type { RunReport } from './report.ts';

/** Why a run is in the plan: the one-node figure, a cluster at its top rate, or a cluster at the shared fixed rate. */
export type ClusterRole = 'one-node' | 'max' | 'fixed';

export interface ClusterRow {
  role: ClusterRole;
  run: RunReport;
}

export interface TargetVerdict {
  target: string;
  /** name of the run judged; null when the plan had no such run */
  run: string | null;
  value: number | null;
  /** null when the run was skipped, or did not measure what the target is about */
  pass: boolean | null;
  why?: string;
}

export const TARGET_VALIDATORS = 4;
export const TARGET_TPS = 10_000;
export const TARGET_P99_MS = 1_000;

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** committed tx/s of the run / the one-node figure, rounded to 0.01; null when either is missing. */
export function ratioToOneNode(run: RunReport, oneNodeTps: number | null): number | null {
  if (run.skipped || run.committedTps === null || !oneNodeTps) return null;
  return Math.round((run.committedTps / oneNodeTps) * 100) / 100;
}

export function oneNodeFigure(rows: ClusterRow[]): number | null {
  const run = rows.find((r) => r.role === 'one-node')?.run;
  return run && !run.skipped && run.committedTps ? run.committedTps : null;
}

/** Transactions sent and never committed nor refused: a latency percentile over the committed ones leaves them out. */
const unresolvedOf = (r: RunReport) => r.unresolved.admitted + r.unresolved.backpressured + r.unresolved.unknown;

const TPS_TARGET = `${TARGET_VALIDATORS} validators commit >= ${fmt(TARGET_TPS)} kv tx/s`;
const LATENCY_TARGET = `${TARGET_VALIDATORS} validators: p99 < ${fmt(TARGET_P99_MS)} ms at half that rate`;

function judgeThroughput(run: RunReport): TargetVerdict {
  const base = { target: TPS_TARGET, run: run.name, value: run.committedTps };
  if (run.rate.kind !== 'max') return { ...base, pass: null, why: `the run offered ${run.rateLabel}, not the maximum rate` };
  return { ...base, pass: (run.committedTps ?? 0) >= TARGET_TPS };
}

function judgeLatency(run: RunReport): TargetVerdict {
  const lost = unresolvedOf(run);
  // A p99 over the committed transactions hides the ones that never committed: past 1 % of
  // those sent, the true p99 is beyond the end of the run.
  if (run.committed === 0 || lost > run.sent / 100) return { target: LATENCY_TARGET, run: run.name, value: null, pass: false, why: `${fmt(lost)} of ${fmt(run.sent)} transactions never committed` };
  const p99 = run.latencyMs?.p99 ?? null;
  return { target: LATENCY_TARGET, run: run.name, value: p99, pass: p99 !== null && p99 < TARGET_P99_MS };
}

/** The two targets, judged on the 4-validator runs of `rows`. */
export function judgeTargets(rows: ClusterRow[]): TargetVerdict[] {
  const judge = (target: string, role: ClusterRole, verdict: (run: RunReport) => TargetVerdict): TargetVerdict => {
    const run = rows.find((r) => r.role === role && r.run.validators === TARGET_VALIDATORS)?.run;
    if (!run) return { target, run: null, value: null, pass: null, why: `no ${TARGET_VALIDATORS}-validator run: give --n with ${TARGET_VALIDATORS}` };
    if (run.skipped) return { target, run: run.name, value: null, pass: null, why: `skipped: ${run.skipped}` };
    return verdict(run);
  };
  return [judge(TPS_TARGET, 'max', judgeThroughput), judge(LATENCY_TARGET, 'fixed', judgeLatency)];
}

const offered = (r: RunReport) => (r.rate.kind === 'rate' ? (r.rate.tps > 0 ? `${fmt(r.rate.tps)} tx/s` : '-') : r.rate.kind === 'max' ? 'max' : `backlog ${fmt(r.rate.inFlight)}`);
const verdictText = (v: TargetVerdict) => `${v.target}: ${v.pass === null ? 'not judged' : v.pass ? 'pass' : 'FAIL'}${v.why ? ` (${v.why})` : ''}`;

/** The table in Markdown: one row per run, the target verdicts in the row they judge. */
export function clusterTable(rows: ClusterRow[], targets: TargetVerdict[]): string {
  const oneNode = oneNodeFigure(rows);
  const lines = [
    `One-node figure: ${oneNode === null ? '- (the one-node run did not happen)' : `${fmt(oneNode)} kv tx/s`}.`,
    '',
    '| run | validators | offered rate | committed tx/s | p50 ms | p99 ms | vs one node | target |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const { run } of rows) {
    const target = targets.filter((t) => t.run === run.name).map(verdictText).join('; ');
    if (run.skipped) {
      lines.push(`| ${run.name} | ${run.validators} | ${offered(run)} | skipped: ${run.skipped.replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | ${target} |`);
      continue;
    }
    const ratio = ratioToOneNode(run, oneNode);
    // a run that committed nothing has no latency (its summary is all zeros)
    const latency = run.committed > 0 ? run.latencyMs : null;
    // the percentiles are over the committed transactions: say when many never committed
    const lost = unresolvedOf(run);
    const p99 = `${fmt(latency?.p99, 1)}${lost > run.sent / 100 ? ` (${fmt(lost)} never committed)` : ''}`;
    lines.push(
      `| ${run.name} | ${run.validators} | ${offered(run)} | ${fmt(run.committedTps)} | ${fmt(latency?.p50, 1)} | ${p99} | ${ratio === null ? '-' : `${ratio.toFixed(2)}x`} | ${target} |`,
    );
  }
  const unplaced = targets.filter((t) => t.run === null);
  if (unplaced.length > 0) lines.push('', ...unplaced.map((t) => `- ${verdictText(t)}`));
  return lines.join('\n');
}
