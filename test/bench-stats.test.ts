// The figures of a bench report, checked by hand: nearest-rank percentiles, the per-second
// timeline, what counts as committed or rejected, the comparison of two reports, rate control.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareReports } from '../cluster/bench/compare.ts';
import { TxState, type DriveResult } from '../cluster/bench/driver.ts';
import { perCpuSecond, type Limits } from '../cluster/bench/limits.ts';
import { FixedBacklog, FixedRate, MaxRate } from '../cluster/bench/rate.ts';
import { analyzeRun, labelCode, markdownTable, skippedRun, type BenchReport } from '../cluster/bench/report.ts';
import { batchBody, encodeSendCall } from '../cluster/bench/sender.ts';
import { percentile, summarize } from '../cluster/bench/stats.ts';

test('nearest-rank percentiles of a hand-computed case', () => {
  // 20 latencies; sorted: 1..10, 12, 14, 16, 18, 20, 25, 30, 40, 50, 100
  const latencies = [50, 3, 12, 100, 1, 14, 2, 16, 4, 18, 5, 20, 6, 25, 7, 30, 8, 40, 9, 10];
  // p50: rank ceil(0.5 x 20) = 10 -> 10; p95: rank 19 -> 50; p99: rank ceil(19.8) = 20 -> 100; p90: rank 18 -> 40
  const s = summarize(latencies);
  assert.is(s.p50, 10);
  assert.is(s.p95, 50);
  assert.is(s.p99, 100);
  assert.is(s.max, 100);
  assert.is(s.min, 1);
  assert.is(s.avg, 19); // 380 / 20
  const sorted = Float64Array.from(latencies).sort();
  assert.is(percentile(sorted, 90), 40);
  assert.is(percentile(sorted, 5), 1); // rank 1
  assert.is(percentile(sorted, 5.0001), 2); // rank ceil(1.00002) = 2
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 50)));
  assert.equal(summarize([]), { p50: 0, p95: 0, p99: 0, max: 0, avg: 0, min: 0 });
  // One sample is every percentile.
  assert.equal(summarize([7.25]), { p50: 7.3, p95: 7.3, p99: 7.3, max: 7.3, avg: 7.3, min: 7.3 });
});

/** A drive result for 6 transactions, as the driver records them. */
function driveResult(): DriveResult {
  const NaN_ = Number.NaN;
  return {
    startedAt: Date.parse('2026-01-01T00:00:00Z'),
    durationSec: 2,
    rate: { kind: 'rate', tps: 3 },
    nodes: ['http://127.0.0.1:1'],
    // 0, 1, 3 committed; 2 refused at admission; 4 committed but rejected in its block; 5 admitted, never committed
    state: Uint8Array.from([TxState.COMMITTED, TxState.COMMITTED, TxState.REFUSED, TxState.COMMITTED, TxState.COMMITTED, TxState.ADMITTED]),
    firstSentAt: Float64Array.from([0, 300, 600, 1000, 1300, 1600]),
    sentAt: Float64Array.from([0, 350, 600, 1000, 1300, 1600]), // tx 1 was retried after -32002 at 350 ms
    committedAt: Float64Array.from([100, 1150, NaN_, 1100, 1400, NaN_]),
    refusedWith: new Map([[2, '-32001/5']]),
    refusalSamples: { '-32001/5': 'transaction expired at height 3' },
    sent: 6,
    attempts: 7,
    committed: 4,
    refused: 1,
    backpressuredBySecond: [1],
    backpressured: 1,
    transportErrors: 0,
    pendingBySecond: [2, 1],
    unresolved: { admitted: 1, backpressured: 0, unknown: 0 },
    exhaustedAtSec: null,
    lastCommitAt: 1400,
    blocks: 3,
    startHeight: 0,
    endHeight: 3,
    notes: [],
  };
}

