// The files of a cluster and of a node folder, and their loaders. A loader checks everything a
// node would otherwise trip over later (keys that do not match genesis, a bad proof of
// possession, a port out of range) and says what is wrong in which file and what to do.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { DEFAULT_CONSENSUS_PARAMS, type ConsensusParams, type Genesis, type ValidatorRegistration } from '../consensus/chain/types.ts';
import { BLS_PUBLIC_KEY_BYTES, BLS_SIGNATURE_BYTES, blsPopVerify } from '../consensus/crypto/bls.ts';
import { from0x, to0x } from '../consensus/crypto/encoding.ts';
import { GenesisError, parseGoodnessGenesis, type GoodnessGenesis } from '../state/goodness/genesis.ts';
import { NODE_KEY_FILE, parseNodeKeyFile, type NodeKeys } from './keys.ts';

/** An operator's mistake: the message says what was wrong and what to do; no stack trace. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

export const STATE_MACHINES = ['goodness', 'kv'] as const;
export type StateMachineName = (typeof STATE_MACHINES)[number];

/**
 * genesis.json. Beyond cli.md's `{chain, genesisTime, validators, consensus, app}` it may name
 * the state machine the chain runs (`stateMachine`, default "goodness").
 */
export interface GenesisFile extends Genesis {
  stateMachine: StateMachineName;
}

export interface PeerAddress {
  index: number;
  peerId: string;
  multiaddr: string;
  /** its JSON-RPC URL: where this node follows the chain while no validator admits it (an observer) */
  rpc?: string;
}

/** config.json of a node folder. */
export interface NodeConfig {
  name: string;
  /**
   * this node's validator index in genesis; null for a node that is not a genesis validator
   * (`cluster add-node`): it follows the chain as an observer until governance adds it
   */
  index: number | null;
  /** RocksDB folder, relative to the node folder (or absolute) */
  dataDir: string;
  /** where the RPC server binds: 127.0.0.1 for a local cluster, 0.0.0.0 on a multi-host one */
  rpc: { host: string; port: number };
  /** listen: the address libp2p binds; announce: the address other validators dial */
  p2p: { listen: string; announce: string };
  /** the other validators and the addresses they announce */
  peers: PeerAddress[];
  pool: { maxTxs: number; maxBytes: number; maxPerSender: number };
  rpcLimits: { maxBodyBytes: number; maxBatch: number };
}

export const DEFAULT_POOL_LIMITS: NodeConfig['pool'] = { maxTxs: 100_000, maxBytes: 256 * 1024 * 1024, maxPerSender: 10_000 };
/**
 * V8 options a node process is started with (they must be given at startup: V8 reads its heap
 * sizes once). A node allocates fast and most of it dies young (transaction bytes, decoded
 * transactions, receipts); the default 16 MiB semi-space collected that every few milliseconds
 * under load and copied much of it on to the old generation. 32 MiB: 8-12% more committed
 * transactions with the signed workload on four validators (README, "Running nodes"); 64 MiB did
 * no better. Operators starting `goodness node` themselves pass it in NODE_OPTIONS.
 */
export const NODE_V8_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
export const DEFAULT_RPC_LIMITS: NodeConfig['rpcLimits'] = { maxBodyBytes: 1024 * 1024, maxBatch: 1000 };

export const CONFIG_FILE = 'config.json';
export const GENESIS_FILE = 'genesis.json';
export const PID_FILE = 'node.pid';
export const LOG_FILE = 'node.log';

/** Everything `runNode` needs from a node folder, checked against itself. */
export interface LoadedNode {
  /** the node folder, absolute */
  dir: string;
  config: NodeConfig;
  /** config.dataDir resolved against the folder */
  dataDir: string;
  genesis: GenesisFile;
  keys: NodeKeys;
  /** this node's own entry of genesis.validators; null for an observer */
  validator: ValidatorRegistration | null;
}

const CHAIN_RE = /^[0-9A-Za-z_.-]{1,64}$/;
const MULTIADDR_RE = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/(\d+)(\/.*)?$/;
/** heights in flight at once, at most: deeper pipelines buy nothing on a LAN and each height in flight holds a speculative state */
const MAX_WINDOW = 16;

