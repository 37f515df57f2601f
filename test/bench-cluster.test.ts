// `npm run bench:cluster` in its smoke mode, as a child process with real clusters (n = 1 and
// n = 4 at a fixed low rate, 2 s a run): the closing table and report.json hold the three runs
// with commits and sane figures, the equal-load rate is half of what 4 validators committed, the
// targets are judged, and every cluster folder and node process is gone when it exits. The
// targets are also judged on hand-made runs, for the cases a smoke run cannot reach.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterTable, judgeTargets, type ClusterRow } from '../cluster/bench/cluster-table.ts';
import { skippedRun, type RunReport } from '../cluster/bench/report.ts';

const ROOT = join(import.meta.dirname, '..');
const BASE_PORT = 29800;
const QUICK_RATE = 300;
const DURATION_SEC = 2;

function benchCluster(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'cluster.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    // SIGINT first so that the script stops its clusters; SIGKILL if it does not end.
    const interrupt = setTimeout(() => child.kill('SIGINT'), 90_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('close', (code) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Processes whose command line names `dir`: a node left running would show here. */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

/** A finished run with the given figures (the other fields do not matter to the targets). */
function finishedRun(name: string, validators: number, o: Partial<RunReport>): RunReport {
  const base = skippedRun({ name, workload: 'kv', validators, boundBy: 'test' }, o.rate ?? { kind: 'max' }, 15, 'x');
  return { ...base, skipped: undefined, ...o };
}

test('targets: judged on the 4-validator runs; a half-rate run that left transactions uncommitted fails the p99 target', () => {
  const latency = (p99: number) => ({ p50: p99 / 2, p95: p99, p99, max: p99, avg: p99 / 2, min: 1 });
  const one = finishedRun('kv, 1 validator', 1, { committedTps: 8000, committed: 120_000, sent: 120_000, latencyMs: latency(400) });
  const top = finishedRun('kv, 4 validators', 4, { committedTps: 10_400, committed: 156_000, sent: 156_000, latencyMs: latency(9000) });
  const half = (o: Partial<RunReport>) => finishedRun('kv, 4 validators, equal load', 4, { rate: { kind: 'rate', tps: 5200 }, sent: 78_000, ...o });

  const passing: ClusterRow[] = [{ role: 'one-node', run: one }, { role: 'max', run: top }, { role: 'fixed', run: half({ committedTps: 5100, committed: 78_000, latencyMs: latency(800) }) }];
  assert.equal(judgeTargets(passing).map((t) => t.pass), [true, true]);
  const table = clusterTable(passing, judgeTargets(passing));
  assert.match(table, /\| kv, 4 validators \| 4 \| max \| 10,400 \| 4,500\.0 \| 9,000\.0 \| 1\.30x \| 4 validators commit >= 10,000 kv tx\/s: pass \|/);

  // Committed nothing: the latency summary is all zeros, which must not read as a pass.
  const stalled: ClusterRow[] = [...passing.slice(0, 2), { role: 'fixed', run: half({ committedTps: 0, committed: 0, latencyMs: latency(0), unresolved: { admitted: 78_000, backpressured: 0, unknown: 0 } }) }];
  const verdict = judgeTargets(stalled)[1]!;
  assert.is(verdict.pass, false);
  assert.match(verdict.why!, /78,000 of 78,000 transactions never committed/);
  assert.match(clusterTable(stalled, judgeTargets(stalled)), /\| kv, 4 validators, equal load \| 4 \| 5,200 tx\/s \| 0 \| - \| - \(78,000 never committed\) \| 0\.00x \| .*FAIL/);

  // No 4-validator runs at all: not judged, and said so below the table.
  const none = judgeTargets([{ role: 'one-node', run: one }]);
  assert.equal(none.map((t) => t.pass), [null, null]);
  assert.match(clusterTable([{ role: 'one-node', run: one }], none), /- 4 validators commit >= 10,000 kv tx\/s: not judged \(no 4-validator run/);
});

test('bench:cluster --quick: n = 1 and 4, the table, report.json, targets, clean up', async () => {
  const out = mkdtempSync(join(tmpdir(), 'goodness-bench-cluster-test-'));
  try {
    const r = await benchCluster(['--quick', '--duration', String(DURATION_SEC), '--base-port', String(BASE_PORT), '--out', out]);
    assert.is(r.code, 0, r.stderr + r.stdout);
    const lines = r.stdout.trim().split('\n');
    assert.is(lines.at(-1), join(out, 'report.json'), 'the JSON path is printed last');
    assert.ok(existsSync(join(out, 'report.html')));

    // The closing table: one row per run, with its validators, offered rate and a committed figure.
    const rows = lines.filter((l) => /^\| kv, /.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
    assert.equal(rows.map((c) => c[0]), ['kv, 1 validator', 'kv, 4 validators', 'kv, 4 validators, equal load']);
    assert.equal(rows.map((c) => c[1]), ['1', '4', '4']);
    assert.equal(rows.slice(0, 2).map((c) => c[2]), [`${QUICK_RATE} tx/s`, `${QUICK_RATE} tx/s`]);
    for (const c of rows) assert.ok(Number(c[3]!.replace(/,/g, '')) > 0, `committed tx/s in ${c.join(' | ')}`);
    assert.is(rows[0]![6], '1.00x', 'the one-node run is the one-node figure');
    assert.match(rows[2]![7]!, /p99 < 1,000 ms at half that rate: (pass|FAIL)/);
    assert.match(rows[1]![7]!, /not judged \(the run offered fixed rate 300 tx\/s/, 'a run below the maximum rate does not judge the 10,000 tx/s target');

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.is(report.tool, 'goodness bench');
    for (const k of ['ed25519VerifyPerSecPerCore', 'blsAggregateVerifyPerSec', 'rocksdbPutsPerSec', 'cores']) assert.ok(report.limits[k] > 0, `limits.${k}`);
    assert.equal(report.runs.map((run: { validators: number }) => run.validators), [1, 4, 4]);
    for (const run of report.runs) {
      assert.is(run.skipped, undefined, `${run.name} ran`);
      assert.is(run.workload, 'kv');
      assert.ok(run.committed > 0 && run.committedTps > 0, `${run.name} committed`);
      assert.is(run.committed, run.sent, `${run.name}: every transaction sent at a low rate commits`);
      assert.is(run.rejected, 0);
      assert.ok(run.rate.kind === 'rate' && run.committedTps <= run.rate.tps * 1.2, `${run.name}: ${run.committedTps} tx/s is about what was offered (${run.rate.tps})`);
      const L = run.latencyMs;
      assert.ok(L.p50 > 0 && L.p50 <= L.p99 && L.p99 <= L.max && L.max < 30_000, `${run.name}: latency ${JSON.stringify(L)}`);
    }
    assert.is(report.oneNodeTps, report.runs[0].committedTps);
    assert.is(report.fixedRateTps, Math.round(report.runs[1].committedTps / 2), 'the equal-load rate is half what 4 validators committed');
    assert.is(report.runs[2].rate.tps, report.fixedRateTps);
    assert.is(report.targets.length, 2);
    assert.is(report.targets[0].pass, null, 'not judged below the maximum rate');
    assert.is(report.targets[1].pass, report.runs[2].latencyMs.p99 < 1000);

    // Every cluster the script made is stopped and removed.
    const dirs = [...r.stdout.matchAll(/--dir (\S+goodness-bench-cluster-kv-\d+-\w+);/g)].map((m) => m[1]!);
    assert.is(dirs.length, 3, 'a fresh cluster per run');
    for (const dir of dirs) {
      assert.not.ok(existsSync(dir), `${dir} removed`);
      assert.equal(processesUsing(dir), [], `no node of ${dir} left running`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
