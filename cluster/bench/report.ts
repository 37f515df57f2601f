// The report of spec/cli.md: `{limits, runs: [{workload, validators, committedTps, latencyMs:
// {p50, p95, p99, max}, sent, committed, rejected, bound}]}`, plus what a reader needs to trust
// the figures (rejections by code, backpressure, transactions left unresolved, the timeline).
import { Code } from '../../state/codes.ts';
import { TxState, type DriveResult } from './driver.ts';
import type { Limits } from './limits.ts';
import { describeRate, type RateSpec } from './rate.ts';
import { summarize, TimelineBuilder, type LatencySummary, type TimelineSecond } from './stats.ts';

export const REPORT_VERSION = 1;

export interface RunReport {
  /** a short label: "kv, 1 validator" */
  name: string;
  workload: 'kv' | 'goodness';
  validators: number;
  /** null when the run was skipped */
  committedTps: number | null;
  latencyMs: LatencySummary | null;
  /** transactions sent at least once */
  sent: number;
  /** committed with status ok */
  committed: number;
  /** refused at admission or rejected in a block */
  rejected: number;
  /** the run's own limit, in transactions per second (see boundBy) */
  bound: number | null;
  boundBy: string;
  /** committedTps / bound */
  ratio: number | null;
  /** committedTps / the Ed25519 bound at node:crypto's (OpenSSL) rate: signed workloads, when the limits have that rate */
  ratioToOpenSslBound?: number;
  /**
   * The nodes' CPU (every thread, user and system) per committed transaction, in µs, summed over
   * the validators: what a transaction cost the cluster, whatever the number of hosts. Null when the
   * nodes' metrics could not be read; absent when the driver did not load every validator.
   */
  nodeCpuUsPerTx?: number | null;
  /**
   * The driver's own CPU (this process, every thread) per committed transaction, in µs, from the
   * first send to the last counter read: on a shared host it competes with the nodes.
   */
  driverCpuUsPerTx?: number;
  /**
   * The share of the host's cores that the nodes and the driver used together over the run, when
   * they all ran on this host: near 1, the run was CPU-bound and its tx/s is the host's cores over
   * the CPU per transaction (nodeCpuUsPerTx + driverCpuUsPerTx); well below 1, something else held it.
   */
  hostCpuShare?: number | null;
  /**
   * Signatures the nodes verified during the run (their goodness_signature_checks_total), per
   * committed transaction, summed over the nodes the driver sent to: the bound assumes one per
   * transaction and validator; vouching (cluster/vouching.ts) needs f + 1. Null when a node's
   * metrics could not be read, or for an unsigned workload.
   */
  signatureChecksPerTx?: number | null;
  /** the checks the nodes asked for, by why (goodness_signature_check_requests_total), per committed transaction */
  signatureCheckReasonsPerTx?: Record<string, number>;
  /** set when the run did not happen: why */
  skipped?: string;
  rate: RateSpec;
  rateLabel: string;
  durationSec: number;
  /** from the first send to the last commit */
  elapsedSec: number;
  /** first sends per second over the sending window */
  sendTps: number;
  /** "-32001/5 EXPIRED": refused at admission with machine code 5; "block/15 OVER_CAP": rejected in a block; "-32003 duplicate" */
  rejectedByCode: Record<string, number>;
  rejectionSamples: Record<string, string>;
  /** -32002 answers: each was sent again later */
  backpressured: number;
  transportErrors: number;
  /** sent and still not committed nor refused when the run stopped waiting: never dropped silently */
  unresolved: { admitted: number; backpressured: number; unknown: number };
  exhaustedAtSec: number | null;
  blocks: number;
  nodes: string[];
  startedAt: string;
  timeline: TimelineSecond[];
  notes: string[];
}

export interface BenchReport {
  tool: 'goodness bench';
  version: number;
  createdAt: string;
  /** the limits of the machine the driver ran on, measured in this run */
  limits: Limits;
  runs: RunReport[];
}

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, code]) => [code, name]));
const RPC_NAMES: Record<string, string> = {
  '-32002': 'pool full',
  '-32003': 'duplicate',
  '-32004': 'not found',
  '-32006': 'request too large',
  '-32600': 'invalid request',
  '-32602': 'invalid params',
  '-32603': 'internal error',
};

/** A refusal key with its name: "-32001/5" → "-32001/5 EXPIRED". */
export function labelCode(key: string): string {
  const m = /^(-32001|block)\/(\d+)$/.exec(key);
  if (m) return `${key} ${CODE_NAMES.get(Number(m[2])) ?? 'unknown'}`;
  return RPC_NAMES[key] ? `${key} ${RPC_NAMES[key]}` : key;
}

