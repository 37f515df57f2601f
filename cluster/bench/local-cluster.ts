// A throwaway cluster on this machine for the benchmark scripts (npm run bench, npm run
// bench:cluster): `cluster init` in a fresh temp folder, `cluster start`, one or more driver runs
// against its nodes, then stop and remove the folder. A cluster that does not start, and a run
// that fails, become a skipped run with its reason, so the other runs still happen and the
// report is still written. Clusters are stopped and their folders removed on Ctrl-C too.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { LOG_FILE } from '../config.ts';
import { ACCOUNTS_DIR, GOVERNOR_KEY_FILE, initCluster } from '../init.ts';
import { listNodes, rpcCall, startCluster, stopCluster } from '../local.ts';
import type { Limits } from './limits.ts';
import type { RateSpec } from './rate.ts';
import { skippedRun, type RunReport } from './report.ts';
import { allLocal, benchRun, boundOf } from './run.ts';
import { GoodnessWorkload } from './workloads/goodness.ts';
import { KvWorkload } from './workloads/kv.ts';
import { WorkloadUnavailable, type Workload } from './workloads/types.ts';

export interface BenchClusterOptions {
  /** short tag for the temp folder and the chain id: "kv-4" */
  id: string;
  machine: 'kv' | 'goodness';
  validators: number;
  basePort: number;
  /** goodness workload: users with a good account (default 2000) */
  users?: number;
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ClusterRunOptions {
  /** label of the run in the report */
  name: string;
  rate: RateSpec;
  durationSec: number;
  limits: Limits;
  drainTimeoutSec?: number;
  progressEverySec?: number;
}

const isErrorLine = (line: string) => /^\s*(\w*Error|UserError)\b[:]/.test(line) || /"level":(50|60)/.test(line);

/** Why a cluster did not start, in one line: what `cluster start` said, and the error in the node's log. */
export function shortReason(err: unknown, logError?: string | null): string {
  const lines = ((err as Error).message ?? String(err)).split('\n');
  // what `cluster start` advises next (look at the logs, stop the nodes) is done here already
  const what = lines[0]!.replace(/\. See .*$/, '').replace(/\. The nodes keep running: .*$/, '').replace(/\.$/, '');
  const error = lines.find(isErrorLine) ?? logError;
  return `the cluster did not start: ${what}${error ? ` (${error.trim().slice(0, 240)})` : ''}`;
}

/**
 * Nodes that never wrote their pid file (still starting when another one failed) are found by
 * their command line, which names this cluster's unique temp folder, and stopped by pid.
 */
function killStragglers(dir: string): void {
  for (const entry of readdirSync('/proc', { withFileTypes: true })) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(`${dir}/node`)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

/** The clusters made and not yet closed, so that Ctrl-C stops their nodes too. */
const open = new Set<BenchCluster>();
let signalsHandled = false;

function closeOnSignal(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const dirs = [...open].map((c) => c.dir);
      console.log(`\n${signal}: stopping${dirs.length ? ` the cluster in ${dirs.join(', ')}` : ''} ...`);
      void Promise.allSettled([...open].map((c) => c.close(3_000))).finally(() => process.exit(130));
    });
  }
}

export class BenchCluster {
  private started = false;
  private closing: Promise<void> | null = null;
  private readonly log: (line: string) => void;
  /** unique to this cluster (the temp folder's random suffix), so that a node of another cluster on a port we chose is told apart */
  readonly chain: string;

  private constructor(
    readonly options: BenchClusterOptions,
    /** the cluster's temp folder */
    readonly dir: string,
  ) {
    this.log = options.log ?? ((line) => console.log(line));
    this.chain = `goodness-bench-${options.id}-${basename(dir).slice(-6)}`;
  }