/** A little path-tracking checker, so every error names the field: `validators[2].pop ...`. */
class Check {
  constructor(readonly source: string) {}
  fail(path: string, problem: string, fix: string): never {
    throw new UserError(`${this.source}: ${path ? path + ' ' : ''}${problem}. ${fix}`);
  }
  object(value: unknown, path: string, fix: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'must be a JSON object', fix);
    return value as Record<string, unknown>;
  }
  array(value: unknown, path: string, fix: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'must be a JSON array', fix);
    return value;
  }
  string(value: unknown, path: string, fix: string): string {
    if (typeof value !== 'string' || value.length === 0) this.fail(path, 'must be a non-empty string', fix);
    return value;
  }
  integer(value: unknown, path: string, min: number, max: number, fix: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(path, `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`, fix);
    }
    return value;
  }
}

function readJson(path: string, what: string, fix: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path} does not exist: ${what} is missing. ${fix}`);
    throw new UserError(`cannot read ${path} (${code ?? (err as Error).message}). Check its permissions.`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path} is not valid JSON (${(err as Error).message}). ${fix}`);
  }
}

const REGENERATE = 'Fix the file, or make a new cluster with `goodness cluster init`.';

/** Reads and checks genesis.json (chain.md, cli.md). Checks each validator's proof of possession. */
export function loadGenesis(path: string): GenesisFile {
  return validateGenesis(readJson(path, 'the genesis file', REGENERATE), path);
}

export function validateGenesis(value: unknown, source = 'genesis'): GenesisFile {
  const c: Check = new Check(source);
  const g = c.object(value, '', REGENERATE);
  const chain = c.string(g.chain, 'chain', REGENERATE);
  if (!CHAIN_RE.test(chain)) c.fail('chain', 'must be 1-64 characters of [0-9A-Za-z_.-]', REGENERATE);
  const genesisTime = c.integer(g.genesisTime, 'genesisTime', 0, Number.MAX_SAFE_INTEGER, REGENERATE);

  const stateMachine = g.stateMachine === undefined ? 'goodness' : g.stateMachine;
  if (!STATE_MACHINES.includes(stateMachine as StateMachineName)) {
    c.fail('stateMachine', `must be one of ${STATE_MACHINES.map((m) => `"${m}"`).join(', ')} (got ${JSON.stringify(stateMachine)})`, REGENERATE);
  }

  const list = c.array(g.validators, 'validators', REGENERATE);
  if (list.length === 0) c.fail('validators', 'must name at least one validator', REGENERATE);
  const validators: ValidatorRegistration[] = [];
  const peerIds = new Set<string>();
  const blsKeys = new Set<string>();
  list.forEach((entry, i) => {
    const at = `validators[${i}]`;
    const v = c.object(entry, at, REGENERATE);
    const index = c.integer(v.index, `${at}.index`, 0, Number.MAX_SAFE_INTEGER, REGENERATE);
    if (i > 0 && index <= validators[i - 1]!.index) c.fail(`${at}.index`, `(${index}) must be greater than the one before: validators are sorted by index and indexes are distinct`, REGENERATE);
    const peerId = c.string(v.peerId, `${at}.peerId`, REGENERATE);
    checkPeerId(c, peerId, `${at}.peerId`);
    if (peerIds.has(peerId)) c.fail(`${at}.peerId`, 'appears twice', REGENERATE);
    peerIds.add(peerId);
    const blsPublicKey = c.string(v.blsPublicKey, `${at}.blsPublicKey`, REGENERATE);
    const pk = from0x(blsPublicKey, BLS_PUBLIC_KEY_BYTES);
    if (!pk) c.fail(`${at}.blsPublicKey`, `must be ${BLS_PUBLIC_KEY_BYTES} bytes of 0x lowercase hex`, REGENERATE);
    if (blsKeys.has(blsPublicKey)) c.fail(`${at}.blsPublicKey`, 'appears twice', REGENERATE);
    blsKeys.add(blsPublicKey);
    const pop = c.string(v.pop, `${at}.pop`, REGENERATE);
    const popBytes = from0x(pop, BLS_SIGNATURE_BYTES);
    if (!popBytes) c.fail(`${at}.pop`, `must be ${BLS_SIGNATURE_BYTES} bytes of 0x lowercase hex`, REGENERATE);
    // A key without a valid proof of possession would allow a rogue-key attack on aggregates.
    if (!blsPopVerify(pk, popBytes)) c.fail(`${at}.pop`, 'is not a valid proof of possession of its blsPublicKey', REGENERATE);
    validators.push({ index, peerId, blsPublicKey, pop });
  });

  const consensus = validateConsensusParams(c, g.consensus);
  const app = g.app === undefined ? null : g.app;
  if (stateMachine === 'goodness') validateGoodnessApp(app, `${source} app`);
  return { chain, genesisTime, validators, consensus, app, stateMachine: stateMachine as StateMachineName };
}