export interface RunMeta {
  name: string;
  workload: 'kv' | 'goodness';
  validators: number;
  bound: number;
  boundBy: string;
  /** the Ed25519 bound at node:crypto's (OpenSSL) rate, for comparing with reports from before libsodium (Limits) */
  openSslBound?: number;
  /** goodness_signature_checks_total summed over the nodes during the run, when read */
  signatureChecks?: number | null;
  /** the nodes' CPU seconds (goodness_process_process_cpu_seconds_total) summed over them during the run; null when unreadable, absent when the driver did not load every validator */
  nodeCpuSeconds?: number | null;
  /** CPU seconds of one Ed25519 verification on this machine (1 / the measured rate), to split nodeCpuSeconds */
  verifyCpuSeconds?: number;
  /** goodness_signature_check_requests_total by reason, summed over the nodes during the run */
  signatureCheckReasons?: Record<string, number>;
  /** the driver's CPU seconds, every thread, over the same window as nodeCpuSeconds */
  driverCpuSeconds?: number;
  /** wall seconds between the two reads of the nodes' counters */
  windowSec?: number;
  /** the host's cores, when the nodes and the driver share it (every URL local): for hostCpuShare */
  hostCores?: number;
}

/**
 * Figures of one run. `executionRejected` maps a transaction's index to the code of a receipt
 * with status "rejected": such a transaction committed but counts as rejected.
 */
export function analyzeRun(d: DriveResult, meta: RunMeta, executionRejected: Map<number, { code: number; log: string }> = new Map()): RunReport {
  const timeline = new TimelineBuilder();
  const latencies: number[] = [];
  const rejectedByCode: Record<string, number> = {};
  const rejectionSamples: Record<string, string> = {};
  const count = (key: string, sample: string | undefined) => {
    const label = labelCode(key);
    rejectedByCode[label] = (rejectedByCode[label] ?? 0) + 1;
    if (sample !== undefined) rejectionSamples[label] ??= sample;
  };
  let committed = 0;
  let rejected = 0;
  let lastCommit = 0;
  let lastFirstSend = 0;
  for (let i = 0; i < d.state.length; i++) {
    const first = d.firstSentAt[i]!;
    if (!Number.isNaN(first)) {
      timeline.sent(first);
      if (first > lastFirstSend) lastFirstSend = first;
    }
    const s = d.state[i];
    if (s === TxState.COMMITTED) {
      const at = d.committedAt[i]!;
      const refusedInBlock = executionRejected.get(i);
      if (refusedInBlock) {
        rejected++;
        timeline.rejected(at);
        count(`block/${refusedInBlock.code}`, refusedInBlock.log);
        continue;
      }
      committed++;
      const latency = at - d.sentAt[i]!;
      latencies.push(latency);
      timeline.committed(at, latency);
      if (at > lastCommit) lastCommit = at;
    } else if (s === TxState.REFUSED) {
      rejected++;
      timeline.rejected(d.sentAt[i]!);
      const key = d.refusedWith.get(i) ?? 'unknown';
      count(key, d.refusalSamples[key]);
    }
  }
  d.backpressuredBySecond.forEach((c, s) => c && timeline.backpressured(s * 1000, c));
  d.pendingBySecond.forEach((p, s) => timeline.pending(s * 1000 + 999, p));
  const elapsedSec = lastCommit / 1000;
  const committedTps = elapsedSec > 0 ? committed / elapsedSec : 0;
  const sendWindow = Math.max(lastFirstSend, 1) / 1000;
  const notes = [...d.notes];
  if (d.exhaustedAtSec !== null) notes.push(`the ${d.state.length} prepared transactions ran out after ${d.exhaustedAtSec.toFixed(1)} s of the ${d.durationSec} s asked for: prepare more with --txs`);
  const unresolved = d.unresolved.admitted + d.unresolved.backpressured + d.unresolved.unknown;
  if (unresolved > 0) notes.push(`${unresolved} transactions were still unresolved when the run stopped waiting (${JSON.stringify(d.unresolved)})`);
  const ratioToOpenSslBound = meta.openSslBound ? Math.round((committedTps / meta.openSslBound) * 1000) / 1000 : undefined;
  if (ratioToOpenSslBound !== undefined && committedTps > 0) {
    notes.push(`ratio to the bound at node:crypto's OpenSSL rate (${Math.round(meta.openSslBound!).toLocaleString('en-US')} tx/s), as reports before the nodes verified with libsodium: ${ratioToOpenSslBound.toFixed(3)}`);
  }
  return {
    name: meta.name,
    workload: meta.workload,
    validators: meta.validators,
    committedTps: Math.round(committedTps),
    latencyMs: summarize(latencies),
    sent: d.sent,
    committed,
    rejected,
    bound: Math.round(meta.bound),
    boundBy: meta.boundBy,
    ratio: meta.bound > 0 ? Math.round((committedTps / meta.bound) * 1000) / 1000 : null,
    ...(ratioToOpenSslBound !== undefined ? { ratioToOpenSslBound } : {}),
    rate: d.rate,
    rateLabel: describeRate(d.rate),
    durationSec: d.durationSec,
    elapsedSec: Math.round(elapsedSec * 100) / 100,
    sendTps: Math.round(d.sent / sendWindow),
    rejectedByCode,
    rejectionSamples,
    backpressured: d.backpressured,
    transportErrors: d.transportErrors,
    unresolved: d.unresolved,
    exhaustedAtSec: d.exhaustedAtSec === null ? null : Math.round(d.exhaustedAtSec * 10) / 10,
    blocks: d.blocks,
    nodes: d.nodes,
    startedAt: new Date(d.startedAt).toISOString(),
    timeline: timeline.build(),
    notes,
    ...signatureFigures(meta, committed, notes),
    ...cpuFigures(meta, committed, notes),
    ...hostFigures(meta, committed, notes),
  };
}

