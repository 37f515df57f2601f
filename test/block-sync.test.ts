import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchBlocks, serveSync, SYNC_ANSWER_BUDGET_BYTES } from '../consensus/block-sync.ts';
import { TxPool } from '../consensus/pool.ts';
import { sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import type { Transport } from '../p2p/types.ts';
import { ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { syntheticBlock } from './fixtures/synthetic-blocks.ts';

/**
 * A transport double that hands requests straight to the registered handler: this test pins
 * what a sync answer holds and how large it gets (the libp2p transport itself is tested in
 * test/p2p-*.test.ts, sync across real nodes in test/cluster-wipe.test.ts).
 */
function loopback(): Transport {
  let handler: ((from: number, bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>) | null = null;
  return {
    send: () => true,
    broadcast: () => 0,
    onMessage: () => () => undefined,
    peers: () => [],
    penalize: () => undefined,
    onRequest: (h) => ((handler = h), () => (handler = null)),
    request: async (_to, bytes) => handler!(0, bytes),
  };
}

test('a sync answer stays within its byte budget, always carries a block, and carries the blocks whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-sync-'));
  const store = await ChainStore.open(await RocksKvStore.open(dir));
  try {
    let parent = to0x(sha256(utf8('genesis')));
    for (let h = 1; h <= 4; h++) {
      const c = syntheticBlock(h, parent);
      // Big transactions: one block's worth approaches the budget once base64-encoded.
      c.txs = c.txs.map((_, i) => utf8(`big-${h}-${i}=` + 'x'.repeat(Math.floor((3 * 1024 * 1024) / c.txs.length))));
      c.block.txHashes = c.txs.map((t) => to0x(sha256(t)));
      c.receipts = c.receipts.map((r, i) => ({ ...r, hash: c.block.txHashes[i]! }));
      await store.commitBlock(c);
      parent = c.block.hash;
    }
    const transport = loopback();
    serveSync(transport, store, new TxPool({ maxTxs: 10, maxBytes: 1 << 20, maxPerSender: 10 }));
    const answer = await transport.request(1, utf8(JSON.stringify({ type: 'blocks', from: 1, max: 32 })), 1000);
    assert.ok(answer.length <= SYNC_ANSWER_BUDGET_BYTES + 6 * 1024 * 1024, `answer of ${answer.length} bytes is bounded`);
    const blocks = await fetchBlocks(transport, 1, 1, 1000);
    assert.ok(blocks.length >= 1 && blocks.length < 4, `${blocks.length} blocks in one answer`);
    for (const b of blocks) assert.equal(b.txs.map((t) => to0x(sha256(t))), b.block.txHashes, `block ${b.block.header.number} is whole`);
    const rest = await fetchBlocks(transport, 1, 1 + blocks.length, 1000);
    assert.is(rest[0]!.block.header.number, 1 + blocks.length, 'the next request continues where the answer stopped');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
