// The backup format: a folder with snapshot.bin (every chain-store entry but the replica's
// consensus records, as length-prefixed key/value records) and manifest.json (what the snapshot
// holds and its SHA-256). One writer (writeSnapshot, run by the node itself or by the CLI on a
// stopped node's data dir) and one reader (readSnapshot, used by restore).
//
// A plain file rather than a second RocksDB: the node writes it with a few appends per batch and
// no second database engine in its process, it is one file to copy off the host, and restore
// checks its hash before anything is replaced.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, rmdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fromUtf8 } from '../consensus/crypto/encoding.ts';
import { Bucket } from '../state/store/chain-store.ts';
import type { KvStore } from '../state/store/kv-store.ts';
import type { StoredBlock } from '../state/store/types.ts';
import { UserError } from './config.ts';

export const BACKUP_FORMAT = 'goodness-backup';
export const BACKUP_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const SNAPSHOT_FILE = 'snapshot.bin';
/** snapshot.bin starts with these 8 bytes; then records of u32 key length, u32 value length, key, value (big-endian). */
const MAGIC = Buffer.from('GDNSBAK1', 'latin1');
const RECORD_HEADER_BYTES = 8;
/** How much the node reads and writes before it lets the event loop run again (consensus, RPC). */
const CHUNK_BYTES = 1024 * 1024;
const CHUNK_ENTRIES = 1000;

/**
 * Bucket V (the replica's own votes, prepared certificates and view) is left out of every
 * backup. Those records are promises of one signer at one moment: a backup's are older than
 * the votes the node signed after it was taken, so restoring them would not stop the node from
 * contradicting those later votes, and restored into another validator's folder (the chain data
 * is the same on every node) they would be someone else's promises. A restored node therefore
 * starts like a node whose data dir was wiped and then re-synced: at the backup's height, view
 * 0, no votes above its head. What keeps that safe: it signs a COMMIT (what certificates are
 * made of) only for a decided block, and decided blocks are unique per height with or without
 * persistence (consensus/pbft/README.md), so it cannot help certify a fork; it syncs to the
 * cluster's height before voting there, and joins a higher view only with f + 1 peers. What it
 * could do, before it catches up, is sign a PREPARE or PRECOMMIT that contradicts one it signed
 * after the backup and lost: one equivocating replica, which the f tolerance covers. Never run
 * the old node and the restored one at the same time: that is two signers with one key.
 */
export const EXCLUDED_BUCKETS: readonly number[] = [Bucket.CONSENSUS];

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  chain: string;
  /** hash of block 0, so a restore can tell two chains with one id apart */
  genesisHash: string;
  /** the state machine of the node folder it was taken from */
  machine: string;
  /** the head of the snapshot: the last block committed when it was taken */
  height: number;
  blockHash: string;
  appHash: string;
  /** the head block's timestamp (ms since the epoch) */
  blockTime: number;
  /** when the backup was taken (ISO 8601) */
  createdAt: string;
  /** the node it was taken from */
  node: string;
  /** key/value records and bytes of snapshot.bin, and its SHA-256 (0x hex) */
  entries: number;
  bytes: number;
  sha256: string;
  /** buckets left out (letters) */
  excluded: string[];
}

export interface SnapshotSource {
  node: string;
  machine: string;
  signal?: AbortSignal;
}

/**
 * Makes `outDir` (which must not exist or be empty) a backup of `kv`: one snapshot scan, written
 * in chunks of about CHUNK_BYTES with a yield to the event loop after each, so that a running
 * node keeps committing meanwhile. The manifest is written last (renamed into place): a folder
 * without one is an unfinished backup. On failure or abort what was written is removed.
 */