/**
 * The nodes' CPU per committed transaction, and for signed workloads how much of it the signature
 * checks explain (checks per transaction at the machine's measured verification cost).
 */
function cpuFigures(meta: RunMeta, committed: number, notes: string[]): Pick<RunReport, 'nodeCpuUsPerTx'> {
  if (meta.nodeCpuSeconds === undefined) return {};
  if (meta.nodeCpuSeconds === null || committed === 0) {
    if (meta.nodeCpuSeconds === null) notes.push("node CPU: not measured, a node's /metrics could not be read");
    return { nodeCpuUsPerTx: null };
  }
  const perTx = (meta.nodeCpuSeconds / committed) * 1e6;
  const each = meta.validators > 1 ? ` (${Math.round(perTx / meta.validators).toLocaleString('en-US')} per validator)` : '';
  let split = '';
  if (meta.verifyCpuSeconds && typeof meta.signatureChecks === 'number') {
    const verify = ((meta.signatureChecks * meta.verifyCpuSeconds) / committed) * 1e6;
    split = `: about ${Math.round(verify).toLocaleString('en-US')} µs of signature checks at this machine's rate, ${Math.round(perTx - verify).toLocaleString('en-US')} µs everything else`;
  }
  notes.push(`node CPU: ${Math.round(perTx).toLocaleString('en-US')} µs per committed transaction over the ${meta.validators} validator${meta.validators === 1 ? '' : 's'}${each}${split}`);
  return { nodeCpuUsPerTx: Math.round(perTx) };
}

/** The driver's CPU per committed transaction, and how much of a shared host the run used. */
function hostFigures(meta: RunMeta, committed: number, notes: string[]): Pick<RunReport, 'driverCpuUsPerTx' | 'hostCpuShare'> {
  if (meta.driverCpuSeconds === undefined || committed === 0) return {};
  const driverCpuUsPerTx = Math.round((meta.driverCpuSeconds / committed) * 1e6);
  let note = `driver CPU: ${driverCpuUsPerTx.toLocaleString('en-US')} µs per committed transaction (sending, tracking commits)`;
  // A share only when the nodes share this host and their CPU was asked for (null: not readable).
  const { hostCores, windowSec, nodeCpuSeconds } = meta;
  if (hostCores === undefined || !windowSec || nodeCpuSeconds === undefined) {
    notes.push(note);
    return { driverCpuUsPerTx };
  }
  const share = nodeCpuSeconds === null ? null : (nodeCpuSeconds + meta.driverCpuSeconds) / (hostCores * windowSec);
  if (share !== null) {
    note += `; the nodes and the driver used ${(share * 100).toFixed(0)}% of this host's ${hostCores} cores over ${windowSec.toFixed(1)} s`;
    if (share >= 0.9) note += ' (CPU-bound: tx/s is the cores over the CPU per transaction)';
  }
  notes.push(note);
  return { driverCpuUsPerTx, hostCpuShare: share === null ? null : Math.round(share * 1000) / 1000 };
}

