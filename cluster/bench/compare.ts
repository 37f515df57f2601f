// `--compare OLD.json`: each run of the new report beside the same run of an old one, as
// ratios new / old. Runs match by name (workload and validators) and rate control. Throughput
// ratios above 1 and latency ratios below 1 are improvements; the ratio-to-bound column
// compares runs made on different machines fairly, since each is divided by its own limits.
import { readFileSync } from 'node:fs';
import { describeRate } from './rate.ts';
import type { BenchReport, RunReport } from './report.ts';

export interface RunComparison {
  name: string;
  rate: string;
  /** new / old, null when either side is missing or zero */
  committedTps: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  ratioToBound: number | null;
  note?: string;
}

const key = (r: RunReport) => `${r.name}|${describeRate(r.rate)}`;
const div = (a: number | null | undefined, b: number | null | undefined) => (a === null || a === undefined || !b ? null : Math.round((a / b) * 1000) / 1000);

export function readReport(path: string): BenchReport {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the report ${path}: ${(err as Error).message}`);
  }
  const r = value as BenchReport;
  if (!r || typeof r !== 'object' || !Array.isArray(r.runs) || !r.limits) throw new Error(`${path} is not a goodness bench report (no limits and runs)`);
  return r;
}

export function compareReports(oldReport: BenchReport, newReport: BenchReport): RunComparison[] {
  const old = new Map(oldReport.runs.map((r) => [key(r), r]));
  const oldByName = new Map(oldReport.runs.map((r) => [r.name, r]));
  return newReport.runs.map((r) => {
    const o = old.get(key(r)) ?? oldByName.get(r.name);
    const base = { name: r.name, rate: describeRate(r.rate) };
    if (!o) return { ...base, committedTps: null, p50: null, p95: null, p99: null, max: null, ratioToBound: null, note: 'not in the old report' };
    if (r.skipped || o.skipped) return { ...base, committedTps: null, p50: null, p95: null, p99: null, max: null, ratioToBound: null, note: r.skipped ? 'skipped now' : 'skipped then' };
    return {
      ...base,
      committedTps: div(r.committedTps, o.committedTps),
      p50: div(r.latencyMs?.p50, o.latencyMs?.p50),
      p95: div(r.latencyMs?.p95, o.latencyMs?.p95),
      p99: div(r.latencyMs?.p99, o.latencyMs?.p99),
      max: div(r.latencyMs?.max, o.latencyMs?.max),
      ratioToBound: div(r.ratio, o.ratio),
      note: key(r) === key(o) ? undefined : `old run used ${describeRate(o.rate)}`,
    };
  });
}

export function comparisonTable(rows: RunComparison[], oldPath: string): string {
  const f = (x: number | null) => (x === null ? '-' : `${x.toFixed(2)}x`);
  const lines = [
    `Compared with ${oldPath} (new / old; throughput above 1 and latency below 1 are better):`,
    '',
    '| run | rate control | committed tx/s | p50 | p95 | p99 | max | ratio to bound | note |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) lines.push(`| ${r.name} | ${r.rate} | ${f(r.committedTps)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.ratioToBound)} | ${r.note ?? ''} |`);
  return lines.join('\n');
}
