// The report as one self-contained HTML page: the summary table and, per run, charts of
// throughput and latency over time. Charts are Vega-Lite specifications rendered to static SVG
// here, in Node (vega's headless SVG renderer), and inlined: the page needs no script, no
// network and no font download, so it opens offline in any browser and archives as one file.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { ed25519LimitText, type BenchReport, type RunReport } from './report.ts';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const WIDTH = 640;
const HEIGHT = 200;

/** Renders a Vega-Lite specification to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function throughputSpec(run: RunReport): TopLevelSpec {
  const values = run.timeline.flatMap((t) => [
    { second: t.second, series: 'committed', tps: t.committed },
    { second: t.second, series: 'sent', tps: t.sent },
    { second: t.second, series: 'rejected', tps: t.rejected },
    { second: t.second, series: '-32002 (pool full)', tps: t.backpressured },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Throughput: ${run.name}`, anchor: 'start' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', point: run.timeline.length < 40 },
    encoding: {
      x: { field: 'second', type: 'quantitative', title: 'seconds since the clock started' },
      y: { field: 'tps', type: 'quantitative', title: 'transactions per second' },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: ['committed', 'sent', 'rejected', '-32002 (pool full)'], range: ['#1b7837', '#2166ac', '#b2182b', '#e08214'] },
        legend: { labelLimit: 300 },
      },
    },
  };
}

function latencySpec(run: RunReport): TopLevelSpec {
  const values = run.timeline
    .filter((t) => t.committed > 0)
    .flatMap((t) => [
      { second: t.second, series: 'p50', ms: t.p50 },
      { second: t.second, series: 'p99', ms: t.p99 },
    ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Commit latency: ${run.name}`, anchor: 'start' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', point: run.timeline.length < 40 },
    encoding: {
      // the same time axis as the throughput chart above it, even when the first commits come late
      x: { field: 'second', type: 'quantitative', title: 'seconds since the clock started', scale: { domain: [0, Math.max(1, run.timeline.length - 1)] } },
      y: { field: 'ms', type: 'quantitative', title: 'ms from send to commit' },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['p50', 'p99'], range: ['#5e3c99', '#e66101'] } },
    },
  };
}

function ratioSpec(runs: RunReport[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Committed throughput as a share of each run\u2019s bound', anchor: 'start' },
    width: WIDTH,
    height: { step: 28 },
    data: { values: runs.map((r) => ({ run: r.name, ratio: r.ratio ?? 0 })) },
    mark: 'bar',
    encoding: {
      y: { field: 'run', type: 'nominal', title: null, sort: null },
      x: { field: 'ratio', type: 'quantitative', title: 'committed tx/s / bound tx/s', axis: { format: '.0%' } },
      color: { value: '#4393c3' },
    },
  };
}

function summaryTable(report: BenchReport): string {
  const rows = report.runs.map((r) => {
    if (r.skipped) return `<tr class="skipped"><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.rateLabel)}</td><td colspan="9">skipped: ${escapeHtml(r.skipped)}</td><td>${fmt(r.bound)}</td><td></td></tr>`;
    const L = r.latencyMs!;
    return `<tr><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.rateLabel)}</td><td class="n">${fmt(r.committedTps)}</td><td class="n">${fmt(L.p50, 1)}</td><td class="n">${fmt(L.p95, 1)}</td><td class="n">${fmt(L.p99, 1)}</td><td class="n">${fmt(L.max, 1)}</td><td class="n">${fmt(r.sent)}</td><td class="n">${fmt(r.committed)}</td><td class="n">${fmt(r.rejected)}</td><td class="n">${fmt(r.backpressured)}</td><td class="n" title="${escapeHtml(r.boundBy)}">${fmt(r.bound)}</td><td class="n">${r.ratio === null ? '-' : r.ratio.toFixed(3)}</td></tr>`;
  });
  return `<table><thead><tr><th>run</th><th>rate control</th><th>committed tx/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>sent</th><th>committed</th><th>rejected</th><th>-32002</th><th>bound tx/s</th><th>ratio</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function runDetails(r: RunReport): string {
  const items = [
    `Nodes: ${r.nodes.map(escapeHtml).join(', ')}`,
    `Duration ${r.durationSec} s; first send to last commit ${fmt(r.elapsedSec, 2)} s; ${fmt(r.blocks)} blocks; first sends ${fmt(r.sendTps)} tx/s.`,
    `Bound: ${fmt(r.bound)} tx/s (${escapeHtml(r.boundBy)}).`,
    `Latency min ${fmt(r.latencyMs?.min, 1)} ms, mean ${fmt(r.latencyMs?.avg, 1)} ms.`,
  ];
  const codes = Object.entries(r.rejectedByCode);
  if (codes.length) items.push(`Rejected by code: ${codes.map(([k, v]) => `${escapeHtml(k)}: ${fmt(v)}${r.rejectionSamples[k] ? ` (“${escapeHtml(r.rejectionSamples[k]!)}”)` : ''}`).join('; ')}.`);
  const unresolved = r.unresolved.admitted + r.unresolved.backpressured + r.unresolved.unknown;
  items.push(`Unresolved when the run stopped waiting: ${fmt(unresolved)}${unresolved ? ` (admitted, not committed: ${r.unresolved.admitted}; still refused with -32002: ${r.unresolved.backpressured}; outcome unknown: ${r.unresolved.unknown})` : ''}.`);
  if (r.transportErrors) items.push(`Transport errors (sent again): ${fmt(r.transportErrors)}.`);
  for (const n of r.notes) items.push(escapeHtml(n));
  return `<ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
}

export async function renderHtml(report: BenchReport): Promise<string> {
  const l = report.limits;
  const ran = report.runs.filter((r) => !r.skipped);
  const sections: string[] = [];
  if (ran.length > 1) sections.push(`<figure class="chart" data-chart="ratio">${await renderSvg(ratioSpec(ran))}</figure>`);
  for (const r of report.runs) {
    if (r.skipped) {
      sections.push(`<section><h2>${escapeHtml(r.name)}</h2><p class="skipped">Skipped: ${escapeHtml(r.skipped)}</p></section>`);
      continue;
    }
    sections.push(
      `<section><h2>${escapeHtml(r.name)} <small>${escapeHtml(r.rateLabel)}</small></h2>` +
        `<figure class="chart" data-chart="throughput">${await renderSvg(throughputSpec(r))}</figure>` +
        `<figure class="chart" data-chart="latency">${await renderSvg(latencySpec(r))}</figure>` +
        runDetails(r) +
        '</section>',
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>goodness bench report, ${escapeHtml(report.createdAt)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.skipped td, p.skipped { color: #777; }
h2 small { font-weight: normal; color: #555; }
figure.chart { margin: 1em 0; }
</style>
</head>
<body>
<h1>goodness bench</h1>
<p>${escapeHtml(report.createdAt)}. Driver's machine: ${l.cores} cores (${escapeHtml(l.cpu)}), Node ${escapeHtml(l.node)}.
Limits measured in the same run: ${ed25519LimitText(l, fmt)}; BLS aggregate ${fmt(l.blsAggregateVerifyPerSec)} verify/s; RocksDB ${fmt(l.rocksdbPutsPerSec)} batched puts/s; libp2p loopback ${fmt(l.libp2pMsgsPerSec)} msg/s.</p>
<p>Latency is from the send of the request that got a transaction admitted to the arrival of its block's newBlocks notice; percentiles are nearest-rank. Throughput is committed transactions over the time from the first send to the last commit.</p>
${summaryTable(report)}
${sections.join('\n')}
</body>
</html>
`;
}
