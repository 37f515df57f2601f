// Start, stop and inspect the nodes of a cluster folder on this host. Each node runs as its own
// detached process (`goodness node --dir DIR/nodeI`) logging to DIR/nodeI/node.log; the node
// writes DIR/nodeI/node.pid itself and removes it on a clean exit.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_FILE, GENESIS_FILE, LOG_FILE, NODE_V8_FLAGS, PID_FILE, UserError, rpcUrlOf, validateNodeConfig, type NodeConfig } from './config.ts';
import type { NodeSummary } from './init.ts';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'goodness.js');
const NODE_DIR_RE = /^node(\d+)$/;
export const DEFAULT_START_TIMEOUT_MS = 60_000;
export const STOP_GRACE_MS = 10_000;
const RPC_TIMEOUT_MS = 1_000;

export interface LocalNode {
  name: string;
  /** absolute node folder */
  dir: string;
  config: NodeConfig;
  rpc: string;
}

/** The node folders of a cluster folder, by index. */
export function listNodes(dir: string): LocalNode[] {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new UserError(`${abs} does not exist. Make a cluster there first: \`goodness cluster init --nodes 4 --dir ${dir}\`.`);
  const names = readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isDirectory() && NODE_DIR_RE.test(e.name) && existsSync(join(abs, e.name, CONFIG_FILE)))
    .map((e) => e.name)
    .sort((a, b) => Number(NODE_DIR_RE.exec(a)![1]) - Number(NODE_DIR_RE.exec(b)![1]));
  if (names.length === 0) {
    const hint = existsSync(join(abs, GENESIS_FILE)) ? 'It has a genesis.json but no node folders (node0, node1, ...) with a config.json: copy them back,' : 'Make one first with';
    throw new UserError(`${abs} holds no cluster. ${hint} \`goodness cluster init --nodes 4 --dir ${dir}\`.`);
  }
  return names.map((name) => {
    const nodeDir = join(abs, name);
    const configPath = join(nodeDir, CONFIG_FILE);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new UserError(`${configPath} is not valid JSON (${(err as Error).message}). Fix it or make the cluster again.`);
    }
    const config = validateNodeConfig(json, configPath);
    return { name, dir: nodeDir, config, rpc: rpcUrlOf(config) };
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid of the node running in `nodeDir`, or null. A pid file can outlive its process (a
 * crash, a reboot) and the pid be reused by something else: where /proc tells, the process
 * must look like a goodness node (its command line names goodness or this folder), so that
 * stop never signals a stranger.
 */
export function runningPid(nodeDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(join(nodeDir, PID_FILE), 'utf8').trim();
  } catch {
    return null;
  }
  const pid = Number(text);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(basename(nodeDir)) && !cmdline.includes('goodness')) return null;
  } catch {
    // No /proc (macOS) or the process just ended: trust the pid.
  }
  return pid;
}

function removeStalePid(nodeDir: string): void {
  if (runningPid(nodeDir) === null) rmSync(join(nodeDir, PID_FILE), { force: true });
}

function tailOf(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log yet)';
  }
}

