// `goodness backup` and `goodness restore` (issue 6): what the operator runs. A running node is
// asked over its admin socket to write the backup itself (it alone can open its RocksDB); a
// stopped node's data dir is read here. Restore writes a fresh RocksDB beside the data dir,
// checks it, and only then puts it in place.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { genesisHeader, headerHash } from '../consensus/chain/header.ts';
import { to0x } from '../consensus/crypto/encoding.ts';
import { genesisAppHash } from '../state/app-hash.ts';
import { ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { ADMIN_SOCKET, AdminUnreachable, adminRequest } from './admin.ts';
import { outDirProblem, readManifest, readSnapshot, writeSnapshot, type BackupManifest } from './backup.ts';
import { loadNodeConfig, UserError, type GenesisFile, type LoadedNode } from './config.ts';
import { runningPid } from './local.ts';

const PING_TIMEOUT_MS = 2_000;
/** Restore writes the new RocksDB in batches of about this many bytes. */
const RESTORE_BATCH_BYTES = 4 * 1024 * 1024;

export interface BackupResult {
  manifest: BackupManifest;
  out: string;
  /** whether the running node wrote it (else the CLI read the stopped node's data dir) */
  online: boolean;
}

/** `goodness backup --dir NODE_FOLDER --out BACKUP_DIR`. */
export async function backupNode(dir: string, outArg: string): Promise<BackupResult> {
  const node = loadNodeConfig(dir);
  const out = resolve(outArg);
  const problem = outDirProblem(out);
  if (problem) throw new UserError(problem);
  if (out === node.dataDir || out.startsWith(node.dataDir + sep)) throw new UserError(`${out} is inside the node's data dir ${node.dataDir}: put the backup somewhere else.`);
  const socket = join(node.dir, ADMIN_SOCKET);
  const pid = runningPid(node.dir);
  if (pid !== null || existsSync(socket)) {
    try {
      const answer = await adminRequest(socket, { op: 'backup', out });
      if (!answer.ok) throw answer.operatorError ? new UserError(`${node.config.name}: ${answer.error}`) : new Error(answer.error);
      if (!('manifest' in answer)) throw new Error(`${socket} answered a backup request without a manifest`);
      return { manifest: answer.manifest, out, online: true };
    } catch (err) {
      if (!(err instanceof AdminUnreachable)) throw err;
      if (pid !== null) {
        throw new UserError(
          `${node.config.name} is running (pid ${pid}) but does not answer on ${socket}. Restart it with this version of goodness (it opens the socket at start; see its log), or stop it and run the backup again: a stopped node's data dir is read directly.`,
        );
      }
      // A killed node's leftover socket: the node is not running, read its data dir.
    }
  }
  return { manifest: await offlineBackup(node, out), out, online: false };
}

async function offlineBackup(node: LoadedNode, out: string): Promise<BackupManifest> {
  if (!existsSync(join(node.dataDir, 'CURRENT'))) {
    throw new UserError(`${node.config.name} has no chain data in ${node.dataDir} (has it ever run?): there is nothing to back up.`);
  }
  const kv = await openDataDir(node.dataDir, node);
  try {
    return await writeSnapshot(kv, out, { node: node.config.name, machine: node.genesis.stateMachine });
  } finally {
    await kv.close();
  }
}

async function openDataDir(path: string, node: LoadedNode): Promise<RocksKvStore> {
  try {
    return await RocksKvStore.open(path);
  } catch (err) {
    const cause = String((err as { cause?: unknown }).cause ?? '');
    if (/LOCK/.test(cause)) {
      throw new UserError(`${path} is in use by another process (a node starting or stopping?). Wait until ${node.config.name} runs and try again, or stop it.`);
    }
    throw err;
  }
}

export interface RestoreResult {
  manifest: BackupManifest;
  dataDir: string;
  /** where --force moved the data dir it replaced, or null */
  movedAside: string | null;
}

/** The hash of block 0 as this genesis.json makes it (chain.md), with no node asked. */
export function genesisHashOf(genesis: GenesisFile): string {
  return to0x(headerHash(genesisHeader(genesis, genesisAppHash(genesis.app))));
}

/** `goodness restore --from BACKUP_DIR --dir NODE_FOLDER [--force]`. */
export async function restoreNode(fromArg: string, dir: string, opts: { force?: boolean } = {}): Promise<RestoreResult> {
  const node = loadNodeConfig(dir);
  const from = resolve(fromArg);
  const name = node.config.name;
  await refuseRunning(node);
  const manifest = readManifest(from);

  const genesisPath = join(node.dir, 'genesis.json');
  if (manifest.chain !== node.genesis.chain) {
    throw new UserError(`${from} is a backup of chain ${manifest.chain}, but ${genesisPath} is chain ${node.genesis.chain}. Restore a backup of this chain.`);
  }
  if (manifest.genesisHash !== genesisHashOf(node.genesis)) {
    throw new UserError(`${from} is a backup of another chain also called ${manifest.chain}: its genesis block ${manifest.genesisHash} is not the one ${genesisPath} makes (${genesisHashOf(node.genesis)}). Restore a backup of this chain.`);
  }
  if (manifest.machine !== node.genesis.stateMachine) {
    throw new UserError(`${from} is a backup of a ${manifest.machine} node, but ${genesisPath} runs the ${node.genesis.stateMachine} machine. Restore a backup of this chain.`);
  }

  const dataDir = node.dataDir;
  const occupied = existsSync(dataDir) && readdirSync(dataDir).length > 0;
  if (occupied && !opts.force) {
    throw new UserError(`${name}'s data dir ${dataDir} is not empty. Pass --force to move it aside (to ${dataDir}.replaced-TIME) and restore, or remove it yourself.`);
  }

  mkdirSync(dirname(dataDir), { recursive: true });
  // Written beside the data dir (same file system, so the final rename is atomic) and put in
  // place only once it is complete and checked.
  const staging = mkdtempSync(`${dataDir}.restoring-`);
  try {
    await writeStaging(staging, from, manifest);
    let movedAside: string | null = null;
    if (occupied) {
      movedAside = `${dataDir}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(dataDir, movedAside);
    } else if (existsSync(dataDir)) {
      rmSync(dataDir, { recursive: true });
    }
    try {
      renameSync(staging, dataDir);
    } catch (err) {
      if (movedAside) renameSync(movedAside, dataDir);
      throw err;
    }
    return { manifest, dataDir, movedAside };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function refuseRunning(node: LoadedNode): Promise<void> {
  const pid = runningPid(node.dir);
  const stop = `Stop it first (\`goodness cluster stop\`, or SIGTERM to the node), then restore.`;
  if (pid !== null) throw new UserError(`${node.config.name} is running (pid ${pid}): a running node's data dir cannot be replaced. ${stop}`);
  try {
    await adminRequest(join(node.dir, ADMIN_SOCKET), { op: 'ping' }, { timeoutMs: PING_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof AdminUnreachable) return;
    throw new UserError(`${node.config.name} may be running: ${join(node.dir, ADMIN_SOCKET)} accepts connections but does not answer (${(err as Error).message}). ${stop}`);
  }
  throw new UserError(`${node.config.name} is running (it answers on ${join(node.dir, ADMIN_SOCKET)}). ${stop}`);
}

/** Writes the snapshot into a new RocksDB at `staging` and checks that it opens as the manifest's chain. */
async function writeStaging(staging: string, from: string, manifest: BackupManifest): Promise<void> {
  const kv = await RocksKvStore.open(staging);
  try {
    let ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
    let bytes = 0;
    for await (const chunk of readSnapshot(from, manifest)) {
      for (const [key, value] of chunk) {
        ops.push({ type: 'put', key, value });
        bytes += key.length + value.length;
        if (bytes >= RESTORE_BATCH_BYTES) {
          await kv.write(ops);
          ops = [];
          bytes = 0;
        }
      }
    }
    await kv.write(ops);
    // The store's own reading of what was written: its head and blocks must be the manifest's.
    const store = await ChainStore.open(kv);
    const damaged = (what: string) => new UserError(`${from} does not hold the chain its manifest describes (${what}): take a new backup.`);
    if (store.latestHeight() !== manifest.height) throw damaged(`head at height ${store.latestHeight()}, manifest ${manifest.height}`);
    const head = await store.getBlock(manifest.height);
    if (head?.hash !== manifest.blockHash || head.header.appHash !== manifest.appHash) throw damaged(`block ${manifest.height} differs`);
    if ((await store.getBlock(0))?.hash !== manifest.genesisHash) throw damaged('block 0 differs');
    if ((await store.consensusRecords()).length > 0) throw damaged('it carries consensus records');
  } finally {
    await kv.close();
  }
}
