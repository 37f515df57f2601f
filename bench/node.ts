// npm run bench:node — a one-node chain on this machine, driven over JSON-RPC from this
// process: committed kv transactions per second and signed account.open transactions per
// second, beside the machine's own limits measured in the same run (Ed25519 verifications per
// second on one core, RocksDB batched puts per second). Transactions are built and signed, and
// request bodies encoded, before the clock starts. Options (environment):
//   BENCH_KV_TXS (200000), BENCH_SIGNED_TXS (60000), BENCH_BATCH (500), BENCH_INFLIGHT (4)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519Keygen, Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { toHex, utf8 } from '../consensus/crypto/encoding.ts';
import { initCluster } from '../cluster/init.ts';
import { measureEd25519, measureRocksdb } from '../cluster/bench/limits.ts';
import { buildTx } from '../state/tx.ts';

const KV_TXS = Number(process.env.BENCH_KV_TXS ?? 200_000);
const SIGNED_TXS = Number(process.env.BENCH_SIGNED_TXS ?? 60_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 500);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 4);
const root = join(import.meta.dirname, '..');

const agent = new http.Agent({ keepAlive: true, maxSockets: INFLIGHT * 2 });

function post(url: string, body: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function call(url: string, method: string, params: unknown[] = []): Promise<any> {
  const a = (await post(url, JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }))) as { result?: unknown; error?: { message: string } };
  if (a.error) throw new Error(`${method}: ${a.error.message}`);
  return a.result;
}

async function startNode(machine: 'kv' | 'goodness', basePort: number): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `goodness-bench-${machine}-`));
  const [node] = await initCluster({ nodes: 1, dir, basePort, chain: 'goodness-bench', machine });
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(root, 'bin', 'goodness.js'), 'node', '--dir', node!.dir, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = node!.rpc;
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return { url, child, dir };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the ${machine} node did not become healthy`);
}

async function stopNode(n: { child: ChildProcess; dir: string }): Promise<void> {
  const exited = new Promise((r) => n.child.once('exit', r));
  n.child.kill('SIGTERM');
  await exited;
  rmSync(n.dir, { recursive: true, force: true });
}

interface RunResult {
  committed: number;
  seconds: number;
  tps: number;
  retried: number;
  refused: Record<string, number>;
}

/**
 * Sends pre-encoded sendTransaction batches, INFLIGHT at a time, retrying what the pool
 * refuses with -32002 (backpressure) after a pause; then waits until every admitted
 * transaction is committed. Throughput is committed transactions over the whole time.
 */
async function drive(url: string, rawTxs: string[]): Promise<RunResult> {
  const base = (await call(url, 'getTotalTransactionCount')).transactions as number;
  const queue: string[][] = [];
  for (let i = 0; i < rawTxs.length; i += BATCH) queue.push(rawTxs.slice(i, i + BATCH));
  const bodies = queue.map((txs) => JSON.stringify(txs.map((tx, id) => ({ jsonrpc: '2.0', id, method: 'sendTransaction', params: [tx] }))));
  let admitted = 0;
  let retried = 0;
  const refused: Record<string, number> = {};
  const started = performance.now();
  const retry: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      let body: string;
      let txs: string[];
      if (next < bodies.length) {
        txs = queue[next]!;
        body = bodies[next++]!;
      } else if (retry.length > 0) {
        txs = retry.splice(0, BATCH);
        body = JSON.stringify(txs.map((tx, id) => ({ jsonrpc: '2.0', id, method: 'sendTransaction', params: [tx] })));
      } else return;
      const answers = (await post(url, body)) as { id: number; result?: string; error?: { code: number } }[];
      let backoff = false;
      for (const a of answers) {
        if (a.result) admitted++;
        else if (a.error?.code === -32002) {
          retry.push(txs[a.id]!);
          retried++;
          backoff = true;
        } else refused[String(a.error?.code)] = (refused[String(a.error?.code)] ?? 0) + 1;
      }
      if (backoff) await new Promise((r) => setTimeout(r, 20));
    }
  };
  // Retries can arrive after a worker found nothing left: loop until the queue and retries are empty.
  while (next < bodies.length || retry.length > 0) await Promise.all(Array.from({ length: INFLIGHT }, worker));
  let committed = 0;
  for (;;) {
    committed = ((await call(url, 'getTotalTransactionCount')).transactions as number) - base;
    if (committed >= admitted) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  return { committed, seconds, tps: committed / seconds, retried, refused };
}

function kvTxs(n: number): string[] {
  const run = Date.now().toString(36);
  return Array.from({ length: n }, (_, i) => '0x' + toHex(utf8(`bench-${run}-${i}=value-${i}`)));
}

function accountOpenTxs(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const signer = new Ed25519Signer(ed25519Keygen().secretKey);
    out.push('0x' + toHex(buildTx(signer, { chain: 'goodness-bench', type: 'account.open', nonce: 'n' + i, expires: 900, body: {} }).bytes));
  }
  return out;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

console.log(`goodness bench:node on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}), Node ${process.version}`);
const ed = measureEd25519();
const rocks = await measureRocksdb();
console.log(`machine: Ed25519 verify ${fmt(ed)}/s on one core; RocksDB batched puts ${fmt(rocks)}/s`);

console.log(`\nkv: building ${fmt(KV_TXS)} transactions ...`);
const kvRaw = kvTxs(KV_TXS);
const kvNode = await startNode('kv', 27400);
let kv: RunResult;
try {
  kv = await drive(kvNode.url, kvRaw);
} finally {
  await stopNode(kvNode);
}
console.log(`kv: ${fmt(kv.committed)} committed in ${kv.seconds.toFixed(2)} s = ${fmt(kv.tps)} tx/s (${fmt(kv.retried)} retried after -32002; refused ${JSON.stringify(kv.refused)})`);

console.log(`\ngoodness: signing ${fmt(SIGNED_TXS)} account.open transactions ...`);
const signedRaw = accountOpenTxs(SIGNED_TXS);
const gNode = await startNode('goodness', 27410);
let signed: RunResult;
try {
  signed = await drive(gNode.url, signedRaw);
} finally {
  await stopNode(gNode);
}
console.log(`goodness: ${fmt(signed.committed)} committed in ${signed.seconds.toFixed(2)} s = ${fmt(signed.tps)} tx/s (${fmt(signed.retried)} retried after -32002; refused ${JSON.stringify(signed.refused)})`);

console.log('\n| run | committed tx/s | bound | ratio | target |');
console.log('| --- | ---: | ---: | ---: | --- |');
console.log(`| kv, one node | ${fmt(kv.tps)} | RocksDB ${fmt(rocks)} puts/s | ${(kv.tps / rocks).toFixed(3)} | >= 20,000 tx/s: ${kv.tps >= 20_000 ? 'met' : 'NOT met'} |`);
console.log(`| signed account.open, one node | ${fmt(signed.tps)} | Ed25519 ${fmt(ed)} verify/s/core | ${(signed.tps / ed).toFixed(2)} | >= 0.70: ${signed.tps / ed >= 0.7 ? 'met' : 'NOT met'} |`);
agent.destroy();