test('a run: committed, rejected by code, latency from the admitted send, timeline by second', () => {
  const r = analyzeRun(driveResult(), { name: 'kv, 1 validator', workload: 'kv', validators: 1, bound: 100, boundBy: 'test' }, new Map([[4, { code: 15, log: 'over the daily cap' }]]));
  assert.is(r.sent, 6);
  assert.is(r.committed, 3); // 0, 1, 3: tx 4 committed but was rejected in its block
  assert.is(r.rejected, 2);
  assert.equal(r.rejectedByCode, { '-32001/5 EXPIRED': 1, 'block/15 OVER_CAP': 1 });
  assert.is(r.rejectionSamples['block/15 OVER_CAP'], 'over the daily cap');
  // latencies 100, 800 (1150 - 350), 100: p50 = rank 2 of [100, 100, 800]
  assert.equal(r.latencyMs, { p50: 100, p95: 800, p99: 800, max: 800, avg: 333.3, min: 100 });
  // three ok commits, the last at 1.15 s
  assert.is(r.elapsedSec, 1.15);
  assert.is(r.committedTps, Math.round(3 / 1.15));
  assert.is(r.ratio, Math.round((3 / 1.15 / 100) * 1000) / 1000);
  assert.equal(r.unresolved, { admitted: 1, backpressured: 0, unknown: 0 });
  assert.ok(r.notes.some((n) => n.includes('1 transactions were still unresolved')));
  assert.equal(
    r.timeline.map((t) => [t.second, t.sent, t.committed, t.rejected, t.backpressured, t.p50, t.p99, t.pending]),
    [
      [0, 3, 1, 1, 1, 100, 100, 2],
      [1, 3, 2, 1, 0, 100, 800, 1],
    ],
  );
});

test("signature checks per committed transaction: from the nodes' counters, with a note; absent when not counted", () => {
  const meta = { name: 'goodness, 4 validators', workload: 'goodness' as const, validators: 4, bound: 100, boundBy: 'test' };
  const counted = analyzeRun(driveResult(), { ...meta, signatureChecks: 9 });
  assert.is(counted.committed, 4);
  assert.is(counted.signatureChecksPerTx, 2.25);
  assert.ok(counted.notes.some((n) => n.includes('signature checks: 2.25 per committed transaction over the 4 validators')), counted.notes.join('\n'));
  assert.is(counted.signatureCheckReasonsPerTx, undefined, 'no reasons read, none reported');
  const why = analyzeRun(driveResult(), { ...meta, signatureChecks: 9, signatureCheckReasons: { client: 4, designated: 4, idle: 1, 'block-fetched': 0 } });
  assert.equal(why.signatureCheckReasonsPerTx, { client: 1, designated: 1, idle: 0.25 }, 'per committed transaction, the ones that asked for nothing left out');
  assert.ok(why.notes.some((n) => n.endsWith('asked for by reason: client 1.00, designated 1.00, idle 0.25')), why.notes.join('\n'));
  assert.is(analyzeRun(driveResult(), { ...meta, signatureChecks: null }).signatureChecksPerTx, null, 'a node whose metrics could not be read');
  assert.is(analyzeRun(driveResult(), meta).signatureChecksPerTx, undefined, 'not counted (unsigned, or not every validator)');
});

test("the nodes' CPU per committed transaction, split into signature checks and the rest; ratio to the OpenSSL bound", () => {
  const meta = { name: 'goodness, 4 validators', workload: 'goodness' as const, validators: 4, bound: 100, boundBy: 'test' };
  // 4 committed; 0.004 CPU-seconds = 1,000 µs each; 9 checks at 100 µs each = 225 µs each
  const r = analyzeRun(driveResult(), { ...meta, signatureChecks: 9, nodeCpuSeconds: 0.004, verifyCpuSeconds: 1 / 10_000 });
  assert.is(r.nodeCpuUsPerTx, 1000);
  assert.ok(
    r.notes.includes('node CPU: 1,000 µs per committed transaction over the 4 validators (250 per validator): about 225 µs of signature checks at this machine\'s rate, 775 µs everything else'),
    r.notes.join('\n'),
  );
  const unsigned = analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: 0.002 });
  assert.ok(unsigned.notes.includes('node CPU: 500 µs per committed transaction over the 4 validators (125 per validator)'), unsigned.notes.join('\n'));
  assert.is(analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: null }).nodeCpuUsPerTx, null, 'a node whose metrics could not be read');
  assert.is(analyzeRun(driveResult(), meta).nodeCpuUsPerTx, undefined, 'not every validator loaded: not measured');
  const openSsl = analyzeRun(driveResult(), { ...meta, openSslBound: 50 });
  // half the bound, twice the ratio (each rounded to 3 places)
  assert.ok(openSsl.ratio! > 0 && Math.abs(openSsl.ratioToOpenSslBound! - 2 * openSsl.ratio!) < 0.0015, `${openSsl.ratio} ${openSsl.ratioToOpenSslBound}`);
  assert.ok(openSsl.notes.some((n) => n.startsWith("ratio to the bound at node:crypto's OpenSSL rate (50 tx/s)")), openSsl.notes.join('\n'));
});

