// The operator's command line (spec/cli.md). Each command loads its modules when it runs, so
// that `--help` answers at once without loading libp2p, RocksDB or BLS.
import { Command, InvalidArgumentError, Option } from 'commander';
import { registerBenchCommand } from './bench/command.ts';
import { registerGovCommand } from './gov.ts';
import { UserError } from './config.ts';
import type { NodeSummary } from './init.ts';
import type { NodeStatus } from './local.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integerOption(name: string, min: number, max: number) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function hostList(text: string): string[] {
  const hosts = text.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  if (hosts.length === 0) throw new InvalidArgumentError('--hosts needs at least one host, e.g. --hosts 10.0.0.1,10.0.0.2.');
  return hosts;
}

const show = (v: number | string | null) => (v === null ? '-' : String(v));

/** A plain text table: a header row and left-aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** "0.4s", "12s", "5m", "3h": how long ago, at a glance. */
export function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}

function roleCell(n: Partial<NodeStatus>): string {
  if (n.role === 'observer') return 'observer';
  return n.validatorIndex === null || n.validatorIndex === undefined ? '-' : String(n.validatorIndex);
}

function syncCell(n: Partial<NodeStatus>): string {
  if (n.syncing === null || n.syncing === undefined) return '-';
  return n.syncing ? `yes, to ${show(n.highestKnownHeight ?? null)}` : 'no';
}

