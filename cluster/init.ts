// `goodness cluster init`: keys, genesis and one folder per node, like FISCO BCOS's
// build_chain.sh. A node folder is what an operator copies to its host: config.json,
// node-key.json and a copy of genesis.json; the node makes data/ itself.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { DEFAULT_CONSENSUS_PARAMS, type ValidatorRegistration } from '../consensus/chain/types.ts';
import {
  CONFIG_FILE,
  DEFAULT_POOL_LIMITS,
  DEFAULT_RPC_LIMITS,
  GENESIS_FILE,
  STATE_MACHINES,
  UserError,
  httpUrl,
  rpcUrlOf,
  validateGenesis,
  validateGoodnessApp,
  type GenesisFile,
  type NodeConfig,
  type StateMachineName,
} from './config.ts';
import { generateAccountKey, generateNodeKeys, NODE_KEY_FILE, writeSecretJson, type NodeKeyFile } from './keys.ts';

export const MIN_NODES = 1;
export const MAX_NODES = 16;
export const DEFAULT_BASE_PORT = 26650;
export const DEFAULT_CHAIN = 'goodness-local';
export const LOCAL_HOST = '127.0.0.1';
export const ACCOUNTS_DIR = 'accounts';
export const GOVERNOR_KEY_FILE = 'governor.json';

export interface InitOptions {
  nodes: number;
  dir: string;
  /** spread nodes round-robin over these hosts; absent: every node on 127.0.0.1 */
  hosts?: string[];
  basePort: number;
  chain: string;
  /** path of a JSON file with the genesis `app` section */
  appState?: string;
  machine: StateMachineName;
}

/** One node as `--json` lists it (cli.md); null where the command cannot know. */
export interface NodeSummary {
  name: string;
  dir: string;
  rpc: string;
  p2p: string;
  pid: number | null;
  height: number | null;
  view: number | null;
  peers: number | null;
  pending: number | null;
}

export function nodeName(index: number): string {
  return `node${index}`;
}

/** Node i listens for p2p on basePort + 2i and for RPC on basePort + 2i + 1. */
export function portsOf(basePort: number, index: number): { p2p: number; rpc: number } {
  return { p2p: basePort + 2 * index, rpc: basePort + 2 * index + 1 };
}

/** The multiaddr of a TCP address, by the kind of host (IPv4, IPv6 or DNS name). */
export function tcpMultiaddr(host: string, port: number): string {
  const kind = isIP(host);
  const proto = kind === 4 ? 'ip4' : kind === 6 ? 'ip6' : 'dns';
  return `/${proto}/${host}/tcp/${port}`;
}

function checkOptions(opts: InitOptions): void {
  if (!Number.isInteger(opts.nodes) || opts.nodes < MIN_NODES || opts.nodes > MAX_NODES) {
    throw new UserError(`--nodes must be a whole number from ${MIN_NODES} to ${MAX_NODES} (got ${opts.nodes}). PBFT tolerates f faults with 3f + 1 nodes: 4 is the usual choice.`);
  }
  const lastPort = portsOf(opts.basePort, opts.nodes - 1).rpc;
  if (!Number.isInteger(opts.basePort) || opts.basePort < 1 || lastPort > 65535) {
    throw new UserError(`--base-port ${opts.basePort} does not leave room for ${opts.nodes} nodes (each takes two ports, up to ${lastPort}); choose a port from 1024 to ${65535 - 2 * opts.nodes + 1}.`);
  }
  if (!/^[0-9A-Za-z_.-]{1,64}$/.test(opts.chain)) {
    throw new UserError(`--chain must be 1-64 characters of letters, digits, '_', '.' and '-' (got ${JSON.stringify(opts.chain)}).`);
  }
  if (!STATE_MACHINES.includes(opts.machine)) {
    throw new UserError(`--machine must be one of ${STATE_MACHINES.join(', ')} (got ${JSON.stringify(opts.machine)}).`);
  }
  if (opts.hosts !== undefined) {
    if (opts.hosts.length === 0) throw new UserError('--hosts needs at least one host, e.g. --hosts 10.0.0.1,10.0.0.2.');
    for (const host of opts.hosts) {
      if (!/^[0-9A-Za-z.:_-]+$/.test(host)) throw new UserError(`--hosts: ${JSON.stringify(host)} is not a host name or IP address; separate hosts with commas and no spaces.`);
    }
  }
}

