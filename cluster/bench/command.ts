// `goodness bench` (spec/cli.md): its options and help. The action loads the driver only when
// it runs, so that `goodness --help` stays instant.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { RateSpec } from './rate.ts';

function positiveNumber(name: string, integer = false) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isSafeInteger(n))) {
      throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'whole ' : ''}number.`);
    }
    return n;
  };
}

function rateOption(text: string): RateSpec {
  if (text.trim().toLowerCase() === 'max') return { kind: 'max' };
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('--rate is a number of transactions per second, or max.');
  return { kind: 'rate', tps: n };
}

function urlList(text: string): string[] {
  const urls = text.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  if (urls.length === 0) throw new InvalidArgumentError('--rpc needs at least one URL, e.g. --rpc http://10.0.0.1:26651,http://10.0.0.2:26653.');
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new InvalidArgumentError(`--rpc: ${JSON.stringify(u)} is not a URL; give http://HOST:PORT, separated by commas.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`--rpc: ${u} is not an http(s) URL.`);
  }
  return urls;
}

export interface BenchCommandOptions {
  rpc?: string[];
  dir?: string;
  workload: 'kv' | 'goodness';
  rate?: RateSpec;
  backlog?: number;
  duration: number;
  out?: string;
  txs?: number;
  batch: number;
  requests: number;
  drainTimeout: number;
  users: number;
  distributors: number;
  redeemShare: number;
  governorKey?: string;
  compare?: string;
  progressEvery: number;
}

export function registerBenchCommand(program: Command): Command {
  return program
    .command('bench')
    .description(
      'the load driver: sends kv or goodness transactions to the nodes (signed before the clock starts) at a fixed rate, a fixed backlog or as fast as the cluster admits, shows live progress, and writes a report (JSON and an HTML page with charts) with committed throughput, commit latency p50/p95/p99/max, rejections by code and a per-second timeline',
    )
    .option('--rpc <URL,...>', 'the nodes to load, comma-separated (load is spread over all of them)', urlList)
    .option('--dir <DIR>', 'a local cluster folder (from `goodness cluster init`): its nodes are the --rpc URLs and its accounts/governor.json the --governor-key')
    .addOption(new Option('--workload <NAME>', 'kv: key=value transactions of the kv machine; goodness: the low-carbon travel scenario (deeds and redemptions of many users)').choices(['kv', 'goodness']).default('kv'))
    .option('--rate <TPS|max>', 'offer TPS transactions per second, or max: as fast as the nodes admit, backing off on -32002 (default: max)', rateOption)
    .option('--backlog <N>', 'instead of a rate: keep N transactions in flight (sent, not yet committed)', positiveNumber('--backlog', true))
    .option('--duration <SECONDS>', 'how long to send; the run then waits for what is in flight', positiveNumber('--duration'), 30)
    .option('--out <DIR>', 'folder for report.json and report.html (default: bench-out/<time>)')
    .option('--txs <N>', 'transactions to prepare (default: rate x duration; for max and backlog an estimate from the machine limits, capped; the run says if they ran out)', positiveNumber('--txs', true))
    .option('--batch <N>', 'transactions per JSON-RPC batch, at most', positiveNumber('--batch', true), 500)
    .option('--requests <N>', 'HTTP requests in flight per node, at most', positiveNumber('--requests', true), 4)
    .option('--drain-timeout <SECONDS>', 'how long to wait, after sending stops, for transactions in flight to commit', positiveNumber('--drain-timeout'), 60)
    .option('--users <N>', 'goodness: users with a good account', positiveNumber('--users', true), 2000)
    .option('--distributors <N>', 'goodness: distributor organisations', positiveNumber('--distributors', true), 16)
    .option('--redeem-share <FRACTION>', 'goodness: share of redemptions among the measured transactions, 0 to 1', (t) => {
      const n = Number(t);
      if (t.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError('--redeem-share is a fraction from 0 to 1, e.g. 0.2.');
      return n;
    }, 0.2)
    .option('--governor-key <FILE>', 'goodness: a governor account key (JSON of `goodness keygen`) whose approval alone passes a proposal, to register the organisations')
    .option('--compare <OLD.json>', 'after the run, print each result as a ratio to the same run in an earlier report')
    .option('--progress-every <SECONDS>', 'when stdout is not a terminal: seconds between progress lines', positiveNumber('--progress-every'), 5)
    .addHelpText(
      'after',
      `
Examples:
  goodness bench --dir ./mychain --workload kv --rate 2000 --duration 30
  goodness bench --rpc http://10.0.0.1:26651,http://10.0.0.2:26653 --workload kv --rate max --duration 60
  goodness bench --dir ./mychain --workload goodness --backlog 2000 --duration 30 --compare bench-out/old/report.json

The report's path is printed last. Latency is measured from the send of the request that got a
transaction admitted to the arrival of its block's newBlocks notice.`,
    )
    .action(async (o: BenchCommandOptions) => {
      const { runBenchCommand } = await import('./cli-run.ts');
      await runBenchCommand(o);
    });
}