test("the driver's CPU per committed transaction, and the share of a shared host the run used", () => {
  const meta = { name: 'goodness, 4 validators', workload: 'goodness' as const, validators: 4, bound: 100, boundBy: 'test' };
  // 4 committed: 0.0002 driver CPU-seconds = 50 µs each; (0.0036 + 0.0002) / (2 cores x 0.002 s) = 95%
  const shared = analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: 0.0036, driverCpuSeconds: 0.0002, windowSec: 0.002, hostCores: 2 });
  assert.is(shared.driverCpuUsPerTx, 50);
  assert.is(shared.hostCpuShare, 0.95);
  assert.ok(
    shared.notes.includes('driver CPU: 50 µs per committed transaction (sending, tracking commits); the nodes and the driver used 95% of this host\'s 2 cores over 0.0 s (CPU-bound: tx/s is the cores over the CPU per transaction)'),
    shared.notes.join('\n'),
  );
  const idle = analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: 0.001, driverCpuSeconds: 0.0002, windowSec: 0.002, hostCores: 2 });
  assert.is(idle.hostCpuShare, 0.3);
  assert.ok(idle.notes.some((n) => n.endsWith('used 30% of this host\'s 2 cores over 0.0 s')), 'not called CPU-bound: ' + idle.notes.join('\n'));
  const remote = analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: 0.0036, driverCpuSeconds: 0.0002, windowSec: 0.002 });
  assert.is(remote.driverCpuUsPerTx, 50);
  assert.is(remote.hostCpuShare, undefined, 'nodes on other hosts: no share of this one');
  assert.ok(remote.notes.includes('driver CPU: 50 µs per committed transaction (sending, tracking commits)'), remote.notes.join('\n'));
  assert.is(analyzeRun(driveResult(), { ...meta, nodeCpuSeconds: null, driverCpuSeconds: 0.0002, windowSec: 0.002, hostCores: 2 }).hostCpuShare, null, 'a node whose metrics could not be read');
  assert.is(analyzeRun(driveResult(), meta).driverCpuUsPerTx, undefined, 'not measured');
});

test('a JSON-RPC batch is the pre-encoded calls copied into one body', () => {
  const calls = [encodeSendCall(0, '0xab'), encodeSendCall(7, '0xcdef'), Buffer.from('{"note":"é ü 漢"}', 'utf8')];
  const body = batchBody(calls);
  assert.equal(JSON.parse(body.toString('utf8')), [
    { jsonrpc: '2.0', id: 0, method: 'sendTransaction', params: ['0xab'] },
    { jsonrpc: '2.0', id: 7, method: 'sendTransaction', params: ['0xcdef'] },
    { note: 'é ü 漢' },
  ]);
  assert.is(body.length, calls.reduce((n, c) => n + c.length, 0) + calls.length + 1, 'brackets and commas only');
  assert.is(batchBody([calls[1]!]).toString('utf8'), `[${calls[1]!.toString('utf8')}]`);
  assert.is(batchBody([]).toString('utf8'), '[]');
});

test('refusal codes are named', () => {
  assert.is(labelCode('-32001/3'), '-32001/3 BAD_SIGNATURE');
  assert.is(labelCode('block/17'), 'block/17 INSUFFICIENT_POINTS');
  assert.is(labelCode('-32003'), '-32003 duplicate');
  assert.is(labelCode('-32099'), '-32099');
});

const limits: Limits = { ed25519VerifyPerSecPerCore: 10_000, blsAggregateVerifyPerSec: 900, rocksdbPutsPerSec: 500_000, libp2pMsgsPerSec: 20_000, cores: 2, cpu: 'test', node: 'v22' };

test('compare: new / old per run, matched by name and rate; skipped runs say so', () => {
  const meta = { name: 'kv, 1 validator', workload: 'kv' as const, validators: 1, bound: 100, boundBy: 'test' };
  const oldRun = analyzeRun(driveResult(), meta);
  const newRun = { ...oldRun, committedTps: oldRun.committedTps! * 2, latencyMs: { ...oldRun.latencyMs!, p50: oldRun.latencyMs!.p50 / 2 }, ratio: oldRun.ratio! * 2 };
  const skipped = skippedRun({ name: 'kv, 4 validators', workload: 'kv', validators: 4, boundBy: 'test' }, { kind: 'max' }, 20, 'the cluster did not start');
  const oldReport: BenchReport = { tool: 'goodness bench', version: 1, createdAt: 'then', limits, runs: [oldRun, skipped] };
  const newReport: BenchReport = { tool: 'goodness bench', version: 1, createdAt: 'now', limits, runs: [newRun, skipped] };
  const rows = compareReports(oldReport, newReport);
  assert.is(rows[0]!.committedTps, 2);
  assert.is(rows[0]!.p50, 0.5);
  assert.is(rows[0]!.p99, 1);
  assert.is(rows[0]!.ratioToBound, 2);
  assert.is(rows[1]!.committedTps, null);
  assert.is(rows[1]!.note, 'skipped now');
  const table = markdownTable(newReport);
  assert.match(table, /\| kv, 4 validators \| maximum rate \(backpressure-limited\) \| skipped: the cluster did not start/);
  assert.match(table, /Ed25519 10,000 verify\/s per core/);
});

