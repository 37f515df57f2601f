// What `goodness bench` does once its options are read: find the nodes, measure this machine,
// run the workload, write and print the report, compare with an older one.
import { join } from 'node:path';
import { UserError } from '../config.ts';
import { readAccountSecretKey } from '../keys.ts';
import type { BenchCommandOptions } from './command.ts';
import { compareReports, comparisonTable, readReport } from './compare.ts';
import { measureLimits } from './limits.ts';
import { defaultOutDir, writeReport } from './output.ts';
import { markdownTable, REPORT_VERSION, type BenchReport } from './report.ts';
import { benchRun } from './run.ts';
import { GoodnessWorkload } from './workloads/goodness.ts';
import { KvWorkload } from './workloads/kv.ts';
import { WorkloadUnavailable, type Workload } from './workloads/types.ts';
import type { RateSpec } from './rate.ts';

/** How many blocks a signed transaction stays valid (tx.md: expires at most 1000 above the height). */
const EXPIRY_WARNING_SEC = 90;

async function nodesOf(o: BenchCommandOptions): Promise<string[]> {
  if (o.rpc && o.dir) throw new UserError('give either --rpc or --dir, not both.');
  if (o.rpc) return o.rpc;
  if (o.dir) {
    const { listNodes } = await import('../local.ts');
    return listNodes(o.dir).map((n) => n.rpc);
  }
  throw new UserError('say which nodes to load: --rpc http://HOST:PORT[,...] or --dir CLUSTER_FOLDER.');
}

function governorSecret(o: BenchCommandOptions): string {
  const path = o.governorKey ?? (o.dir ? join(o.dir, 'accounts', 'governor.json') : undefined);
  if (!path) throw new UserError('the goodness workload registers its organisations through governance: give --governor-key FILE (a governor key as `goodness keygen` prints it), or --dir of a cluster made without --app-state.');
  const key = readAccountSecretKey(path);
  if ('problem' in key) throw new UserError(`${key.problem}: give --governor-key FILE with a governor's key (the JSON \`goodness keygen\` prints).`);
  return key.secretKey;
}

/** Fails early, before minutes of measuring and signing, when a node does not answer. */
async function checkReachable(urls: string[]): Promise<void> {
  const { GoodnessClient } = await import('../../rpc/client.ts');
  await Promise.all(
    urls.map(async (url) => {
      const client = new GoodnessClient(url, { timeoutMs: 5_000 });
      try {
        await client.getClientVersion();
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new UserError(`cannot reach the node at ${url}: ${e.code ?? e.message}. Is the cluster running? (\`goodness cluster status --dir DIR\`)`);
      } finally {
        await client.close();
      }
    }),
  );
}

function rateOf(o: BenchCommandOptions): RateSpec {
  if (o.rate && o.backlog) throw new UserError('give either --rate or --backlog, not both.');
  if (o.backlog) return { kind: 'backlog', inFlight: o.backlog };
  return o.rate ?? { kind: 'max' };
}

export async function runBenchCommand(o: BenchCommandOptions): Promise<void> {
  const urls = await nodesOf(o);
  const rate = rateOf(o);
  const workload: Workload =
    o.workload === 'goodness' ? new GoodnessWorkload({ governorSecretKey: governorSecret(o), users: o.users, distributors: o.distributors, redeemShare: o.redeemShare }) : new KvWorkload();
  const oldReport = o.compare ? readReport(o.compare) : null;
  if (workload.signed && o.duration > EXPIRY_WARNING_SEC) {
    console.log(`note: signed transactions expire 1000 blocks after they are signed (tx.md); at about 10 blocks/s a run longer than ${EXPIRY_WARNING_SEC} s may see late ones refused as EXPIRED.`);
  }

  await checkReachable(urls);
  console.log('measuring this machine (Ed25519, BLS, RocksDB, libp2p loopback) ...');
  const limits = await measureLimits();
  let run;
  try {
    run = await benchRun({
      urls,
      workload,
      rate,
      durationSec: o.duration,
      txs: o.txs,
      limits,
      batchMax: o.batch,
      requestsPerNode: o.requests,
      drainTimeoutSec: o.drainTimeout,
      progress: { plainEverySec: o.progressEvery },
    });
  } catch (err) {
    if (err instanceof WorkloadUnavailable) throw new UserError(err.message);
    throw err;
  }
  const report: BenchReport = { tool: 'goodness bench', version: REPORT_VERSION, createdAt: new Date().toISOString(), limits, runs: [run] };
  const paths = await writeReport(report, o.out ?? defaultOutDir());
  console.log('\n' + markdownTable(report));
  if (oldReport && o.compare) console.log('\n' + comparisonTable(compareReports(oldReport, report), o.compare));
  console.log(`\nHTML report: ${paths.html}`);
  console.log(paths.json);
}