export async function writeSnapshot(kv: KvStore, outDir: string, source: SnapshotSource): Promise<BackupManifest> {
  const createdDir = await prepareOutDir(outDir);
  const snapshotPath = join(outDir, SNAPSHOT_FILE);
  const manifestTmp = join(outDir, `${MANIFEST_FILE}.tmp`);
  let file: FileHandle | null = null;
  try {
    const createdAt = new Date().toISOString();
    file = await open(snapshotPath, 'wx', 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    const append = async (buf: Buffer) => {
      hash.update(buf);
      await file!.write(buf);
      bytes += buf.length;
    };
    await append(MAGIC);
    let entries = 0;
    let genesis: Uint8Array | null = null;
    let head: Uint8Array | null = null;
    for await (const chunk of kv.scanSnapshot({ maxEntries: CHUNK_ENTRIES, maxBytes: CHUNK_BYTES })) {
      source.signal?.throwIfAborted();
      const kept = chunk.filter(([k]) => !EXCLUDED_BUCKETS.includes(k[0]!));
      // One buffer per chunk, the records copied in: few allocations for the node's GC.
      const out = Buffer.allocUnsafe(kept.reduce((n, [k, v]) => n + RECORD_HEADER_BYTES + k.length + v.length, 0));
      let at = 0;
      for (const [k, v] of kept) {
        if (k[0] === Bucket.BLOCK) {
          // Heights are big-endian, so the last block entry is the head; block 0 comes first.
          if (genesis === null && k.length === 9 && k.subarray(1).every((byte) => byte === 0)) genesis = v;
          head = v;
        }
        at = out.writeUInt32BE(k.length, at);
        at = out.writeUInt32BE(v.length, at);
        out.set(k, at);
        out.set(v, at + k.length);
        at += k.length + v.length;
      }
      entries += kept.length;
      await append(out);
      await yieldToLoop();
    }
    source.signal?.throwIfAborted();
    if (head === null) throw new UserError('the data dir holds no blocks: there is nothing to back up (has the node ever run?).');
    if (genesis === null) throw new Error('the data dir holds blocks but no block 0: it is not a chain store');
    const genesisBlock = JSON.parse(fromUtf8(genesis)) as StoredBlock;
    const headBlock = JSON.parse(fromUtf8(head)) as StoredBlock;
    await file.sync();
    await file.close();
    file = null;
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      chain: genesisBlock.header.chain,
      genesisHash: genesisBlock.hash,
      machine: source.machine,
      height: headBlock.header.number,
      blockHash: headBlock.hash,
      appHash: headBlock.header.appHash,
      blockTime: headBlock.header.timestamp,
      createdAt,
      node: source.node,
      entries,
      bytes,
      sha256: `0x${hash.digest('hex')}`,
      excluded: EXCLUDED_BUCKETS.map((b) => String.fromCharCode(b)),
    };
    await writeFile(manifestTmp, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    await rename(manifestTmp, join(outDir, MANIFEST_FILE));
    return manifest;
  } catch (err) {
    await file?.close().catch(() => undefined);
    await rm(snapshotPath, { force: true });
    await rm(manifestTmp, { force: true });
    if (createdDir) await rmdir(outDir).catch(() => undefined);
    throw err;
  }
}

/** Refuses a non-empty backup folder; makes a missing one. Returns whether it made it. */
async function prepareOutDir(outDir: string): Promise<boolean> {
  const problem = outDirProblem(outDir);
  if (problem) throw new UserError(problem);
  if (existsSync(outDir)) return false;
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  return true;
}

/** Why `outDir` cannot take a backup (it is a file, or a folder with something in it), or null. */
export function outDirProblem(outDir: string): string | null {
  if (!existsSync(outDir)) return null;
  if (!statSync(outDir).isDirectory()) return `${outDir} is a file, not a folder: pass --out a new or empty folder.`;
  if (readdirSync(outDir).length > 0) return `${outDir} is not empty: a backup goes into a new or empty folder, so that it never mixes with or overwrites another. Pass another --out.`;
  return null;
}

const HEX32 = /^0x[0-9a-f]{64}$/;

/** Reads and checks BACKUP_DIR/manifest.json. */
export function readManifest(backupDir: string): BackupManifest {
  const path = join(backupDir, MANIFEST_FILE);
  if (!existsSync(backupDir)) throw new UserError(`${backupDir} does not exist. Pass --from the folder that \`goodness backup --out\` wrote.`);
  if (!existsSync(path)) {
    throw new UserError(`${backupDir} has no ${MANIFEST_FILE}: it is not a backup, or the backup did not finish. Pass --from a folder that \`goodness backup --out\` completed.`);
  }
  let m: Partial<BackupManifest>;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Partial<BackupManifest>;
  } catch (err) {
    throw new UserError(`${path} is not valid JSON (${(err as Error).message}): the backup is damaged.`);
  }
  if (m.format !== BACKUP_FORMAT) throw new UserError(`${path} is not a goodness backup manifest (format ${JSON.stringify(m.format)}).`);
  if (m.version !== BACKUP_VERSION) throw new UserError(`${path} is a backup of format version ${m.version}; this goodness reads version ${BACKUP_VERSION}. Restore it with the goodness that made it.`);
  const ok =
    typeof m.chain === 'string' &&
    typeof m.machine === 'string' &&
    typeof m.node === 'string' &&
    typeof m.createdAt === 'string' &&
    [m.height, m.entries, m.bytes, m.blockTime].every((n) => Number.isSafeInteger(n) && n! >= 0) &&
    [m.genesisHash, m.blockHash, m.appHash, m.sha256].every((h) => typeof h === 'string' && HEX32.test(h)) &&
    Array.isArray(m.excluded);
  if (!ok) throw new UserError(`${path} is missing fields or has malformed ones: the backup is damaged.`);
  return m as BackupManifest;
}

