// `goodness bench` as an operator runs it, in a child process against a real node: progress
// lines when stdout is not a terminal, the report files, the JSON shape of spec/cli.md, the
// report's path printed last, and --compare printing ratios to an older report.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProgressPrinter } from '../cluster/bench/progress.ts';
import { startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 29400;
const BIN = join(import.meta.dirname, '..', 'bin', 'goodness.js');

function goodness(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('progress: one line redrawn in place on a terminal, plain lines every few seconds otherwise', () => {
  const written: string[] = [];
  const out = { isTTY: true, columns: 80, write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream & { isTTY: boolean };
  const snap = (elapsedMs: number, phase: 'sending' | 'draining' | 'done' = 'sending') => ({ phase, elapsedMs, durationMs: 10_000, sent: elapsedMs, committed: elapsedMs - 50, rejected: 1, pending: 49, currentTps: 1000, averageTps: 990 });
  const tty = new ProgressPrinter('kv', { out });
  tty.update(snap(1000));
  tty.update(snap(1250));
  tty.update(snap(10_100, 'done'));
  assert.ok(written.slice(0, 3).every((w) => w.startsWith('\r\x1b[2K')), 'each update redraws the line');
  assert.ok(written.slice(0, 3).every((w) => w.length <= 80 - 1 + 5), 'cut to the terminal width');
  assert.is(written.at(-1), '\n', 'the line is ended when the run is done');
  assert.match(written[0]!, /kv 1\.0s\/10s 9\.0s left \| sent 1,000 committed 950 rejected 1 pending 49/);

  const lines: string[] = [];
  const plain = new ProgressPrinter('kv', { out: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream, plainEverySec: 5 });
  for (let t = 0; t <= 10_000; t += 250) plain.update(snap(t, t < 10_000 ? 'sending' : 'done'));
  assert.is(lines.length, 3, `lines at 0 s, 5 s and the end: ${JSON.stringify(lines)}`);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.includes('\r')));
  assert.match(lines[2]!, /done \| sent 10,000 committed 9,950 rejected 1 pending 49 \| 1,000 tx\/s now, 990 avg/);
});

test('goodness bench: report files, the JSON of spec/cli.md, path printed last, --compare', async () => {
  let node: NodeProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'goodness-bench-cli-'));
  try {
    node = await startNode({ machine: 'kv', basePort: BASE_PORT });
    const first = await goodness(['bench', '--rpc', node.url, '--workload', 'kv', '--rate', '800', '--duration', '3', '--out', join(dir, 'a'), '--progress-every', '1']);
    assert.is(first.code, 0, first.stderr + first.stdout);
    const lines = first.stdout.trim().split('\n');
    assert.is(lines.at(-1), join(dir, 'a', 'report.json'), 'the JSON path is printed last');
    assert.ok(lines.filter((l) => / sent [\d,]+ committed [\d,]+ rejected \d+ pending /.test(l)).length >= 3, 'plain progress lines');
    assert.ok(existsSync(join(dir, 'a', 'report.html')));
    const report = JSON.parse(readFileSync(join(dir, 'a', 'report.json'), 'utf8'));
    for (const k of ['ed25519VerifyPerSecPerCore', 'ed25519OpenSslVerifyPerSecPerCore', 'blsAggregateVerifyPerSec', 'rocksdbPutsPerSec', 'cores']) assert.ok(report.limits[k] > 0, `limits.${k}`);
    assert.is(report.runs.length, 1);
    const run = report.runs[0];
    for (const k of ['workload', 'validators', 'committedTps', 'latencyMs', 'sent', 'committed', 'rejected', 'bound']) assert.ok(k in run, `runs[0].${k}`);
    assert.is(run.workload, 'kv');
    assert.is(run.validators, 1);
    assert.is(run.sent, 2400);
    assert.is(run.committed, 2400);
    assert.is(run.rejected, 0);
    for (const k of ['p50', 'p95', 'p99', 'max']) assert.ok(run.latencyMs[k] > 0, `latencyMs.${k}`);
    assert.ok(Array.isArray(run.timeline) && run.timeline.length >= 3);
    // the node's own CPU during the run, read from its /metrics before and after
    assert.ok(run.nodeCpuUsPerTx > 0, `nodeCpuUsPerTx ${run.nodeCpuUsPerTx}`);
    assert.match(first.stdout, /node CPU: [\d,]+ µs per committed transaction over the 1 validator\b/);
    // the driver's own CPU, and the share of this host that the node and the driver used
    assert.ok(run.driverCpuUsPerTx > 0, `driverCpuUsPerTx ${run.driverCpuUsPerTx}`);
    assert.ok(run.hostCpuShare > 0 && run.hostCpuShare <= 1.05, `hostCpuShare ${run.hostCpuShare}`);
    assert.match(first.stdout, /driver CPU: [\d,]+ µs per committed transaction \(sending, tracking commits\); the nodes and the driver used \d+% of this host's \d+ cores over /);
    assert.match(first.stdout, /\| kv, 1 validator \| fixed rate 800 tx\/s \| /);

    const second = await goodness(['bench', '--rpc', node.url, '--backlog', '200', '--duration', '2', '--out', join(dir, 'b'), '--compare', join(dir, 'a', 'report.json')]);
    assert.is(second.code, 0, second.stderr + second.stdout);
    assert.match(second.stdout, /Compared with .*report\.json/);
    assert.match(second.stdout, /\| kv, 1 validator \| fixed backlog of 200 in flight \| \d+\.\d\dx \| \d+\.\d\dx \|.*\| old run used fixed rate 800 tx\/s \|/);
    assert.is(second.stdout.trim().split('\n').at(-1), join(dir, 'b', 'report.json'));

    const bad = await goodness(['bench', '--rpc', node.url, '--rate', '10', '--backlog', '5']);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /either --rate or --backlog/);
  } finally {
    await node?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