function signatureFigures(meta: RunMeta, committed: number, notes: string[]): Pick<RunReport, 'signatureChecksPerTx' | 'signatureCheckReasonsPerTx'> {
  if (meta.signatureChecks === undefined) return {};
  if (meta.signatureChecks === null || committed === 0) return { signatureChecksPerTx: null };
  const round = (n: number) => Math.round((n / committed) * 100) / 100;
  const perTx = round(meta.signatureChecks);
  // Most first; reasons that asked for nothing in this run are left out.
  const reasons = Object.entries(meta.signatureCheckReasons ?? {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const why = reasons.length > 0 ? `; asked for by reason: ${reasons.map(([r, n]) => `${r} ${round(n).toFixed(2)}`).join(', ')}` : '';
  notes.push(`signature checks: ${perTx} per committed transaction over the ${meta.validators} validator${meta.validators === 1 ? '' : 's'} (the bound counts ${meta.validators}: one per validator)${why}`);
  return { signatureChecksPerTx: perTx, ...(reasons.length > 0 ? { signatureCheckReasonsPerTx: Object.fromEntries(reasons.map(([r, n]) => [r, round(n)])) } : {}) };
}

/** A run that could not happen, with the reason, in the same shape. */
export function skippedRun(meta: Omit<RunMeta, 'bound'> & { bound?: number }, rate: RateSpec, durationSec: number, reason: string): RunReport {
  return {
    name: meta.name,
    workload: meta.workload,
    validators: meta.validators,
    committedTps: null,
    latencyMs: null,
    sent: 0,
    committed: 0,
    rejected: 0,
    bound: meta.bound === undefined ? null : Math.round(meta.bound),
    boundBy: meta.boundBy,
    ratio: null,
    skipped: reason,
    rate,
    rateLabel: describeRate(rate),
    durationSec,
    elapsedSec: 0,
    sendTps: 0,
    rejectedByCode: {},
    rejectionSamples: {},
    backpressured: 0,
    transportErrors: 0,
    unresolved: { admitted: 0, backpressured: 0, unknown: 0 },
    exhaustedAtSec: null,
    blocks: 0,
    nodes: [],
    startedAt: new Date().toISOString(),
    timeline: [],
    notes: [],
  };
}

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The Ed25519 limit as the reports state it: the nodes' verifier's rate, and OpenSSL's when measured. */
export function ed25519LimitText(l: Limits, fmt: (n: number) => string): string {
  const openSsl = l.ed25519OpenSslVerifyPerSecPerCore;
  return `Ed25519 ${fmt(l.ed25519VerifyPerSecPerCore)} verify/s per core${openSsl ? ` (libsodium, the nodes' verifier; node:crypto's OpenSSL ${fmt(openSsl)})` : ''}`;
}

/** The report's table in Markdown, as the README and the closing note show it. */
export function markdownTable(report: BenchReport): string {
  const l = report.limits;
  const lines = [
    `Machine: ${l.cores} cores (${l.cpu}), Node ${l.node}. Limits measured in this run: ${ed25519LimitText(l, fmt)}; BLS aggregate ${fmt(l.blsAggregateVerifyPerSec)} verify/s; RocksDB ${fmt(l.rocksdbPutsPerSec)} batched puts/s; libp2p loopback ${fmt(l.libp2pMsgsPerSec)} msg/s.`,
    '',
    '| run | rate control | committed tx/s | p50 ms | p95 ms | p99 ms | max ms | sent | committed | rejected | bound tx/s | ratio |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const r of report.runs) {
    if (r.skipped) {
      lines.push(`| ${r.name} | ${r.rateLabel} | skipped: ${r.skipped.replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | | | | | ${r.bound === null ? '' : fmt(r.bound)} (${r.boundBy}) | |`);
      continue;
    }
    const L = r.latencyMs!;
    lines.push(
      `| ${r.name} | ${r.rateLabel} | ${fmt(r.committedTps)} | ${fmt(L.p50, 1)} | ${fmt(L.p95, 1)} | ${fmt(L.p99, 1)} | ${fmt(L.max, 1)} | ${fmt(r.sent)} | ${fmt(r.committed)} | ${fmt(r.rejected)} | ${fmt(r.bound)} (${r.boundBy}) | ${r.ratio === null ? '-' : r.ratio.toFixed(3)} |`,
    );
  }
  return [...lines, ...runNotes(report.runs)].join('\n');
}

/** What qualifies the figures of a table of runs: rejections by code and each run's notes, in Markdown lines. */
export function runNotes(runs: RunReport[]): string[] {
  const lines: string[] = [];
  const rejections = runs.filter((r) => Object.keys(r.rejectedByCode).length > 0);
  if (rejections.length > 0) {
    lines.push('', 'Rejections by code:');
    for (const r of rejections) lines.push(`- ${r.name}: ${Object.entries(r.rejectedByCode).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ')}`);
  }
  const notes = runs.filter((r) => r.notes.length > 0);
  if (notes.length > 0) lines.push('', 'Notes:');
  for (const r of notes) for (const n of r.notes) lines.push(`- ${r.name}: ${n}`);
  return lines;
}
