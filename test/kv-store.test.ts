// RocksKvStore with its writer thread (state/store/batch-writer.ts), on a real RocksDB in a temp
// dir: large batches are written off the main thread through the shared handle, small ones on
// it, and either way they land in the order they were written, atomically, and survive reopening.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packOps } from '../state/store/batch-writer.ts';
import { RocksKvStore, type KvOp } from '../state/store/kv-store.ts';
import { linuxThreadNames, threadNames } from './fixtures/threads.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

function largeBatch(tag: string, n = 1000): KvOp[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'put' as const, key: enc(`big/${i}`), value: enc(`${tag}-${i}`) }));
}

test('large batches (off the main thread) and small ones land in call order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-kv-'));
  try {
    let store = await RocksKvStore.open(dir);
    // Issued without waiting: a large batch, then a small one on the same key, then a large one
    // that deletes a key the first wrote. Call order must win, whichever thread writes.
    const writes = [
      store.write(largeBatch('first')),
      store.write([{ type: 'put', key: enc('big/7'), value: enc('small-after-first') }]),
      store.write([...largeBatch('second').slice(0, 500), { type: 'del', key: enc('big/999') }]),
      store.write([{ type: 'put', key: enc('big/8'), value: enc('small-after-second') }]),
    ];
    await Promise.all(writes);
    assert.is(dec(await store.get(enc('big/7'))), 'second-7', 'the second large batch came after the small one');
    assert.is(dec(await store.get(enc('big/8'))), 'small-after-second');
    assert.is(dec(await store.get(enc('big/600'))), 'first-600');
    assert.is(await store.get(enc('big/999')), undefined, 'a delete in a large batch');
    // On Linux the writer thread names itself, for top and perf.
    if (linuxThreadNames) assert.ok(threadNames().includes('gdn:writer'), `threads: ${threadNames().join(', ')}`);
    await store.close();
    // What the writer thread wrote is in the database itself.
    store = await RocksKvStore.open(dir);
    assert.is(dec(await store.get(enc('big/499'))), 'second-499');
    assert.is(dec(await store.get(enc('big/8'))), 'small-after-second');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a large batch of one big value goes through the writer too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-kv-'));
  try {
    const store = await RocksKvStore.open(dir);
    const value = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    await store.write([{ type: 'put', key: enc('blob'), value }]);
    const back = await store.get(enc('blob'));
    assert.ok(back !== undefined && Buffer.from(back).equals(value), 'the value read back is the value written');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packOps: count, then type, key and value with their lengths', () => {
  const packed = Buffer.from(packOps([{ type: 'put', key: enc('k'), value: enc('vv') }, { type: 'del', key: enc('dd') }]));
  assert.equal([...packed], [0, 0, 0, 2, 1, 0, 0, 0, 1, 107, 0, 0, 0, 2, 118, 118, 0, 0, 0, 0, 2, 100, 100]);
});

test('packOps into a spare buffer: the same buffer when the batch fits, its bytes first; a new one when it does not', () => {
  const ops: KvOp[] = [{ type: 'put', key: enc('k'), value: enc('vv') }, { type: 'del', key: enc('dd') }];
  const alone = [...Buffer.from(packOps(ops))];
  const spare = new ArrayBuffer(64);
  new Uint8Array(spare).fill(0xee);
  const packed = packOps(ops, spare);
  assert.ok(packed === spare, 'packed into the spare');
  assert.equal([...new Uint8Array(packed).subarray(0, alone.length)], alone);
  const small = new ArrayBuffer(8);
  const grown = packOps(ops, small);
  assert.ok(grown !== small && grown.byteLength >= alone.length, 'a new buffer, with room');
  assert.equal([...new Uint8Array(grown).subarray(0, alone.length)], alone);
});

test('each large batch lands whole, and only itself, when the writer packs it into the last one\'s buffer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-kv-'));
  try {
    const store = await RocksKvStore.open(dir);
    await store.write(largeBatch('a', 3000));
    await store.write([{ type: 'put', key: enc('big/2500'), value: enc('changed') }]);
    // Smaller: packed into the first batch's buffer, whose tail still holds ops 1000-2999 of 'a'.
    await store.write(largeBatch('b', 1000));
    assert.is(dec(await store.get(enc('big/999'))), 'b-999');
    assert.is(dec(await store.get(enc('big/2500'))), 'changed', 'the stale tail past the count was not written again');
    // Larger than the buffer: a new one, then smaller again into it.
    await store.write(largeBatch('c', 5000));
    await store.write(largeBatch('d', 1200));
    assert.is(dec(await store.get(enc('big/1100'))), 'd-1100');
    assert.is(dec(await store.get(enc('big/4999'))), 'c-4999');
    assert.is(dec(await store.get(enc('big/1500'))), 'c-1500');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