test('rate controllers: fixed rate by the clock, backlog by what is in flight, max unlimited', () => {
  const rate = new FixedRate(1000);
  assert.is(rate.allowance({ elapsedMs: 0, attempts: 0, pending: 0, readyRetries: 0 }), 0);
  assert.is(rate.allowance({ elapsedMs: 10, attempts: 0, pending: 0, readyRetries: 0 }), 10);
  assert.is(rate.allowance({ elapsedMs: 10, attempts: 7, pending: 7, readyRetries: 0 }), 3);
  // retries take slots: the offered load never exceeds the rate
  assert.is(rate.allowance({ elapsedMs: 10, attempts: 12, pending: 5, readyRetries: 4 }), 0);
  const backlog = new FixedBacklog(100);
  assert.is(backlog.allowance({ elapsedMs: 5, attempts: 0, pending: 0, readyRetries: 0 }), 100);
  assert.is(backlog.allowance({ elapsedMs: 5, attempts: 100, pending: 100, readyRetries: 0 }), 0);
  // a retry does not grow the backlog: it is already counted in flight
  assert.is(backlog.allowance({ elapsedMs: 5, attempts: 100, pending: 100, readyRetries: 20 }), 20);
  assert.is(new MaxRate().allowance({ elapsedMs: 5, attempts: 10_000, pending: 10_000, readyRetries: 0 }), Number.POSITIVE_INFINITY, 'max: unlimited until the nodes push back');
  assert.throws(() => new FixedRate(0));
  assert.throws(() => new FixedBacklog(0));
});

test('maximum rate: the first -32002 after a commit cuts the backlog to 3/4, each commit raises it by 1/4 of what committed', () => {
  const max = new MaxRate();
  const at = (pending: number, readyRetries = 0) => max.allowance({ elapsedMs: 1000, attempts: pending, pending, readyRetries });
  max.onCommitted(1000);
  assert.is(max.ceiling, Number.POSITIVE_INFINITY, 'commits alone set no ceiling');
  max.onBackpressure(20_000);
  assert.is(max.ceiling, 15_000);
  assert.is(at(20_000), 0, 'no new transactions over the ceiling');
  assert.is(at(20_000, 300), 300, 'refused ones are still sent again: they are already in the backlog');
  max.onBackpressure(18_000);
  assert.is(max.ceiling, 15_000, 'answers to requests sent before the cut do not cut again');
  max.onCommitted(2000);
  assert.is(max.ceiling, 15_500, 'a commit raises the ceiling by a quarter of what committed');
  assert.is(at(15_000), 500);
  max.onBackpressure(16_000);
  assert.is(max.ceiling, 11_625, 'after a commit the next -32002 cuts again, from the lower of ceiling and backlog');
  const slow = new MaxRate();
  slow.onBackpressure(100);
  assert.is(slow.ceiling, 500, 'never below the floor');
});

test("machine limits count the measuring process's CPU time, not the wall time it waited", () => {
  // Each call sleeps 2 ms and uses almost no CPU: by the wall clock that is at most 500 calls a
  // second; per CPU-second, far more. (A busy machine slows the wall clock's count the same way.)
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const sleep2ms = () => void Atomics.wait(cell, 0, 0, 2);
  const rate = perCpuSecond(0.2, 1, sleep2ms, 2);
  assert.ok(rate > 2_000, `per CPU-second: ${Math.round(rate)}`);
  // A call that only computes runs at the same rate either way, within a few percent.
  let x = 0;
  const spin = () => {
    for (let i = 0; i < 20_000; i++) x = (x * 31 + i) | 0;
  };
  const cpuRate = perCpuSecond(0.2, 10, spin, 2);
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < 200) {
    spin();
    n++;
  }
  const wallRate = n / ((performance.now() - started) / 1000);
  assert.ok(cpuRate > wallRate * 0.8, `computing: ${Math.round(cpuRate)} per CPU-second, ${Math.round(wallRate)} per second`);
});

test.run();
