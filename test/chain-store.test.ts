import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromUtf8, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { syntheticBlock, syntheticTx, txCountAt } from './fixtures/synthetic-blocks.ts';

const GENESIS_PARENT = to0x(sha256(utf8('genesis')));

async function withStore<T>(fn: (store: ChainStore) => Promise<T>, dir: string): Promise<T> {
  const store = await ChainStore.open(await RocksKvStore.open(dir));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A store on a fresh temp dir, removed afterwards. */
async function withFreshStore<T>(fn: (store: ChainStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-store-'));
  try {
    return await withStore(fn, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function readState(store: ChainStore, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of store.stateReader().entries(utf8(prefix))) out.set(fromUtf8(k), fromUtf8(v));
  return out;
}

/** Everything block h wrote is there and consistent; nothing of block h+1 is. */
async function assertWhole(store: ChainStore): Promise<number> {
  const height = store.latestHeight();
  let parent = GENESIS_PARENT;
  let txs = 0;
  let rejected = 0;
  for (let h = 1; h <= height; h++) {
    const block = await store.getBlock(h);
    assert.ok(block, `block ${h} is there`);
    assert.is(block!.header.parentHash, parent, `block ${h} links to its parent`);
    assert.is(await store.getHeightByHash(block!.hash), h);
    const cert = await store.getCertificate(h);
    assert.is(cert?.blockHash, block!.hash, `certificate of ${h}`);
    assert.is(block!.txHashes.length, txCountAt(h));
    for (let i = 0; i < block!.txHashes.length; i++) {
      const tx = await store.getTx(block!.txHashes[i]!);
      assert.ok(tx, `tx ${i} of block ${h}`);
      assert.equal([tx!.blockNumber, tx!.index], [h, i]);
      assert.equal(fromUtf8(tx!.bytes), fromUtf8(syntheticTx(h, i)));
      const r = await store.getReceipt(block!.txHashes[i]!);
      assert.is(r?.blockNumber, h);
      if (r?.status === 'rejected') rejected++;
    }
    txs += block!.txHashes.length;
    parent = block!.hash;
  }
  assert.is(await store.getBlock(height + 1), null, 'no block above the head');
  const state = await readState(store, '');
  assert.is(state.get('last') ?? '0', String(height), 'state is of the head block');
  if (height > 0) assert.equal([...state.keys()].filter((k) => k.startsWith('h/')), [`h/${height}`], 'state has exactly the head block\'s key');
  assert.equal(store.totals(), { transactions: txs, rejected });
  return height;
}

test('blocks, certificates, transactions, receipts and state read back after reopening', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-store-'));
  try {
    await withStore(async (store) => {
      let parent = GENESIS_PARENT;
      for (let h = 1; h <= 20; h++) {
        const c = syntheticBlock(h, parent);
        await store.commitBlock(c);
        parent = c.block.hash;
      }
      assert.is(store.latestHeight(), 20);
      const receipts = await store.getBlockReceipts(5);
      assert.equal(receipts.map((r) => r.index), [0, 1, 2, 3, 4, 5]);
      assert.ok(await store.hasTx((await store.getBlock(3))!.txHashes[0]!));
      assert.not.ok(await store.hasTx(to0x(new Uint8Array(32))));
      const among = await store.committedAmong([(await store.getBlock(4))!.txHashes[1]!, to0x(new Uint8Array(32))]);
      assert.is(among.size, 1);
    }, dir);
    await withStore(async (store) => {
      assert.is(await assertWhole(store), 20);
    }, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commitBlock refuses a block that does not extend the head, and writes nothing', async () => {
  await withFreshStore(async (store) => {
    {
      await store.commitBlock(syntheticBlock(1, GENESIS_PARENT));
      let threw = false;
      try {
        await store.commitBlock(syntheticBlock(3, GENESIS_PARENT));
      } catch {
        threw = true;
      }
      assert.ok(threw, 'a gap is refused');
      assert.is(store.latestHeight(), 1);
      assert.is(await store.getCertificate(3), null);
    }
  });
});

test('malformed hashes and out-of-range heights read as absent, never throw', async () => {
  await withFreshStore(async (store) => {
    {
      assert.is(await store.getTx('0xzz'), null);
      assert.is(await store.getReceipt('nothex'), null);
      assert.is(await store.getHeightByHash('0x1234'), null);
      assert.is(await store.getBlock(-1), null);
      assert.is(await store.getBlock(1.5), null);
      assert.is(await store.getCertificate(0), null);
    }
  });
});

/** Starts the writer, kills it with SIGKILL after `afterBlocks` acknowledged blocks plus a random delay. */
function writeThenKill(dir: string, afterBlocks: number, extraMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'store-writer.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = 0;
    let killing = false;
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = chunk.toString().trim().split('\n');
      acked = Number(lines[lines.length - 1]);
      if (!killing && acked >= afterBlocks) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), extraMs);
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`writer exited without being killed (${signal})`))));
  });
}

test('SIGKILL at any moment: every acknowledged block survives and no block is half-written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-crash-'));
  try {
    let target = 0;
    for (let round = 0; round < 6; round++) {
      target += 20 + round * 7;
      const acked = await writeThenKill(dir, target, (round * 13) % 17);
      const height = await withStore((store) => assertWhole(store), dir);
      assert.ok(height >= acked, `round ${round}: height ${height} holds the ${acked} acknowledged blocks`);
      target = height;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
