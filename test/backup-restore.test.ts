// Backup and restore (issue 6), run as an operator runs them: four validator processes on
// loopback under a steady load, `goodness backup` and `goodness restore` as child processes of
// the real bin. A backup of a running node is written by the node itself (admin.sock) while it
// keeps committing; restored into a wiped node, it catches up by sync and agrees on every block
// hash; restored into another validator's folder, it does the same. The refusals an operator
// can run into are checked on the way.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createConnection } from 'node:net';
import { pino } from 'pino';
import { ADMIN_SOCKET, adminRequest, startAdminServer } from '../cluster/admin.ts';
import { readSnapshot, writeSnapshot, type BackupManifest } from '../cluster/backup.ts';
import { UserError } from '../cluster/config.ts';
import { headerHash } from '../consensus/chain/header.ts';
import { sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { initCluster } from '../cluster/init.ts';
import type { Receipt } from '../rpc/types.ts';
import { Bucket, ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { LocalCluster, SteadyLoad, sameChain, type ClusterNode } from './fixtures/cluster-process.ts';
import { genesisHashOf } from './fixtures/node-process.ts';
import { syntheticBlock } from './fixtures/synthetic-blocks.ts';

const BASE_PORT = 29600;
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'goodness.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real bin on this test's Node (22), from a cwd outside the project. */
function goodness(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function assertUserError(run: Run, ...mentions: string[]): void {
  assert.is(run.code, 1, `exit code 1 expected, got ${run.code}; stdout: ${run.stdout} stderr: ${run.stderr}`);
  assert.ok(run.stderr.startsWith('goodness: '), `one "goodness: ..." line: ${run.stderr}`);
  for (const m of mentions) assert.ok(run.stderr.includes(m), `stderr should mention ${JSON.stringify(m)}: ${run.stderr}`);
  assert.not.match(run.stderr, /\n\s+at /, 'no stack trace for an operator error');
}

function manifestOf(run: Run): BackupManifest {
  assert.is(run.code, 0, `backup failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as BackupManifest;
}

/** The receipts `node` holds for `hashes` (those it does not hold are left out). */
async function receiptsOn(node: ClusterNode, hashes: string[]): Promise<Receipt[]> {
  const out: Receipt[] = [];
  for (const h of hashes) {
    const r = await node.client.getTransactionReceipt(h);
    if (r) out.push(r);
  }
  return out;
}

/** Opens a stopped node's data dir directly (what the node will load at its next start). */
async function openData(node: ClusterNode): Promise<ChainStore> {
  return ChainStore.open(await RocksKvStore.open(join(node.dir, 'data')));
}

/** Asserts that `fn` rejects with an operator error (UserError) whose message matches `re`. */
async function rejectsWithUserError(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `an operator error expected, got ${String(err)}`);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

/** A chain store on RocksDB in a temp dir with block 0 and `blocks` synthetic blocks. */
async function syntheticStore(dir: string, blocks: number): Promise<{ store: ChainStore; commitNext(): Promise<void> }> {
  const store = await ChainStore.open(await RocksKvStore.open(dir));
  const header = { ...syntheticBlock(1, to0x(sha256(utf8('none')))).block.header, number: 0, txCount: 0 };
  let parent = to0x(headerHash(header));
  await store.writeGenesis({ header, hash: parent, view: 0, txHashes: [] });
  const commitNext = async () => {
    const c = syntheticBlock(store.latestHeight() + 1, parent);
    await store.commitBlock(c);
    parent = c.block.hash;
  };
  for (let i = 0; i < blocks; i++) await commitNext();
  return { store, commitNext };
}

test('a snapshot taken while blocks commit is one consistent state; damage and aborts are caught', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'goodness-snapshot-'));
  try {
    // Enough blocks for many chunks (each chunk is one yield to the event loop, where the
    // writer below gets to commit), so the scan and the commits really interleave.
    const { store, commitNext } = await syntheticStore(join(scratch, 'db'), 3000);
    const heightAtStart = store.latestHeight();
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await commitNext();
        // A RocksDB batch write returns on the main thread (a resolved promise): without this a
        // loop of them would starve the event loop. A node's commits are driven by I/O anyway.
        await new Promise((r) => setImmediate(r));
      }
    })();
    let manifest: BackupManifest;
    try {
      manifest = await writeSnapshot(store.kv, join(scratch, 'backup'), { node: 'test', machine: 'kv' });
    } finally {
      writing = false;
      await writer;
    }
    const heightAtEnd = store.latestHeight();
    console.log(`  snapshot at height ${manifest.height} while commits went from ${heightAtStart} to ${heightAtEnd}; ${manifest.entries} entries, ${manifest.bytes} bytes`);
    assert.ok(heightAtEnd > heightAtStart, 'blocks were committed while the snapshot was written');
    assert.ok(manifest.height >= heightAtStart && manifest.height <= heightAtEnd);

    // Read back into a fresh store: exactly blocks 0..height, whole, and the state of that height.
    const copy = await RocksKvStore.open(join(scratch, 'copy'));
    for await (const chunk of readSnapshot(join(scratch, 'backup'), manifest)) await copy.write(chunk.map(([key, value]) => ({ type: 'put' as const, key, value })));
    const restored = await ChainStore.open(copy);
    try {
      assert.is(restored.latestHeight(), manifest.height, 'the head record is the one of the last block in the snapshot');
      assert.is((await restored.getBlock(manifest.height))!.hash, manifest.blockHash);
      for (const h of [1, Math.floor(manifest.height / 2), manifest.height]) {
        const block = (await restored.getBlock(h))!;
        assert.is((await restored.getBlockReceipts(h)).length, block.txHashes.length, `block ${h} has all its transactions`);
        assert.ok(await restored.getCertificate(h), `block ${h} has its certificate`);
      }
      const blockKeys: number[] = [];
      for await (const [k] of copy.range(Uint8Array.of(0x48), Uint8Array.of(0x49))) blockKeys.push(Number(Buffer.from(k).readBigUInt64BE(1)));
      assert.is(blockKeys.length, manifest.height + 1, 'no block above the head, none missing');
      const reader = restored.stateReader();
      assert.is(Buffer.from((await reader.get(utf8('last')))!).toString(), String(manifest.height), 'the state is the one of the head block');
      assert.ok(await reader.get(utf8(`h/${manifest.height}`)));
      assert.not.ok(await reader.get(utf8(`h/${manifest.height - 1}`)), 'and no later or earlier state');
    } finally {
      await restored.close();
    }

    // A backup into a folder that is not empty is refused; an aborted one leaves nothing.
    await rejectsWithUserError(() => writeSnapshot(store.kv, join(scratch, 'backup'), { node: 'test', machine: 'kv' }), /not empty/);
    const aborted = new AbortController();
    aborted.abort(new UserError('stop'));
    await rejectsWithUserError(() => writeSnapshot(store.kv, join(scratch, 'aborted'), { node: 'test', machine: 'kv', signal: aborted.signal }), /stop/);
    assert.not.ok(existsSync(join(scratch, 'aborted')), 'an aborted backup removes what it wrote');
    await store.close();

    // One flipped byte, or a cut, and reading refuses (restore reads into a staging folder first).
    const snapshotPath = join(scratch, 'backup', 'snapshot.bin');
    const good = readFileSync(snapshotPath);
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 1;
    for (const bad of [flipped, good.subarray(0, good.length - 3)]) {
      writeFileSync(snapshotPath, bad);
      const m = bad.length === good.length ? manifest : { ...manifest, bytes: bad.length };
      await rejectsWithUserError(async () => {
        for await (const _ of readSnapshot(join(scratch, 'backup'), m)) void _;
      }, /is damaged/);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('the admin socket: a stale file is replaced; a backup stops when its client goes or the node stops', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'goodness-admin-'));
  const path = join(scratch, ADMIN_SOCKET);
  const { store } = await syntheticStore(join(scratch, 'db'), 1);
  try {
    // Enough data (~30 MB) that a backup is still running when it is interrupted.
    for (let b = 0; b < 100; b++) {
      await store.kv.write(Array.from({ length: 1000 }, (_, i) => ({ type: 'put' as const, key: Buffer.concat([Uint8Array.of(Bucket.STATE), utf8(`bulk/${b}/${i}`)]), value: new Uint8Array(300) })));
    }
    writeFileSync(path, 'left by a killed node');
    const logs: { msg: string; reason?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) });
    const server = (await startAdminServer({ path, kv: store.kv, node: 'test', machine: 'kv', log }))!;
    assert.ok(server, 'the server starts over a stale file');
    assert.equal(await adminRequest(path, { op: 'ping' }), { ok: true, node: 'test', pid: process.pid });

    // The client disconnects (Ctrl-C) right after asking: the node stops writing and cleans up.
    const gone = join(scratch, 'gone');
    const socket = createConnection(path, () => socket.end(JSON.stringify({ op: 'backup', out: gone }) + '\n', () => socket.destroy()));
    const aborted = () => logs.find((l) => l.msg === 'backup refused or aborted');
    for (let i = 0; i < 250 && !aborted(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(logs.some((l) => l.msg === 'backup started'), 'the backup started');
    assert.is(aborted()?.reason, 'the client disconnected', 'and stopped because its client went');
    assert.not.ok(existsSync(gone), 'what it had written is removed');

    // The node stops during a backup: the client is told, nothing is left, the socket goes.
    const stopped = join(scratch, 'stopped');
    const pending = adminRequest(path, { op: 'backup', out: stopped });
    for (let i = 0; i < 50 && !existsSync(stopped); i++) await new Promise((r) => setTimeout(r, 20));
    await server.close();
    const answer = await pending.catch((err: unknown) => ({ ok: false as const, error: String(err), operatorError: false }));
    assert.is(answer.ok, false, 'the interrupted backup does not report success');
    assert.equal(logs.filter((l) => l.msg === 'backup refused or aborted').map((l) => l.reason), ['the client disconnected', 'the node is stopping'], 'it was running when the node stopped');
    assert.not.ok(existsSync(stopped), 'nothing of it is left');
    assert.not.ok(existsSync(path), 'the socket is removed on close');
  } finally {
    await store.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a backup taken under load restores to a node that catches up and agrees on every block hash', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: 1_000 } });
  const scratch = mkdtempSync(join(tmpdir(), 'goodness-backups-'));
  let load: SteadyLoad | null = null;
  try {
    await cluster.startAll();
    const { nodes, genesis } = cluster;
    const [, node1, node2, node3] = nodes as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
    load = new SteadyLoad(() => nodes, 'load', 25);
    await cluster.waitForHeight(8, nodes, 30_000);

    // Acknowledged before the backup: committed, with a receipt on node 3, before it starts.
    let acked: Receipt[] = [];
    for (const until = Date.now() + 20_000; acked.length < 50 && Date.now() < until; ) acked = await receiptsOn(node3, load.admitted.slice());
    assert.ok(acked.length >= 50, `transactions were committed before the backup (${acked.length})`);
    const heightBefore = (await node3.height())!;
    const admittedBefore = load.admitted.length;

    const out = join(scratch, 'node3');
    const manifest = manifestOf(await goodness(['backup', '--dir', node3.dir, '--out', out, '--json']));
    const heightAfter = (await node3.height())!;
    console.log(`  backup of node3 under load: height ${manifest.height} (node at ${heightBefore} before, ${heightAfter} after), ${manifest.entries} entries, ${manifest.bytes} bytes`);

    // The manifest describes a real head of this chain, taken while the node ran.
    assert.equal(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')), manifest, 'the printed manifest is the one on disk');
    assert.is(manifest.format, 'goodness-backup');
    assert.is(manifest.version, 1);
    assert.is(manifest.chain, genesis.chain);
    assert.is(manifest.genesisHash, genesisHashOf(genesis));
    assert.is(manifest.machine, 'kv');
    assert.is(manifest.node, 'node3');
    assert.equal(manifest.excluded, ['V']);
    assert.ok(manifest.height >= heightBefore && manifest.height <= heightAfter, 'the snapshot is of a height the node had between the request and the answer');
    const head = (await node1.client.getBlockByNumber(manifest.height))!;
    assert.is(manifest.blockHash, head.hash, 'the head hash is the cluster block at that height');
    assert.is(manifest.appHash, head.appHash);
    assert.ok(Math.max(...acked.map((r) => r.blockNumber)) <= manifest.height);
    assert.is(statSync(join(node3.dir, ADMIN_SOCKET)).mode & 0o777, 0o600, "the running node's admin socket is its user's only");

    // Refusals while the node runs (independent: run side by side to keep the test short).
    const [again, whileRunning] = await Promise.all([goodness(['backup', '--dir', node3.dir, '--out', out]), goodness(['restore', '--from', out, '--dir', node3.dir])]);
    assertUserError(again, 'not empty');
    assertUserError(whileRunning, 'node3 is running', 'Stop it first');

    assert.is((await node3.stop()).code, 0, 'node3 stops cleanly on SIGTERM');
    assert.not.ok(existsSync(join(node3.dir, ADMIN_SOCKET)), 'a clean exit removes the admin socket');

    // A stopped node's full data dir; another chain's folder: another chain id, and the same id
    // with another genesis.
    const others = [['other-chain', 'is chain other-chain'], [genesis.chain, 'another chain also called']] as const;
    const otherDirs = others.map(([chain]) => join(scratch, `other-${chain}`));
    for (let i = 0; i < others.length; i++) await initCluster({ nodes: 1, dir: otherDirs[i]!, basePort: BASE_PORT + 50, chain: others[i]![0], machine: 'kv' });
    const [notEmpty, ...otherChains] = await Promise.all([
      goodness(['restore', '--from', out, '--dir', node3.dir]),
      ...otherDirs.map((d) => goodness(['restore', '--from', out, '--dir', join(d, 'node0')])),
    ]);
    assertUserError(notEmpty!, 'is not empty', '--force');
    otherChains.forEach((run, i) => {
      assertUserError(run, others[i]![1]);
      assert.not.ok(existsSync(join(otherDirs[i]!, 'node0', 'data')), 'a refused restore writes nothing');
    });

    node3.wipe();
    const restored = await goodness(['restore', '--from', out, '--dir', node3.dir]);
    assert.is(restored.code, 0, restored.stderr);
    assert.ok(restored.stdout.includes(`height ${manifest.height}`), restored.stdout);
    assert.equal(readdirSync(dirname(join(node3.dir, 'data'))).filter((f) => f.startsWith('data.')), [], 'no staging or moved-aside folder is left');

    // What node3 will load: the backup's head, every acknowledged transaction, no consensus records.
    const store = await openData(node3);
    try {
      assert.is(store.latestHeight(), manifest.height);
      assert.is((await store.getBlock(manifest.height))!.hash, manifest.blockHash);
      for (const r of acked) assert.ok(await store.getReceipt(r.hash), `the restored data holds ${r.hash}, acknowledged before the backup`);
      assert.equal(await store.consensusRecords(), [], 'no consensus records are restored');
    } finally {
      await store.close();
    }

    // Started, it catches up and agrees with the others at every height.
    const restartedAt = Date.now();
    await node3.start();
    const target = Math.max(...((await cluster.heights([nodes[0]!, node1, node2])) as number[]));
    await cluster.waitForHeight(target, [node3], 30_000);
    console.log(`  node3 restored at ${manifest.height}, caught up to ${target} in ${Date.now() - restartedAt} ms`);
    await sameChain(nodes, target);
    for (const r of acked) assert.equal(await node3.client.getTransactionReceipt(r.hash), r, `node3 serves the receipt of ${r.hash}`);
    assert.ok(load.admitted.length > admittedBefore, 'the load went on meanwhile');

    // A node killed with SIGKILL leaves its socket behind; it starts anyway and backs up again.
    await node3.kill('SIGKILL');
    assert.ok(existsSync(join(node3.dir, ADMIN_SOCKET)), 'SIGKILL leaves the socket file');
    await node3.start();
    const second = manifestOf(await goodness(['backup', '--dir', node3.dir, '--out', join(scratch, 'node3-again'), '--json']));
    assert.ok(second.height >= target, 'a backup of the restarted node');

    // A stopped node is backed up from its data dir; another validator's backup restores into
    // it with --force (the chain data is the same on every node), the old data moved aside.
    const stoppedAt = (await node2.height())!;
    assert.is((await node2.stop()).code, 0);
    const offline = manifestOf(await goodness(['backup', '--dir', node2.dir, '--out', join(scratch, 'node2', 'offline'), '--json']));
    assert.is(offline.node, 'node2');
    assert.ok(offline.height >= stoppedAt, 'the stopped node backed up from its data dir');
    const forced = await goodness(['restore', '--from', out, '--dir', node2.dir, '--force']);
    assert.is(forced.code, 0, forced.stderr);
    const aside = readdirSync(node2.dir).filter((f) => f.startsWith('data.replaced-'));
    assert.is(aside.length, 1, 'the replaced data dir is moved aside');
    assert.ok(forced.stdout.includes(aside[0]!), 'and the output says where');
    assert.ok(existsSync(join(node2.dir, aside[0]!, 'CURRENT')), 'the moved-aside folder is the old RocksDB');
    await node2.start();

    await load.stop();
    const final = Math.max(...((await cluster.heights(nodes)) as number[]));
    await cluster.waitForHeight(final, nodes, 30_000);
    await sameChain(nodes, final);
  } catch (err) {
    console.log(cluster.logTails(20));
    throw err;
  } finally {
    await load?.stop();
    await cluster.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test.run();