/**
 * The entries of a backup's snapshot.bin, in chunks of about CHUNK_BYTES. Checks the file
 * against the manifest (magic, record framing, count, size, SHA-256); the whole-file checks can
 * only fail at the end, so the loop over it throws there: a caller writes the chunks somewhere
 * temporary and keeps them only when the loop has ended without an error.
 */
export async function* readSnapshot(backupDir: string, manifest: BackupManifest): AsyncIterable<[Buffer, Buffer][]> {
  const path = join(backupDir, SNAPSHOT_FILE);
  const damaged = (what: string) => new UserError(`${path} is damaged (${what}): take a new backup, or restore another one.`);
  if (!existsSync(path)) throw damaged('it is missing');
  const size = statSync(path).size;
  if (size !== manifest.bytes) throw damaged(`${size} bytes, the manifest says ${manifest.bytes}`);
  const hash = createHash('sha256');
  let pending: Buffer = Buffer.alloc(0);
  let sawMagic = false;
  let entries = 0;
  let batch: [Buffer, Buffer][] = [];
  let batchBytes = 0;
  for await (const data of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    const buf = data as Buffer;
    hash.update(buf);
    pending = pending.length === 0 ? buf : Buffer.concat([pending, buf]);
    let at = 0;
    if (!sawMagic) {
      if (pending.length < MAGIC.length) continue;
      if (!pending.subarray(0, MAGIC.length).equals(MAGIC)) throw damaged('it does not start with the backup magic');
      sawMagic = true;
      at = MAGIC.length;
    }
    while (pending.length - at >= RECORD_HEADER_BYTES) {
      const keyLength = pending.readUInt32BE(at);
      const valueLength = pending.readUInt32BE(at + 4);
      const end = at + RECORD_HEADER_BYTES + keyLength + valueLength;
      if (end > pending.length) break;
      const keyStart = at + RECORD_HEADER_BYTES;
      // Copies: `pending` is reused across reads.
      batch.push([Buffer.from(pending.subarray(keyStart, keyStart + keyLength)), Buffer.from(pending.subarray(keyStart + keyLength, end))]);
      batchBytes += end - at;
      entries++;
      at = end;
    }
    pending = pending.subarray(at);
    if (batchBytes >= CHUNK_BYTES) {
      yield batch;
      batch = [];
      batchBytes = 0;
    }
  }
  if (!sawMagic) throw damaged('it is shorter than its header');
  if (pending.length > 0) throw damaged(`it ends inside a record (${pending.length} bytes left over)`);
  if (entries !== manifest.entries) throw damaged(`${entries} records, the manifest says ${manifest.entries}`);
  if (`0x${hash.digest('hex')}` !== manifest.sha256) throw damaged('its SHA-256 is not the one in the manifest');
  if (batch.length > 0) yield batch;
}
