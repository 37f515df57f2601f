// The HTML report: one self-contained page (no script, nothing fetched) with SVG charts of
// throughput and latency over time, and, when Debian's chromium is installed, a screenshot in
// headless Chromium showing that the charts really render: the chart lines' colours are found
// in the screenshot's pixels.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TxState, type DriveResult } from '../cluster/bench/driver.ts';
import { renderHtml } from '../cluster/bench/html.ts';
import type { Limits } from '../cluster/bench/limits.ts';
import { writeReport } from '../cluster/bench/output.ts';
import { analyzeRun, skippedRun, type BenchReport } from '../cluster/bench/report.ts';

// Debian's chromium package; another path (another distribution) through BENCH_CHROMIUM.
const CHROMIUM = process.env.BENCH_CHROMIUM ?? '/usr/bin/chromium';
const COLORS = { committed: [0x1b, 0x78, 0x37], sent: [0x21, 0x66, 0xac], p50: [0x5e, 0x3c, 0x99], p99: [0xe6, 0x61, 0x01] } as const;

/** A drive of 10 s at about 800 tx/s with latencies of 40-140 ms, as the driver would record it. */
function syntheticDrive(): DriveResult {
  const n = 8000;
  const state = new Uint8Array(n).fill(TxState.COMMITTED);
  const firstSentAt = new Float64Array(n);
  const committedAt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    firstSentAt[i] = (i / n) * 10_000;
    // latency grows over the run, so both latency lines rise
    committedAt[i] = firstSentAt[i]! + 40 + ((i * 37) % 60) + (i / n) * 40;
  }
  state[17] = TxState.REFUSED;
  return {
    startedAt: Date.parse('2026-01-01T00:00:00Z'),
    durationSec: 10,
    rate: { kind: 'rate', tps: 800 },
    nodes: ['http://127.0.0.1:26651'],
    state,
    firstSentAt,
    sentAt: firstSentAt,
    committedAt,
    refusedWith: new Map([[17, '-32001/3']]),
    refusalSamples: { '-32001/3': 'signature does not verify under tx.from <script>' },
    sent: n,
    attempts: n,
    committed: n - 1,
    refused: 1,
    backpressuredBySecond: [0, 0, 0, 40, 80],
    backpressured: 120,
    transportErrors: 0,
    pendingBySecond: Array.from({ length: 11 }, () => 60),
    unresolved: { admitted: 0, backpressured: 0, unknown: 0 },
    exhaustedAtSec: null,
    lastCommitAt: committedAt[n - 1]!,
    blocks: 100,
    startHeight: 0,
    endHeight: 100,
    notes: [],
  };
}

const limits: Limits = { ed25519VerifyPerSecPerCore: 14_000, blsAggregateVerifyPerSec: 900, rocksdbPutsPerSec: 500_000, libp2pMsgsPerSec: 20_000, cores: 2, cpu: 'test cpu', node: 'v22' };

function report(): BenchReport {
  const run = analyzeRun(syntheticDrive(), { name: 'kv, 1 validator', workload: 'kv', validators: 1, bound: 500_000, boundBy: 'RocksDB batched puts/s' });
  const skipped = skippedRun({ name: 'kv, 4 validators', workload: 'kv', validators: 4, bound: 125_000, boundBy: 'RocksDB' }, { kind: 'max' }, 20, 'the cluster did not start: <engine>');
  return { tool: 'goodness bench', version: 1, createdAt: '2026-01-01T00:01:00.000Z', limits, runs: [run, skipped] };
}