function readAppState(path: string, machine: StateMachineName): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`--app-state: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). Pass a JSON file with the genesis app section.`);
  }
  let app: unknown;
  try {
    app = JSON.parse(text);
  } catch (err) {
    throw new UserError(`--app-state: ${path} is not valid JSON (${(err as Error).message}).`);
  }
  if (machine === 'goodness') validateGoodnessApp(app, `--app-state ${path}`);
  return app;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/**
 * Makes a cluster in `dir`. Refuses a folder that already holds one. genesis.json is written
 * last, so a folder holds a cluster exactly when it has genesis.json.
 */
export async function initCluster(opts: InitOptions): Promise<NodeSummary[]> {
  checkOptions(opts);
  const dir = resolve(opts.dir);
  const genesisPath = join(dir, GENESIS_FILE);
  if (existsSync(genesisPath)) {
    throw new UserError(`${dir} already holds a cluster (${GENESIS_FILE} exists). Start it with \`goodness cluster start --dir ${opts.dir}\`, or choose another --dir (or delete that folder) to make a new one.`);
  }
  for (let i = 0; i < opts.nodes; i++) {
    const nodeDir = join(dir, nodeName(i));
    if (existsSync(nodeDir)) throw new UserError(`${nodeDir} already exists (left over from an earlier init?). Delete it or choose another --dir.`);
  }
  const app = opts.appState !== undefined ? readAppState(opts.appState, opts.machine) : undefined;

  const keys: NodeKeyFile[] = [];
  for (let i = 0; i < opts.nodes; i++) keys.push(await generateNodeKeys());

  const hostOf = (i: number) => (opts.hosts ? opts.hosts[i % opts.hosts.length]! : LOCAL_HOST);
  // On a multi-host deployment a node binds every interface and announces its host's address;
  // a local cluster stays on loopback.
  const bindHost = opts.hosts ? '0.0.0.0' : LOCAL_HOST;
  const announceOf = (i: number) => tcpMultiaddr(hostOf(i), portsOf(opts.basePort, i).p2p);

  mkdirSync(dir, { recursive: true });
  const genesis: GenesisFile = {
    chain: opts.chain,
    genesisTime: Date.now(),
    validators: keys.map((k, index): ValidatorRegistration => ({ index, peerId: k.peerId, blsPublicKey: k.blsPublicKey, pop: k.pop })),
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
    app: app ?? defaultApp(dir, opts.machine),
    stateMachine: opts.machine,
  };
  // What we write must load: this also checks every proof of possession we just made.
  validateGenesis(genesis, 'generated genesis');

  const summaries: NodeSummary[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const name = nodeName(i);
    const nodeDir = join(dir, name);
    const ports = portsOf(opts.basePort, i);
    const config: NodeConfig = {
      name,
      index: i,
      dataDir: 'data',
      rpc: { host: bindHost, port: ports.rpc },
      p2p: { listen: tcpMultiaddr(bindHost, ports.p2p), announce: announceOf(i) },
      peers: keys.flatMap((k, j) => (j === i ? [] : [{ index: j, peerId: k.peerId, multiaddr: announceOf(j), rpc: httpUrl(hostOf(j), portsOf(opts.basePort, j).rpc) }])),
      pool: { ...DEFAULT_POOL_LIMITS },
      rpcLimits: { ...DEFAULT_RPC_LIMITS },
    };
    mkdirSync(nodeDir);
    writeJsonAtomic(join(nodeDir, CONFIG_FILE), config);
    writeSecretJson(join(nodeDir, NODE_KEY_FILE), keys[i]);
    writeJsonAtomic(join(nodeDir, GENESIS_FILE), genesis);
    summaries.push({ name, dir: nodeDir, rpc: rpcUrlOf(config), p2p: config.p2p.announce, pid: null, height: null, view: null, peers: null, pending: null });
  }
  writeJsonAtomic(genesisPath, genesis);
  return summaries;
}

/**
 * Without --app-state the goodness ledger gets one generated governor, whose key is kept in
 * DIR/accounts/governor.json so that the demo and tests can sign as it. The kv machine has no
 * app state.
 */
function defaultApp(dir: string, machine: StateMachineName): unknown {
  if (machine === 'kv') return {};
  const governor = generateAccountKey();
  const accounts = join(dir, ACCOUNTS_DIR);
  mkdirSync(accounts, { recursive: true });
  const path = join(accounts, GOVERNOR_KEY_FILE);
  if (existsSync(path)) throw new UserError(`${path} already exists; delete the accounts folder or choose another --dir.`);
  writeSecretJson(path, governor);
  return { governors: [governor.accountId], orgs: [] };
}
