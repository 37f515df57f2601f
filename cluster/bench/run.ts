// One benchmark run against running nodes, through the JSON-RPC contract only: learn the chain
// and its validator set, let the workload set up and sign (before the clock), drive the load,
// read execution outcomes if the chain rejected anything, and compute the run's figures.
import { GoodnessClient } from '../../rpc/client.ts';
import { drive, TxState } from './driver.ts';
import type { Limits } from './limits.ts';
import { ProgressPrinter, type ProgressOptions } from './progress.ts';
import { describeRate, type RateSpec } from './rate.ts';
import { metricByLabel, metricsText, metricTotal } from '../local.ts';
import { fetchReceipts, waitForHeight } from './receipts.ts';
import { analyzeRun, type RunReport } from './report.ts';
import type { Workload } from './workloads/types.ts';

export interface BenchRunOptions {
  urls: string[];
  workload: Workload;
  rate: RateSpec;
  durationSec: number;
  /** transactions to prepare (default: enough for the rate and duration) */
  txs?: number;
  limits: Limits;
  /** label of the run in the report */
  name?: string;
  batchMax?: number;
  requestsPerNode?: number;
  drainTimeoutSec?: number;
  /** live progress on stdout (default on) */
  progress?: false | ProgressOptions;
  log?: (line: string) => void;
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const MAX_DEFAULT_TXS = 1_000_000;
/**
 * What a run at maximum rate or fixed backlog prepares per second of duration when not told:
 * above what one node commits on a small machine, and not so much that preparing takes longer
 * than the run (signing costs ~70 us a transaction, in parallel workers: 250,000 in about 8.5 s).
 * A run that uses them all up stops early and says so; --txs prepares more. Raised when one node
 * outran them (kv 35,000 tx/s, goodness 8,500; then goodness 10,028 on 25 Nov 2026, which ran
 * out 0.3 s before the end of its 20 s).
 */
const KV_MAX_TPS_GUESS = 40_000;
const SIGNED_MAX_TPS_GUESS = 12_500;

/** Whether every node runs on this machine, sharing its cores and disk. */
export function allLocal(urls: string[]): boolean {
  return urls.every((u) => LOCAL_HOSTS.has(new URL(u).hostname));
}

/**
 * The run's own limit. A signed transaction costs each validator one Ed25519 verification, on
 * as many cores as the host has; every transaction costs each validator RocksDB writes. When
 * all validators run on this machine they share it, so the bound is divided among them.
 */
export function boundOf(workload: Workload, limits: Limits, validators: number, local: boolean): { bound: number; boundBy: string; openSslBound?: number } {
  const share = local ? validators : 1;
  const shared = share > 1 ? ` / ${share} validators on one host` : '';
  if (workload.signed) {
    const openSsl = limits.ed25519OpenSslVerifyPerSecPerCore;
    return {
      bound: (limits.ed25519VerifyPerSecPerCore * limits.cores) / share,
      boundBy: `Ed25519 verify/s x ${limits.cores} cores${shared}`,
      ...(openSsl ? { openSslBound: (openSsl * limits.cores) / share } : {}),
    };
  }
  return { bound: limits.rocksdbPutsPerSec / share, boundBy: `RocksDB batched puts/s${shared}` };
}

export function defaultTxCount(rate: RateSpec, durationSec: number, workload: Workload, bound: number): number {
  if (rate.kind === 'rate') return Math.ceil(rate.tps * durationSec);
  const perSec = workload.signed ? Math.min(bound * 1.2, SIGNED_MAX_TPS_GUESS) : KV_MAX_TPS_GUESS;
  return Math.min(MAX_DEFAULT_TXS, Math.ceil(perSec * durationSec));
}

export async function benchRun(o: BenchRunOptions): Promise<RunReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const clients = o.urls.map((u) => new GoodnessClient(u, { timeoutMs: 60_000 }));
  try {
    const versions = await Promise.all(clients.map((c) => c.getClientVersion()));
    const chain = versions[0]!.chain;
    const other = versions.findIndex((v) => v.chain !== chain);
    if (other >= 0) throw new Error(`${o.urls[other]} runs chain ${versions[other]!.chain}, ${o.urls[0]} runs ${chain}: point the driver at one cluster`);
    const validators = (await clients[0]!.getValidators()).length;
    const local = allLocal(o.urls);
    const { bound, boundBy, openSslBound } = boundOf(o.workload, o.limits, validators, local);
    const name = o.name ?? `${o.workload.name}, ${validators} validator${validators === 1 ? '' : 's'}`;
    const count = o.txs ?? defaultTxCount(o.rate, o.durationSec, o.workload, bound);

    log(`${name}: preparing ${count.toLocaleString('en-US')} transactions (${o.workload.signed ? 'signed' : 'unsigned'}) for ${describeRate(o.rate)} over ${o.durationSec} s on ${o.urls.length} node${o.urls.length === 1 ? '' : 's'} ...`);
    const preparedAt = performance.now();
    const txs = await o.workload.prepare({ urls: o.urls, clients, chain, log: (l) => log(`${name}: ${l}`) }, count);
    log(`${name}: prepared in ${((performance.now() - preparedAt) / 1000).toFixed(1)} s; the clock starts now`);

    const before = await clients[0]!.getTotalTransactionCount();
    // Only when the driver sends to every validator: sums over the nodes then cover the whole cluster.
    const everyValidator = o.urls.length === validators;
    const countChecks = o.workload.signed && everyValidator;
    const countersBefore = everyValidator ? await readNodeCounters(o.urls) : null;
    // The driver's CPU over the same window as the nodes' (from just after their first read).
    const windowStart = performance.now();
    const driverCpuAtStart = process.cpuUsage();
    const printer = o.progress === false ? null : new ProgressPrinter(name, o.progress);
    const d = await drive({
      urls: o.urls,
      txs,
      rate: o.rate,
      durationSec: o.durationSec,
      batchMax: o.batchMax,
      requestsPerNode: o.requestsPerNode,
      drainTimeoutSec: o.drainTimeoutSec,
      onProgress: printer?.update,
    });
    printer?.finish();
    // The count and the receipts below come from the first node: it may be a block behind the one that told of the last.
    await waitForHeight(clients[0]!, d.endHeight).catch((err: Error) => d.notes.push(`${o.urls[0]} did not reach the run's last block: ${err.message}`));
    const driverCpu = process.cpuUsage(driverCpuAtStart);
    const countersAfter = everyValidator ? await readNodeCounters(o.urls) : null;
    const windowSec = (performance.now() - windowStart) / 1000;
    // only asked for when every validator was read (countersBefore and countersAfter are set)
    const during = (counter: (c: NodeCounters) => number | null): number | null => {
      const [a, b] = [counter(countersBefore!), counter(countersAfter!)];
      return a === null || b === null ? null : b - a;
    };
    // The nodes' own CPU: what the committed transactions cost them.
    const nodeCpuSeconds = everyValidator ? during((c) => c.cpuSeconds) : undefined;
    const signatureChecksDone = countChecks ? during((c) => c.signatureChecks) : undefined;
    const signatureCheckReasons =
      countChecks && signatureChecksDone !== null ? Object.fromEntries([...countersAfter!.checksByReason].map(([reason, n]) => [reason, n - (countersBefore!.checksByReason.get(reason) ?? 0)])) : undefined;
    const after = await clients[0]!.getTotalTransactionCount().catch((err: Error) => {
      d.notes.push(`the chain's count of rejected transactions could not be read after the run (${err.message}): rejections in blocks are not counted`);
      return null;
    });

    // Receipts are read only when the chain rejected something while the run went on.
    const executionRejected = new Map<number, { code: number; log: string }>();
    if (after && after.rejected > before.rejected) {
      const committed: number[] = [];
      for (let i = 0; i < txs.length; i++) if (d.state[i] === TxState.COMMITTED) committed.push(i);
      log(`${name}: the chain rejected ${after.rejected - before.rejected} transactions in blocks during the run; reading ${committed.length.toLocaleString('en-US')} receipts ...`);
      const receipts = await fetchReceipts(clients[0]!, committed.map((i) => txs[i]!.hash));
      receipts.forEach((r, k) => {
        if (r && r.status === 'rejected') executionRejected.set(committed[k]!, { code: r.code, log: r.log });
      });
    }
    return analyzeRun(
      d,
      {
        name,
        workload: o.workload.name,
        validators,
        bound,
        boundBy,
        openSslBound,
        signatureChecks: signatureChecksDone,
        signatureCheckReasons,
        nodeCpuSeconds,
        driverCpuSeconds: (driverCpu.user + driverCpu.system) / 1e6,
        windowSec,
        ...(local ? { hostCores: o.limits.cores } : {}),
        ...(o.workload.signed && o.limits.ed25519VerifyPerSecPerCore > 0 ? { verifyCpuSeconds: 1 / o.limits.ed25519VerifyPerSecPerCore } : {}),
      },
      executionRejected,
    );
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

/** The counters a run reads from every node's /metrics before and after it; a figure is null when a node's cannot be read. */
interface NodeCounters {
  /** goodness_process_process_cpu_seconds_total: user and system, every thread */
  cpuSeconds: number | null;
  /** goodness_signature_checks_total */
  signatureChecks: number | null;
  /** goodness_signature_check_requests_total by reason */
  checksByReason: Map<string, number>;
}

/** Each node's /metrics read once, its counters summed over the nodes. */
async function readNodeCounters(urls: string[]): Promise<NodeCounters> {
  const texts = await Promise.all(urls.map((url) => metricsText(url, 10_000)));
  const sum = (name: string): number | null => {
    let total = 0;
    for (const text of texts) {
      const t = text === null ? null : metricTotal(text, name);
      if (t === null) return null;
      total += t;
    }
    return total;
  };
  const checksByReason = new Map<string, number>();
  for (const text of texts) {
    if (text === null) continue;
    for (const [reason, n] of metricByLabel(text, 'goodness_signature_check_requests_total', 'reason')) checksByReason.set(reason, (checksByReason.get(reason) ?? 0) + n);
  }
  return { cpuSeconds: sum('goodness_process_process_cpu_seconds_total'), signatureChecks: sum('goodness_signature_checks_total'), checksByReason };
}