test('the page is self-contained, with a throughput and a latency chart per run, and escapes what it shows', async () => {
  const html = await renderHtml(report());
  assert.is((html.match(/<svg /g) ?? []).length, 2, 'two charts for the one run that ran');
  assert.ok(html.includes('data-chart="throughput"') && html.includes('data-chart="latency"'));
  assert.not.ok(/<script/i.test(html), 'no script');
  assert.not.ok(/(src|href)=["']?https?:/i.test(html), 'nothing fetched from the network');
  assert.ok(html.includes('Throughput: kv, 1 validator') && html.includes('Commit latency: kv, 1 validator'), 'chart titles');
  assert.ok(html.includes('Skipped: the cluster did not start: &lt;engine&gt;'), 'a skipped run shows its reason, escaped');
  assert.ok(html.includes('&lt;script&gt;'), 'rejection samples are escaped');
  // The lines are drawn in the series' colours: the throughput chart has a committed and a sent line, the latency chart p50 and p99.
  for (const hex of ['#1b7837', '#2166ac', '#5e3c99', '#e66101']) assert.ok(new RegExp(`<path[^>]*stroke="${hex}"`).test(html), `a line drawn in ${hex}`);
});

// ---- a minimal PNG reader (8-bit RGB or RGBA, not interlaced: what Chromium writes)

function decodePng(buf: Buffer): { width: number; height: number; pixel(x: number, y: number): [number, number, number] } {
  assert.ok(buf.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])), 'a PNG file');
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.is(data[8], 8, 'bit depth 8');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      assert.ok(channels > 0, `colour type ${data[9]}`);
      assert.is(data[12], 0, 'not interlaced');
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, pixel: (x, y) => [out[y * stride + x * channels]!, out[y * stride + x * channels + 1]!, out[y * stride + x * channels + 2]!] };
}

function screenshot(htmlPath: string, pngPath: string, profile: string): Promise<{ code: number | null; output: string }> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
    '--window-size=1100,1500',
    `--screenshot=${pngPath}`,
    `file://${htmlPath}`,
  ];
  return new Promise((resolve) => {
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    const timer = setTimeout(() => {
      output += '\n(timed out after 60 s)';
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      // The browser's helpers live in its process group: make sure none is left behind.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // all gone
      }
      resolve({ code, output });
    });
  });
}

if (!existsSync(CHROMIUM)) {
  console.log(`SKIP bench-html screenshot: ${CHROMIUM} is absent (install it with: apt-get update && apt-get install -y chromium)`);
  test.skip('the report renders in headless Chromium: its charts are in the screenshot', () => {});
} else {
  test('the report renders in headless Chromium: its charts are in the screenshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goodness-bench-html-'));
    try {
      const paths = await writeReport(report(), join(dir, 'out'));
      assert.ok(JSON.parse(readFileSync(paths.json, 'utf8')).runs.length === 2, 'report.json written beside the page');
      const png = join(dir, 'shot.png');
      const run = await screenshot(paths.html, png, join(dir, 'profile'));
      assert.ok(existsSync(png), `chromium wrote no screenshot (exit ${run.code}):\n${run.output.slice(-2000)}`);
      const image = decodePng(readFileSync(png));
      assert.is(image.width, 1100);
      // Count the pixels of each line colour (anti-aliasing blends edges, so allow a little).
      const counts = Object.fromEntries(Object.keys(COLORS).map((k) => [k, 0])) as Record<keyof typeof COLORS, number>;
      let ink = 0;
      for (let y = 0; y < image.height; y++) {
        for (let x = 0; x < image.width; x++) {
          const [r, g, b] = image.pixel(x, y);
          if (r < 240 || g < 240 || b < 240) ink++;
          for (const [name, [cr, cg, cb]] of Object.entries(COLORS) as [keyof typeof COLORS, readonly number[]][]) {
            if (Math.abs(r - cr!) <= 12 && Math.abs(g - cg!) <= 12 && Math.abs(b - cb!) <= 12) counts[name]++;
          }
        }
      }
      writeFileSync(join(dir, 'counts.json'), JSON.stringify(counts));
      for (const [name, count] of Object.entries(counts)) assert.ok(count >= 100, `the ${name} line is visible: ${count} pixels of its colour (${JSON.stringify(counts)})`);
      assert.ok(ink > image.width * image.height * 0.01, `the page is not blank (${ink} non-white pixels)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