function checkPeerId(c: Check, peerId: string, path: string): void {
  let type: string;
  try {
    type = peerIdFromString(peerId).type;
  } catch {
    c.fail(path, `(${peerId}) is not a libp2p peer id`, REGENERATE);
  }
  if (type !== 'Ed25519') c.fail(path, `(${peerId}) is a ${type} peer id; validators use Ed25519`, REGENERATE);
}

function validateConsensusParams(c: Check, value: unknown): ConsensusParams {
  const p = c.object(value, 'consensus', REGENERATE);
  const out = {} as ConsensusParams;
  for (const key of Object.keys(DEFAULT_CONSENSUS_PARAMS) as (keyof ConsensusParams)[]) {
    // `window` came after the first genesis files: absent means the default every node assumes.
    if (key === 'window' && p[key] === undefined) {
      out.window = DEFAULT_CONSENSUS_PARAMS.window;
      continue;
    }
    out[key] = c.integer(p[key], `consensus.${key}`, 1, key === 'window' ? MAX_WINDOW : Number.MAX_SAFE_INTEGER, REGENERATE);
  }
  return out;
}

const APP_FIX = 'Fix the app state (see the README: {"governors": [accountId...], "orgs": [{"org", "name", "roles"}]}).';

/**
 * Checks the goodness ledger's genesis app section with the ledger's own parser, so that what
 * init and the loader accept is exactly what the ledger will open.
 */
export function validateGoodnessApp(value: unknown, source: string): GoodnessGenesis {
  try {
    return parseGoodnessGenesis(value);
  } catch (err) {
    if (err instanceof GenesisError) throw new UserError(`${source}: ${err.message}. ${APP_FIX}`);
    throw err;
  }
}

const NODE_FIX = 'Fix config.json, or copy the node folder again from the cluster made by `goodness cluster init`.';

export function validateNodeConfig(value: unknown, source = CONFIG_FILE): NodeConfig {
  const c: Check = new Check(source);
  const v = c.object(value, '', NODE_FIX);
  const name = c.string(v.name, 'name', NODE_FIX);
  const index = v.index === null ? null : c.integer(v.index, 'index', 0, Number.MAX_SAFE_INTEGER, NODE_FIX);
  const dataDir = c.string(v.dataDir, 'dataDir', NODE_FIX);
  const rpc = c.object(v.rpc, 'rpc', NODE_FIX);
  const rpcHost = c.string(rpc.host, 'rpc.host', NODE_FIX);
  const rpcPort = c.integer(rpc.port, 'rpc.port', 1, 65535, NODE_FIX);
  const p2p = c.object(v.p2p, 'p2p', NODE_FIX);
  const listen = checkMultiaddr(c, p2p.listen, 'p2p.listen');
  const announce = checkMultiaddr(c, p2p.announce, 'p2p.announce');
  const peers = c.array(v.peers, 'peers', NODE_FIX).map((entry, i) => {
    const at = `peers[${i}]`;
    const p = c.object(entry, at, NODE_FIX);
    const peerIndex = c.integer(p.index, `${at}.index`, 0, Number.MAX_SAFE_INTEGER, NODE_FIX);
    const peerId = c.string(p.peerId, `${at}.peerId`, NODE_FIX);
    checkPeerId(c, peerId, `${at}.peerId`);
    const multiaddr = checkMultiaddr(c, p.multiaddr, `${at}.multiaddr`);
    if (p.rpc === undefined) return { index: peerIndex, peerId, multiaddr };
    const rpc = c.string(p.rpc, `${at}.rpc`, NODE_FIX);
    if (!/^https?:\/\/[^/]+\/?$/.test(rpc)) c.fail(`${at}.rpc`, `(${rpc}) must be an http(s) URL such as http://10.0.0.2:26651`, NODE_FIX);
    return { index: peerIndex, peerId, multiaddr, rpc };
  });
  const pool = c.object(v.pool, 'pool', NODE_FIX);
  const limits = c.object(v.rpcLimits, 'rpcLimits', NODE_FIX);
  const big = Number.MAX_SAFE_INTEGER;
  return {
    name,
    index,
    dataDir,
    rpc: { host: rpcHost, port: rpcPort },
    p2p: { listen, announce },
    peers,
    pool: {
      maxTxs: c.integer(pool.maxTxs, 'pool.maxTxs', 1, big, NODE_FIX),
      maxBytes: c.integer(pool.maxBytes, 'pool.maxBytes', 1, big, NODE_FIX),
      maxPerSender: c.integer(pool.maxPerSender, 'pool.maxPerSender', 1, big, NODE_FIX),
    },
    rpcLimits: {
      maxBodyBytes: c.integer(limits.maxBodyBytes, 'rpcLimits.maxBodyBytes', 1, big, NODE_FIX),
      maxBatch: c.integer(limits.maxBatch, 'rpcLimits.maxBatch', 1, big, NODE_FIX),
    },
  };
}

