// The operator's command line (spec/cli.md). Each command loads its modules when it runs, so
// that `--help` answers at once without loading libp2p, RocksDB or BLS.
import { Command, InvalidArgumentError, Option } from 'commander';
import { registerBenchCommand } from './bench/command.ts';
import { UserError } from './config.ts';
import type { NodeSummary } from './init.ts';

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

export function statusTable(nodes: NodeSummary[]): string {
  return table(
    ['NODE', 'PID', 'HEIGHT', 'VIEW', 'PEERS', 'PENDING', 'RPC', 'P2P'],
    nodes.map((n) => [n.name, show(n.pid), show(n.height), show(n.view), show(n.peers), show(n.pending), n.rpc, n.p2p]),
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
      const { startCluster } = await import('./local.ts');
      const nodes = await startCluster(o.dir, { timeoutMs: o.timeout * 1000, logLevel: o.logLevel });
      if (o.json) return printJson(nodes);
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
    .description('a table of each node: pid, height, view, peers, pool size (- where a node does not answer)')
    .requiredOption('--dir <DIR>', 'the cluster folder')
    .option('--json', 'print the nodes as JSON: [{name, dir, rpc, p2p, pid, height, view, peers, pending}], null where unknown')
    .action(async (o: { dir: string; json?: boolean }) => {
      const { clusterStatus } = await import('./local.ts');
      const nodes = await clusterStatus(o.dir);
      if (o.json) return printJson(nodes);
      console.log(statusTable(nodes));
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
    .command('keygen')
    .description('make a new Ed25519 account key pair and print it as JSON: {accountId, did, publicKey, secretKey}')
    .addHelpText('after', '\nThe secret key is printed: redirect it to a file only you can read, e.g.\n  (umask 077; goodness keygen > alice.json)')
    .action(async () => {
      const { generateAccountKey } = await import('./keys.ts');
      printJson(generateAccountKey());
    });

  // The load driver (spec/cli.md "The load driver"): options in bench/command.ts.
  registerBenchCommand(program);

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

