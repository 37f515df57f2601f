// The block pipeline refuses a proposal that replays a transaction: twice in one block, again
// after an uncommitted ancestor, or again after it committed. A Byzantine leader could otherwise
// make every replica run a transaction twice (kv has no nonces) and point its hash at the second
// block. Real components: the chain store on RocksDB in a temp dir, the kv machine, the pool.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlockPipeline, type Proposal } from '../consensus/block-pipeline.ts';
import { DEFAULT_CONSENSUS_PARAMS, type CommitCertificate, type Genesis } from '../consensus/chain/types.ts';
import { sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { TxPool } from '../consensus/pool.ts';
import { KvMachine } from '../state/kv-machine.ts';
import { ChainStore } from '../state/store/chain-store.ts';
import { RocksKvStore } from '../state/store/kv-store.ts';
import { blsKeygen, blsPopProve } from '../consensus/crypto/bls.ts';

const bls = blsKeygen();
const genesis: Genesis = {
  chain: 'pipeline-test',
  genesisTime: 1_000,
  validators: [{ index: 0, peerId: '12D3KooWPeer', blsPublicKey: to0x(bls.publicKey), pop: to0x(blsPopProve(bls.secretKey)) }],
  consensus: DEFAULT_CONSENSUS_PARAMS,
  app: {},
};

const tx = (text: string) => {
  const bytes = utf8(text);
  return { hash: to0x(sha256(bytes)), bytes };
};
const certOf = (p: Proposal): CommitCertificate => ({ number: p.block.header.number, blockHash: p.block.hash, view: 0, signers: [0], aggregateSignature: '0x' + '00'.repeat(96) });

async function withPipeline(fn: (p: BlockPipeline, pool: TxPool) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-pipeline-'));
  const store = await ChainStore.open(await RocksKvStore.open(dir));
  try {
    const pool = new TxPool({ maxTxs: 1000, maxBytes: 1 << 20, maxPerSender: 1000 });
    const pipeline = new BlockPipeline(genesis, store, new KvMachine(), pool);
    await pipeline.open();
    await fn(pipeline, pool);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const admit = (pool: TxPool, ...texts: string[]) => {
  for (const t of texts) assert.is(pool.add({ ...tx(t), checked: undefined }), 'ok');
};

test('a transaction twice in one block, or again after an uncommitted ancestor, is refused', async () => {
  await withPipeline(async (pipeline, pool) => {
    admit(pool, 'a=1', 'b=2');
    const one = (await pipeline.build({ proposer: 0, timestamp: 2_000, maxTxs: 10, maxBytes: 1 << 20 }))!;
    assert.is(one.block.header.number, 1);
    // Header fields are checked after the replay check, so a copy of block 1's header stands in.
    const header = { ...one.block.header, number: 2, parentHash: one.block.hash, timestamp: 3_000, txCount: 2 };
    const twice = pipeline.validate(header, [tx('c=3'), tx('c=3')]);
    assert.ok(!twice.ok && /appears twice/.test(twice.reason), JSON.stringify(twice));
    const again = pipeline.validate({ ...header, txCount: 1 }, [tx('a=1')]);
    assert.ok(!again.ok && /already in block 1/.test(again.reason), JSON.stringify(again));
  });
});

test('a committed transaction proposed again is refused', async () => {
  await withPipeline(async (pipeline, pool) => {
    admit(pool, 'a=1');
    const one = (await pipeline.build({ proposer: 0, timestamp: 2_000, maxTxs: 10, maxBytes: 1 << 20 }))!;
    await pipeline.commit(one, certOf(one));
    assert.is(await pipeline.committedReplay([tx('z=9').hash]), null);
    const replay = await pipeline.committedReplay([tx('z=9').hash, tx('a=1').hash]);
    assert.match(replay ?? '', new RegExp(`transaction ${tx('a=1').hash} is already committed`));
    // The leader's own build never proposes it again either.
    admit(pool, 'a=1');
    assert.is(await pipeline.build({ proposer: 0, timestamp: 3_000, maxTxs: 10, maxBytes: 1 << 20 }), null);
  });
});

test.run();