/** The `cluster status` table; takes plain summaries too (the extra columns then show -). */
export function statusTable(nodes: (NodeSummary & Partial<NodeStatus>)[]): string {
  return table(
    ['NODE', 'PID', 'INDEX', 'HEIGHT', 'VIEW', 'LEADER', 'LAST COMMIT', 'VIEW CHANGES', 'SYNCING', 'PEERS', 'PENDING', 'RPC', 'P2P'],
    nodes.map((n) => [
      n.name,
      show(n.pid),
      roleCell(n),
      show(n.height),
      show(n.view),
      show(n.leader ?? null),
      ago(n.lastCommitAgeMs),
      show(n.viewChanges ?? null),
      syncCell(n),
      show(n.peers),
      show(n.pending),
      n.rpc,
      n.p2p,
    ]),
  );
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function buildProgram(): Command {
  const program = new Command('goodness')
    .description('Goodness: a BFT consensus chain with the goodness ledger. Deploy, run and inspect clusters.')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', '\nRun `goodness COMMAND --help` for the options of a command.');

  const cluster = program.command('cluster').description('make, start, stop and inspect a cluster of validators');

  cluster
    .command('init')
    .description(
      'make keys (libp2p identity, BLS key with its proof of possession), DIR/genesis.json and one folder per node (DIR/node0, DIR/node1, ...) with its config',
    )
    .requiredOption('--nodes <N>', 'number of validators, 1 to 16 (4 tolerates one faulty node)', integerOption('--nodes', 1, 16))
    .requiredOption('--dir <DIR>', 'folder for the cluster; must not already hold one')
    .option('--hosts <h1,h2,...>', 'spread the nodes round-robin over these hosts (IP addresses or DNS names) for a multi-host deployment; nodes then bind 0.0.0.0 and announce their host', hostList)
    .option('--base-port <P>', 'node i uses port P + 2i for p2p and P + 2i + 1 for RPC', integerOption('--base-port', 1, 65535), 26650)
    .option('--chain <ID>', 'chain id (1-64 characters of letters, digits, _ . -)', 'goodness-local')
    .option('--app-state <FILE>', "JSON file with genesis's app section: for the goodness ledger {governors: [accountId...], orgs: [{org, name, roles}]}; default: one generated governor, its key in DIR/accounts/governor.json")
    .addOption(new Option('--machine <NAME>', 'state machine the chain runs').choices(['goodness', 'kv']).default('goodness'))
    .option('--json', 'print the nodes as JSON: [{name, dir, rpc, p2p, pid, height, view, peers, pending}]')
    .addHelpText('after', '\nExamples:\n  goodness cluster init --nodes 4 --dir ./mychain\n  goodness cluster init --nodes 4 --dir ./prod --hosts 10.0.0.1,10.0.0.2 --chain prod-1')
    .action(async (o: { nodes: number; dir: string; hosts?: string[]; basePort: number; chain: string; appState?: string; machine: 'goodness' | 'kv'; json?: boolean }) => {
      const { initCluster, GOVERNOR_KEY_FILE, ACCOUNTS_DIR } = await import('./init.ts');
      const nodes = await initCluster({ nodes: o.nodes, dir: o.dir, hosts: o.hosts, basePort: o.basePort, chain: o.chain, appState: o.appState, machine: o.machine });
      if (o.json) return printJson(nodes);
      const { dirname, join } = await import('node:path');
      const dir = dirname(nodes[0]!.dir);
      console.log(`Made a cluster of ${nodes.length} validator${nodes.length === 1 ? '' : 's'} in ${dir} (chain ${o.chain}, ${o.machine} machine):\n`);
      console.log(table(['NODE', 'RPC', 'P2P', 'FOLDER'], nodes.map((n) => [n.name, n.rpc, n.p2p, n.dir])));
      if (o.machine === 'goodness' && !o.appState) console.log(`\nGovernor account key: ${join(dir, ACCOUNTS_DIR, GOVERNOR_KEY_FILE)} (keep it secret).`);
      if (o.hosts) console.log(`\nCopy each node folder to its host and run \`goodness node --dir FOLDER\` there.`);
      else console.log(`\nStart it with: goodness cluster start --dir ${o.dir}`);
    });

  cluster
    .command('start')
    .description('start every node of DIR on this host as background processes (logs in DIR/nodeI/node.log), wait until all are healthy, print their RPC URLs')
    .requiredOption('--dir <DIR>', 'the cluster folder made by `goodness cluster init`')
    .option('--timeout <SECONDS>', 'how long to wait for the nodes to become healthy', integerOption('--timeout', 1, 3600), 60)
    .addOption(new Option('--log-level <LEVEL>', 'log level of the nodes').choices(LOG_LEVELS))
    .option('--json', 'print the nodes as JSON: [{name, dir, rpc, p2p, pid, height, view, peers, pending}]')
    .action(async (o: { dir: string; timeout: number; logLevel?: string; json?: boolean }) => {
      const { startCluster, summaryOf } = await import('./local.ts');
      const nodes = await startCluster(o.dir, { timeoutMs: o.timeout * 1000, logLevel: o.logLevel });
      // The keys of `cluster init --json`; `cluster status --json` adds the consensus glance.
      if (o.json) return printJson(nodes.map(summaryOf));
      console.log(`${nodes.length} node${nodes.length === 1 ? '' : 's'} running. RPC:`);
      for (const n of nodes) console.log(`  ${n.name}  ${n.rpc}`);
      console.log(`\nStatus: goodness cluster status --dir ${o.dir}\nStop:   goodness cluster stop --dir ${o.dir}`);
    });

  cluster
    .command('stop')
    .description('stop the nodes of DIR running on this host: SIGTERM, then SIGKILL after 10 s')
    .requiredOption('--dir <DIR>', 'the cluster folder')
    .action(async (o: { dir: string }) => {
      const { stopCluster } = await import('./local.ts');
      for (const r of await stopCluster(o.dir)) {
        if (r.outcome === 'not-running') console.log(`${r.name}: was not running`);
        else if (r.outcome === 'stopped') console.log(`${r.name}: stopped (pid ${r.pid})`);
        else console.log(`${r.name}: did not stop within 10 s, killed (pid ${r.pid})`);
      }
    });

  cluster
    .command('status')
    .description('a table of each node: pid, validator index (or observer), height, view, leader, time since its last commit, view changes since it started, syncing, peers, pool size (- where a node does not answer)')
    .requiredOption('--dir <DIR>', 'the cluster folder')
    .option('--json', 'print the nodes as JSON: [{name, dir, rpc, p2p, pid, height, view, peers, pending, role, validatorIndex, leader, lastCommitAgeMs, viewChanges, syncing, highestKnownHeight}], null where unknown')
    .action(async (o: { dir: string; json?: boolean }) => {
      const { clusterStatus } = await import('./local.ts');
      const nodes = await clusterStatus(o.dir);
      if (o.json) return printJson(nodes);
      console.log(statusTable(nodes));
    });

  cluster
    .command('add-node')
    .description('make a folder for one more node of the cluster in DIR: it starts as an observer that follows the chain, and becomes a validator when governance adds it (goodness gov propose --add-validator FOLDER)')
    .requiredOption('--dir <DIR>', 'the cluster folder made by `goodness cluster init`')
    .option('--host <HOST>', 'the new node\'s host on a multi-host cluster (it binds 0.0.0.0 and announces HOST)')
    .option('--port <P>', 'its p2p port (RPC on P + 1); default: the next pair after the local nodes, or 26650 with --host', integerOption('--port', 1, 65534))
    .option('--json', 'print {node: {name, dir, rpc, p2p, ...}, action} as JSON')
    .action(async (o: { dir: string; host?: string; port?: number; json?: boolean }) => {
      const { addNode } = await import('./add-node.ts');
      const added = await addNode({ dir: o.dir, host: o.host, port: o.port });
      if (o.json) return printJson(added);
      console.log(`Made ${added.node.dir} (RPC ${added.node.rpc}, p2p ${added.node.p2p}).`);
      console.log(`\n1. Start it: ${o.host ? `copy the folder to ${o.host} and run \`goodness node --dir FOLDER\` there` : `goodness cluster start --dir ${o.dir} (or goodness node --dir ${added.node.dir})`}; it follows the chain as an observer.`);
      console.log(`2. Once it has caught up (goodness cluster status), make it a validator:\n   goodness gov propose --rpc URL --key GOVERNOR_KEY --proposal add-${added.node.name} --add-validator ${added.node.dir}`);
    });

  program
    .command('node')
    .description('run one node in the foreground (what a service manager or a container runs); stops cleanly on SIGINT or SIGTERM')
    .requiredOption('--dir <DIR>', 'the node folder, such as DIR/node0 of `goodness cluster init --dir DIR`')
    .addOption(new Option('--log-level <LEVEL>', 'log level').choices(LOG_LEVELS).default('info'))
    .action(async (o: { dir: string; logLevel: string }) => {
      // Loaded only here: libp2p, RocksDB and the machines are not needed by the other commands.
      const { runNode } = await import('./node.ts');
      await runNode(o.dir, { logLevel: o.logLevel });
    });

  program
    .command('backup')
    .description(
      "write a consistent snapshot of a node's chain data (blocks, certificates, transactions, receipts, state) to a new folder; a running node writes it itself, asked over NODE_FOLDER/admin.sock, and keeps committing meanwhile; a stopped node's data dir is read directly",
    )
    .requiredOption('--dir <DIR>', 'the node folder, such as DIR/node0 of `goodness cluster init --dir DIR`')
    .requiredOption('--out <BACKUP_DIR>', 'a new or empty folder for the backup (manifest.json and snapshot.bin)')
    .option('--json', 'print the manifest as JSON: {format, version, chain, genesisHash, machine, height, blockHash, appHash, blockTime, createdAt, node, entries, bytes, sha256, excluded}')
    .addHelpText('after', '\nExample:\n  goodness backup --dir ./mychain/node3 --out ./backups/node3-$(date +%F)')
    .action(async (o: { dir: string; out: string; json?: boolean }) => {
      const { backupNode } = await import('./backup-cli.ts');
      const { manifest: m, out, online } = await backupNode(o.dir, o.out);
      if (o.json) return printJson(m);
      console.log(`Backed up ${m.node} (${online ? 'running: it wrote the snapshot itself' : 'stopped: read from its data dir'}) to ${out}:`);
      console.log(`  chain    ${m.chain}\n  height   ${m.height}\n  block    ${m.blockHash}\n  app hash ${m.appHash}\n  size     ${m.entries} entries, ${m.bytes} bytes`);
      console.log(`\nRestore it into a stopped node with: goodness restore --from ${out} --dir NODE_FOLDER`);
    });

  program
    .command('restore')
    .description("replace a stopped node's data dir with a backup of its chain; started again, the node syncs the blocks committed since the backup from its peers")
    .requiredOption('--from <BACKUP_DIR>', 'a folder written by `goodness backup`')
    .requiredOption('--dir <DIR>', 'the node folder; the node must be stopped')
    .option('--force', 'replace a data dir that is not empty: it is moved aside to DATA_DIR.replaced-TIME, not deleted')
    .action(async (o: { from: string; dir: string; force?: boolean }) => {
      const { restoreNode } = await import('./backup-cli.ts');
      const { manifest: m, dataDir, movedAside } = await restoreNode(o.from, o.dir, { force: o.force });
      console.log(`Restored ${dataDir} from ${o.from}: chain ${m.chain} at height ${m.height} (block ${m.blockHash}), ${m.entries} entries, taken from ${m.node} at ${m.createdAt}.`);
      if (movedAside) console.log(`The data dir it replaced is now ${movedAside}: delete it once the node has caught up.`);
      console.log(`\nStart the node (goodness node --dir ${o.dir}): it syncs the blocks after ${m.height} from its peers.`);
    });

  program
    .command('keygen')
    .description('make a new Ed25519 account key pair and print it as JSON: {accountId, did, publicKey, secretKey}')
    .addHelpText('after', '\nThe secret key is printed: redirect it to a file only you can read, e.g.\n  (umask 077; goodness keygen > alice.json)')
    .action(async () => {
      const { generateAccountKey } = await import('./keys.ts');
      printJson(generateAccountKey());
    });

  // The load driver (spec/cli.md "The load driver"): options in bench/command.ts.
  registerBenchCommand(program);
  registerGovCommand(program);

  return program;
}

const FS_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'it already exists',
  EADDRINUSE: 'the address is already in use',
};

/** Turns an operator's mistake into one clear line and exit code 1; a bug keeps its stack. */
export function reportError(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof UserError || e?.name === 'UserError') {
    process.stderr.write(`goodness: ${e.message}\n`);
    return 1;
  }
  if (e?.code && FS_ERRORS[e.code] && e.syscall) {
    const net = e as NodeJS.ErrnoException & { address?: string; port?: number };
    const what = e.path ?? (net.address ? `${net.address}:${net.port}` : '');
    const fix = e.code === 'EADDRINUSE' ? 'Stop what uses that port, or make the cluster with another --base-port.' : 'Check the path and its permissions.';
    process.stderr.write(`goodness: cannot ${e.syscall} ${what}: ${FS_ERRORS[e.code]} (${e.code}). ${fix}\n`);
    return 1;
  }
  process.stderr.write(`goodness: internal error (please report it):\n${e?.stack ?? String(err)}\n`);
  return 1;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

