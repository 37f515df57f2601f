// `npm start` (spec/cli.md): a local cluster running the goodness ledger with its data under
// ./.goodness, made on first run and resumed afterwards; a live status line until Ctrl-C,
// which stops the nodes cleanly.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { statusTable } from './cli.ts';
import { GENESIS_FILE, UserError } from './config.ts';
import { DEFAULT_BASE_PORT, DEFAULT_CHAIN, initCluster, type NodeSummary } from './init.ts';
import { clusterStatus, rpcCall, startCluster, stopCluster } from './local.ts';

const DIR = resolve('.goodness');
/** The local cluster of spec/cli.md: four validators, one fault tolerated. */
const NODES = 4;
const TTY_REFRESH_MS = 1000;
/** Without a terminal each status is a new line: fewer of them keep a log readable. */
const PLAIN_REFRESH_MS = 5000;

function fail(err: unknown): never {
  const message = err instanceof UserError ? err.message : ((err as Error)?.stack ?? String(err));
  process.stderr.write(`goodness: ${message}\n`);
  process.exit(1);
}

async function ensureCluster(): Promise<void> {
  if (existsSync(join(DIR, GENESIS_FILE))) {
    console.log(`Resuming the cluster in ${DIR}.`);
    return;
  }
  const nodes = await initCluster({ nodes: NODES, dir: DIR, basePort: DEFAULT_BASE_PORT, chain: DEFAULT_CHAIN, machine: 'goodness' });
  console.log(`Made a cluster of ${nodes.length} validator${nodes.length === 1 ? '' : 's'} in ${DIR} (governor key in ${join(DIR, 'accounts', 'governor.json')}).`);
}

/** Tracks committed transactions between samples to show a rate. */
class Throughput {
  private last: { at: number; total: number } | null = null;
  sample(total: number | null, at: number): number | null {
    if (total === null) return null;
    const prev = this.last;
    this.last = { at, total };
    if (!prev || at <= prev.at) return null;
    return ((total - prev.total) * 1000) / (at - prev.at);
  }
}

function statusLine(nodes: NodeSummary[], tps: number | null): string {
  const up = nodes.filter((n) => n.height !== null);
  const height = up.length ? Math.max(...up.map((n) => n.height!)) : null;
  const pending = up.length ? Math.max(...up.map((n) => n.pending ?? 0)) : null;
  const time = new Date().toLocaleTimeString();
  return `${time}  nodes up ${up.length}/${nodes.length}  height ${height ?? '-'}  pending ${pending ?? '-'}  tx/s ${tps === null ? '-' : tps.toFixed(1)}`;
}

async function committedTotal(nodes: NodeSummary[]): Promise<number | null> {
  for (const n of nodes) {
    const answer = (await rpcCall(n.rpc, 'getTotalTransactionCount')) as { transactions?: unknown } | undefined;
    if (typeof answer?.transactions === 'number') return answer.transactions;
  }
  return null;
}

async function main(): Promise<void> {
  await ensureCluster();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.log('\nStill stopping the nodes; please wait.');
      return;
    }
    stopping = true;
    if (process.stdout.isTTY) process.stdout.write('\n');
    console.log(`${signal}: stopping the cluster...`);
    try {
      for (const r of await stopCluster(DIR)) console.log(`  ${r.name}: ${r.outcome === 'killed' ? 'killed after 10 s' : r.outcome === 'stopped' ? 'stopped' : 'was not running'}`);
      console.log(`Stopped. Run \`npm start\` again to resume from ${DIR}.`);
      process.exit(0);
    } catch (err) {
      fail(err);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  let nodes: NodeSummary[];
  try {
    nodes = await startCluster(DIR);
  } catch (err) {
    // Leave nothing running behind a failed start.
    await stopCluster(DIR).catch(() => undefined);
    throw err;
  }
  console.log(`\n${statusTable(nodes)}\n\nRPC: ${nodes.map((n) => n.rpc).join(' ')}\nCtrl-C stops the cluster.\n`);

  const tty = Boolean(process.stdout.isTTY);
  const throughput = new Throughput();
  while (!stopping) {
    const now = await clusterStatus(DIR);
    const tps = throughput.sample(await committedTotal(now), Date.now());
    if (stopping) break;
    const line = statusLine(now, tps);
    if (tty) process.stdout.write(`\r${line}\x1b[K`);
    else console.log(line);
    await new Promise((r) => setTimeout(r, tty ? TTY_REFRESH_MS : PLAIN_REFRESH_MS));
  }
}

main().catch(fail);
