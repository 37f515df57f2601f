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

test.run();