function checkMultiaddr(c: Check, value: unknown, path: string): string {
  const addr = c.string(value, path, NODE_FIX);
  const m = MULTIADDR_RE.exec(addr);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) c.fail(path, `(${addr}) must be a TCP multiaddr such as /ip4/127.0.0.1/tcp/26650`, NODE_FIX);
  return addr;
}

/**
 * Loads a node folder (config.json, node-key.json, genesis.json) and checks that it hangs
 * together: its keys are those genesis registers at its index, its peers are validators.
 */
export function loadNodeConfig(dir: string): LoadedNode {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new UserError(`node folder ${abs} does not exist. Pass the folder of one node, such as DIR/node0 of \`goodness cluster init --dir DIR\`.`);
  const configPath = join(abs, CONFIG_FILE);
  if (!existsSync(configPath)) {
    throw new UserError(`${abs} is not a node folder: it has no ${CONFIG_FILE}. Pass the folder of one node, such as DIR/node0 of \`goodness cluster init --dir DIR\`, not DIR itself.`);
  }
  const config = validateNodeConfig(readJson(configPath, 'the node config', NODE_FIX), configPath);
  const keyPath = join(abs, NODE_KEY_FILE);
  const keyJson = readJson(keyPath, "the node's keys", 'Copy node-key.json from the cluster made by `goodness cluster init` into the node folder.');
  let keys: NodeKeys;
  try {
    keys = parseNodeKeyFile(keyJson);
  } catch (err) {
    throw new UserError(`${keyPath}: ${(err as Error).message}. Copy the node's key file again from the cluster made by \`goodness cluster init\`.`);
  }
  const genesisPath = join(abs, GENESIS_FILE);
  const genesis = loadGenesis(genesisPath);

  const mismatch = `The node folder does not belong to this genesis: copy the whole folder again from one \`goodness cluster init\`.`;
  let validator: ValidatorRegistration | null = null;
  if (config.index === null) {
    const registered = genesis.validators.find((v) => v.peerId === keys.peerId);
    if (registered) throw new UserError(`${configPath}: index is null (an observer), but genesis registers this node's key as validator ${registered.index}: set "index": ${registered.index}.`);
  } else {
    validator = genesis.validators.find((v) => v.index === config.index) ?? null;
    if (!validator) throw new UserError(`${configPath}: index ${config.index} is not a validator of ${genesisPath}. ${mismatch}`);
    if (validator.peerId !== keys.peerId) throw new UserError(`${keyPath}: peer id ${keys.peerId} is not the one genesis registers for validator ${config.index} (${validator.peerId}). ${mismatch}`);
    if (validator.blsPublicKey !== to0x(keys.blsPublicKey)) throw new UserError(`${keyPath}: the BLS key is not the one genesis registers for validator ${config.index}. ${mismatch}`);
  }
  config.peers.forEach((peer, i) => {
    // A peer with a genesis index must be that validator; others joined later by governance.
    const registered = genesis.validators.find((v) => v.index === peer.index);
    if (registered && registered.peerId !== peer.peerId) {
      throw new UserError(`${configPath}: peers[${i}] (index ${peer.index}, ${peer.peerId}) is not validator ${peer.index} of ${genesisPath}. ${mismatch}`);
    }
  });
  const dataDir = isAbsolute(config.dataDir) ? config.dataDir : join(abs, config.dataDir);
  return { dir: abs, config, dataDir, genesis, keys, validator };
}

/** The URL clients use: the bind address, or the announced host when the node binds every interface. */
export function rpcUrlOf(config: NodeConfig): string {
  let host = config.rpc.host;
  if (host === '0.0.0.0' || host === '::') host = MULTIADDR_RE.exec(config.p2p.announce)?.[0].split('/')[2] ?? '127.0.0.1';
  return httpUrl(host, config.rpc.port);
}

export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