async function healthy(rpc: string): Promise<boolean> {
  try {
    const res = await fetch(`${rpc}/health`, { signal: AbortSignal.timeout(RPC_TIMEOUT_MS) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface StartOptions {
  timeoutMs?: number;
  logLevel?: string;
}

/**
 * Starts every node of `dir` that is not running, detached, and waits until all answer
 * GET /health with 200. Returns the nodes as `cluster status` sees them then.
 */
export async function startCluster(dir: string, opts: StartOptions = {}): Promise<NodeStatus[]> {
  const nodes = listNodes(dir);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const exits = new Map<string, string>();
  for (const node of nodes) {
    if (runningPid(node.dir) !== null) continue;
    removeStalePid(node.dir);
    const logPath = join(node.dir, LOG_FILE);
    const log = openSync(logPath, 'a');
    const args = [...NODE_V8_FLAGS, BIN, 'node', '--dir', node.dir];
    if (opts.logLevel) args.push('--log-level', opts.logLevel);
    // process.execPath is a Node >= 22 here (bin/goodness.js saw to it), so the child needs no re-exec.
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], cwd: node.dir });
    closeSync(log);
    child.on('exit', (code, signal) => exits.set(node.name, signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.on('error', (err) => exits.set(node.name, `could not start: ${err.message}`));
    child.unref();
  }

  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(nodes.map((n) => n.name));
  while (waiting.size > 0) {
    for (const node of nodes) {
      if (!waiting.has(node.name)) continue;
      const exit = exits.get(node.name);
      if (exit) {
        const logPath = join(node.dir, LOG_FILE);
        throw new UserError(`${node.name} ${exit} before it became healthy. See ${logPath}; its last lines:\n${tailOf(logPath)}`);
      }
      if (await healthy(node.rpc)) waiting.delete(node.name);
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) {
      const names = [...waiting];
      const logs = names.map((n) => join(resolve(dir), n, LOG_FILE)).join(', ');
      throw new UserError(
        `${names.join(', ')} did not become healthy within ${Math.round(timeoutMs / 1000)} s (GET /health on ${nodes.filter((n) => waiting.has(n.name)).map((n) => n.rpc).join(', ')}). ` +
          `The nodes keep running: look at ${logs}, then \`goodness cluster status --dir ${dir}\` or \`goodness cluster stop --dir ${dir}\`.`,
      );
    }
    await sleep(200);
  }
  return clusterStatus(dir);
}

export interface StopResult {
  name: string;
  pid: number | null;
  /** how it ended: not running, stopped by SIGTERM, or killed */
  outcome: 'not-running' | 'stopped' | 'killed';
}

/** SIGTERM to every running node, up to `graceMs` to exit, then SIGKILL; stale pid files go. */
export async function stopCluster(dir: string, graceMs = STOP_GRACE_MS): Promise<StopResult[]> {
  const nodes = listNodes(dir);
  const results: StopResult[] = [];
  const running: { node: LocalNode; pid: number; result: StopResult }[] = [];
  for (const node of nodes) {
    const pid = runningPid(node.dir);
    const result: StopResult = { name: node.name, pid, outcome: 'not-running' };
    results.push(result);
    if (pid === null) {
      removeStalePid(node.dir);
      continue;
    }
    try {
      process.kill(pid, 'SIGTERM');
      running.push({ node, pid, result });
    } catch {
      removeStalePid(node.dir);
    }
  }
  const deadline = Date.now() + graceMs;
  while (running.some((r) => isAlive(r.pid)) && Date.now() < deadline) await sleep(100);
  for (const r of running) {
    if (isAlive(r.pid)) {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // it ended between the check and the kill
      }
      r.result.outcome = 'killed';
      // A killed node cannot remove its own pid file.
      for (let i = 0; i < 20 && isAlive(r.pid); i++) await sleep(50);
    } else {
      r.result.outcome = 'stopped';
    }
    removeStalePid(r.node.dir);
  }
  return results;
}

/** A JSON-RPC call with no params; undefined when the node does not answer in time or answers an error. */
export async function rpcCall(url: string, method: string): Promise<unknown> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [] }),
      signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const body = (await res.json()) as { result?: unknown };
    return body.result;
  } catch {
    return undefined;
  }
}

const numberOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const objectOr = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

/**
 * What `cluster status` shows of a node: spec/cli.md's keys (NodeSummary), then what a glance at
 * a running cluster needs. Null where the node does not answer (or cannot know).
 */
