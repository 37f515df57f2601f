// `goodness cluster add-node`: a new node folder for an existing cluster. The node is no
// validator yet: it starts as an observer that follows the chain through the other nodes'
// JSON-RPC (the validators' p2p network admits validators only), and becomes a validator when
// governance commits the `validator.add` action this command prints (spec/goodness.md). From
// then on the validators admit its connections, and it votes from the height the schedule gives
// (consensus/validator-schedule.ts).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONFIG_FILE, GENESIS_FILE, UserError, loadGenesis, rpcUrlOf, DEFAULT_POOL_LIMITS, DEFAULT_RPC_LIMITS, type NodeConfig } from './config.ts';
import { LOCAL_HOST, nodeName, portsOf, tcpMultiaddr, writeJsonAtomic, type NodeSummary } from './init.ts';
import { NODE_KEY_FILE, generateNodeKeys, writeSecretJson } from './keys.ts';
import { listNodes } from './local.ts';

export interface AddNodeOptions {
  /** the cluster folder made by `cluster init` */
  dir: string;
  /** the new node's host on a multi-host cluster (it binds 0.0.0.0 and announces this); absent: this host, loopback */
  host?: string;
  /** its p2p port (RPC on the next one); default: the next free pair of the local cluster, or 26650 on its own host */
  port?: number;
}

export interface AddedNode {
  node: NodeSummary;
  /** the governance action that makes it a validator: `gov.propose {proposal, action}` */
  action: { type: 'validator.add'; peerId: string; blsPublicKey: string; pop: string };
}

export async function addNode(opts: AddNodeOptions): Promise<AddedNode> {
  const dir = resolve(opts.dir);
  const existing = listNodes(dir);
  const genesisPath = join(dir, GENESIS_FILE);
  if (!existsSync(genesisPath)) throw new UserError(`${genesisPath} is missing: add-node needs the cluster folder made by \`goodness cluster init\`.`);
  const genesis = loadGenesis(genesisPath);
  const number = Math.max(...existing.map((n) => Number(n.name.slice(4)))) + 1;
  const name = nodeName(number);
  const nodeDir = join(dir, name);
  if (existsSync(nodeDir)) throw new UserError(`${nodeDir} already exists.`);
  if (opts.host !== undefined && !/^[0-9A-Za-z.:_-]+$/.test(opts.host)) throw new UserError(`--host ${JSON.stringify(opts.host)} is not a host name or IP address.`);

  // A local cluster's ports follow node0's: node i uses base + 2i and base + 2i + 1.
  const first = existing[0]!;
  const base = Number(/\/tcp\/(\d+)/.exec(first.config.p2p.listen)?.[1] ?? 26650) - 2 * Number(first.name.slice(4));
  const ports = opts.port !== undefined ? { p2p: opts.port, rpc: opts.port + 1 } : opts.host ? { p2p: 26650, rpc: 26651 } : portsOf(base, number);
  if (!Number.isInteger(ports.p2p) || ports.p2p < 1 || ports.rpc > 65535) throw new UserError(`--port ${opts.port} is not a port from 1 to 65534.`);
  const host = opts.host ?? LOCAL_HOST;
  const bindHost = opts.host ? '0.0.0.0' : LOCAL_HOST;

  const keys = await generateNodeKeys();
  const config: NodeConfig = {
    name,
    index: null,
    dataDir: 'data',
    rpc: { host: bindHost, port: ports.rpc },
    p2p: { listen: tcpMultiaddr(bindHost, ports.p2p), announce: tcpMultiaddr(host, ports.p2p) },
    // The validators it dials (once promoted they admit it) and whose RPC it follows meanwhile.
    peers: existing.flatMap((n) => {
      const v = n.config.index === null ? undefined : genesis.validators.find((g) => g.index === n.config.index);
      return v ? [{ index: v.index, peerId: v.peerId, multiaddr: n.config.p2p.announce, rpc: rpcUrlOf(n.config) }] : [];
    }),
    pool: { ...DEFAULT_POOL_LIMITS },
    rpcLimits: { ...DEFAULT_RPC_LIMITS },
  };
  mkdirSync(nodeDir);
  writeJsonAtomic(join(nodeDir, CONFIG_FILE), config);
  writeSecretJson(join(nodeDir, NODE_KEY_FILE), keys);
  copyFileSync(genesisPath, join(nodeDir, GENESIS_FILE));
  return {
    node: { name, dir: nodeDir, rpc: rpcUrlOf(config), p2p: config.p2p.announce, pid: null, height: null, view: null, peers: null, pending: null },
    action: { type: 'validator.add', peerId: keys.peerId, blsPublicKey: keys.blsPublicKey, pop: keys.pop },
  };
}