  /** `cluster init` in a fresh temp folder; the nodes are not started yet. */
  static async create(o: BenchClusterOptions): Promise<BenchCluster> {
    closeOnSignal();
    const cluster = new BenchCluster(o, mkdtempSync(join(tmpdir(), `goodness-bench-${o.id}-`)));
    open.add(cluster);
    try {
      await initCluster({ nodes: o.validators, dir: cluster.dir, basePort: o.basePort, chain: cluster.chain, machine: o.machine });
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** `cluster start`; null when every node is healthy, else the reason in one line. */
  async start(): Promise<string | null> {
    const { validators, machine } = this.options;
    this.log(`goodness cluster init --nodes ${validators} --machine ${machine} --dir ${this.dir}; goodness cluster start ...`);
    this.started = true;
    try {
      await startCluster(this.dir, { timeoutMs: this.options.startTimeoutMs ?? 60_000, logLevel: 'warn' });
    } catch (err) {
      return shortReason(err, this.lastLogError());
    }
    return this.foreignNode();
  }

  /**
   * `cluster start` takes any healthy answer on a node's RPC port as the node's: when another
   * process already holds the port, the run would load a stranger's chain. Null when every port
   * answers for this cluster's chain.
   */
  private async foreignNode(): Promise<string | null> {
    for (const node of listNodes(this.dir)) {
      const version = (await rpcCall(node.rpc, 'getClientVersion')) as { chain?: unknown } | undefined;
      if (version?.chain !== this.chain) {
        return `the cluster did not start: ${node.rpc} answers for chain ${JSON.stringify(version?.chain ?? null)}, not this cluster's ${this.chain} (another process holds the port: choose another base port)`;
      }
    }
    return null;
  }

  /** The last error a node logged, "node2: ...", read before the folder and its logs are removed. */
  private lastLogError(): string | null {
    for (const node of listNodes(this.dir)) {
      let log: string;
      try {
        log = readFileSync(join(node.dir, LOG_FILE), 'utf8');
      } catch {
        continue; // the node never got to open its log
      }
      const line = log.split('\n').findLast(isErrorLine);
      if (line) return `${node.name}: ${line.trim()}`;
    }
    return null;
  }

  /** A fresh workload per run: the goodness one sets its organisations up on the chain it loads. */
  private workload(): Workload {
    if (this.options.machine === 'kv') return new KvWorkload();
    const governor = JSON.parse(readFileSync(join(this.dir, ACCOUNTS_DIR, GOVERNOR_KEY_FILE), 'utf8')) as { secretKey: string };
    return new GoodnessWorkload({ governorSecretKey: governor.secretKey, users: this.options.users });
  }

  /** A run that did not happen, in the report's shape, with the bound it would have had. */
  skippedRun(r: Omit<ClusterRunOptions, 'drainTimeoutSec' | 'progressEverySec'>, reason: string): RunReport {
    const { bound, boundBy } = boundOf(this.workload(), r.limits, this.options.validators, true);
    return skippedRun({ name: r.name, workload: this.options.machine, validators: this.options.validators, bound, boundBy }, r.rate, r.durationSec, reason);
  }

  /** One driver run against the started nodes; a failure is a skipped run and sets the exit code. */
  async run(r: ClusterRunOptions): Promise<RunReport> {
    const urls = listNodes(this.dir).map((n) => n.rpc);
    const workload = this.workload();
    try {
      return await benchRun({
        urls,
        workload,
        rate: r.rate,
        durationSec: r.durationSec,
        drainTimeoutSec: r.drainTimeoutSec ?? 60,
        limits: r.limits,
        name: r.name,
        progress: { plainEverySec: r.progressEverySec ?? 5 },
        log: this.log,
      });
    } catch (err) {
      const unavailable = err instanceof WorkloadUnavailable;
      const reason = unavailable ? err.message : `failed: ${(err as Error).message}`;
      if (!unavailable) process.exitCode = 1;
      this.log(`${r.name}: ${unavailable ? 'skipped' : 'FAILED'}: ${reason}`);
      const { bound, boundBy } = boundOf(workload, r.limits, this.options.validators, allLocal(urls));
      return skippedRun({ name: r.name, workload: this.options.machine, validators: this.options.validators, bound, boundBy }, r.rate, r.durationSec, reason);
    }
  }

  /** Stops the nodes (SIGTERM, then SIGKILL after `graceMs`) and removes the folder; safe to call twice. */
  close(graceMs?: number): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.started) {
          await stopCluster(this.dir, graceMs).catch(() => []);
          killStragglers(this.dir);
        }
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
        open.delete(this);
      }
    })();
    return this.closing;
  }
}