export interface NodeStatus extends NodeSummary {
  /** 'validator' when the node's peer id is in the set that signs the next block, else 'observer' */
  role: 'validator' | 'observer' | null;
  /** its index in that set (null for an observer) */
  validatorIndex: number | null;
  /** the leader of its current view */
  leader: number | null;
  /** ms since its last commit, by this host's clock; null before its first commit since it started */
  lastCommitAgeMs: number | null;
  /** moves of its view since it started, all causes (goodness_view_changes_total) */
  viewChanges: number | null;
  syncing: boolean | null;
  /** the highest height it knows of (its sync target while syncing) */
  highestKnownHeight: number | null;
}

/** Only spec/cli.md's keys: what `cluster init` and `cluster start` print with --json. */
export function summaryOf(s: NodeSummary): NodeSummary {
  const { name, dir, rpc, p2p, pid, height, view, peers, pending } = s;
  return { name, dir, rpc, p2p, pid, height, view, peers, pending };
}

/** Sum of every series of one metric in Prometheus text (null when the metric is absent). */
export function metricTotal(text: string, name: string): number | null {
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** Every series of one metric summed by the value of one of its labels (series without it are left out). */
export function metricByLabel(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    // The label as a whole name: right after the brace or a comma.
    let at = line.indexOf(`{${label}="`, name.length);
    if (at < 0) at = line.indexOf(`,${label}="`, name.length);
    if (at < 0) continue;
    const valueAt = at + label.length + 3;
    const key = line.slice(valueAt, line.indexOf('"', valueAt));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** A node's /metrics text; null when it does not answer within `timeoutMs`. */
export async function metricsText(rpc: string, timeoutMs = RPC_TIMEOUT_MS): Promise<string | null> {
  try {
    const res = await fetch(new URL('/metrics', rpc), { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.text();
  } catch {
    return null;
  }
}

/** One node's status over RPC and /metrics; null for each fact the node does not give within a second. */
export async function nodeStatus(node: LocalNode, now: () => number = Date.now): Promise<NodeStatus> {
  const [[blockNumber, consensus, peers, pending, version, sync], metrics] = await Promise.all([
    Promise.all(['getBlockNumber', 'getConsensusStatus', 'getPeers', 'getPendingTxSize', 'getClientVersion', 'getSyncStatus'].map((m) => rpcCall(node.rpc, m))),
    metricsText(node.rpc),
  ]);
  const status = objectOr(consensus);
  const syncStatus = objectOr(sync);
  const nodeId = objectOr(version).nodeId;
  const validators = Array.isArray(status.validators) ? (status.validators as { index?: unknown; peerId?: unknown }[]) : null;
  const me = validators && typeof nodeId === 'string' ? validators.find((v) => v.peerId === nodeId) : undefined;
  const lastCommitTime = numberOrNull(status.lastCommitTime);
  return {
    name: node.name,
    dir: node.dir,
    rpc: node.rpc,
    p2p: node.config.p2p.announce,
    pid: runningPid(node.dir),
    height: numberOrNull(blockNumber) ?? numberOrNull(status.height),
    view: numberOrNull(status.view),
    peers: Array.isArray(peers) ? peers.length : null,
    pending: numberOrNull(pending),
    role: validators && typeof nodeId === 'string' ? (me ? 'validator' : 'observer') : null,
    validatorIndex: numberOrNull(me?.index),
    // The engine says -1 while it knows no set for the next height.
    leader: (numberOrNull(status.leader) ?? -1) >= 0 ? (status.leader as number) : null,
    lastCommitAgeMs: lastCommitTime === null ? null : Math.max(0, now() - lastCommitTime),
    viewChanges: metrics === null ? null : metricTotal(metrics, 'goodness_view_changes_total'),
    syncing: typeof syncStatus.syncing === 'boolean' ? syncStatus.syncing : null,
    highestKnownHeight: numberOrNull(syncStatus.highestKnownHeight),
  };
}

export async function clusterStatus(dir: string): Promise<NodeStatus[]> {
  return Promise.all(listNodes(dir).map((node) => nodeStatus(node)));
}
