// Four validator processes on loopback (issue 3): a node whose data dir is deleted (it keeps
// its keys and config) rejoins from block 0 by sync, more blocks than one sync request carries,
// and ends with the same hashes, state and receipts as the others.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_BLOCKS_PER_REQUEST } from '../consensus/block-sync.ts';
import { GoodnessClient } from '../rpc/client.ts';
import type { Receipt } from '../rpc/types.ts';
import { LocalCluster, kvTx, sameChain, verifyChain, waitCommittedOn } from './fixtures/cluster-process.ts';

const BASE_PORT = 28800;
/** more blocks than one sync answer carries, so the wiped node needs several requests */
const BLOCKS_BEFORE = MAX_BLOCKS_PER_REQUEST + 8;

test('a node with a wiped data dir rejoins by sync and ends with identical hashes', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: 1_000 } });
  const clients = cluster.nodes.map((n) => new GoodnessClient(n.url, { timeoutMs: 30_000 }));
  try {
    await cluster.startAll();
    const { nodes, genesis } = cluster;

    // One transaction at a time, each waited for: about one block each.
    const receipts: Receipt[] = [];
    for (let i = 0; (await nodes[0]!.height())! < BLOCKS_BEFORE; i++) {
      receipts.push(await clients[i % 4]!.sendTransactionAndWait(kvTx(`before-${i}`, `v${i}`), 15_000));
    }

    // Wipe a node that is not the leader (leader loss is cluster-leader-kill's subject).
    const leader = (await nodes[0]!.client.getConsensusStatus()).leader;
    const wiped = cluster.node((leader + 2) % 4);
    const others = nodes.filter((n) => n !== wiped);
    assert.is((await wiped.stop()).code, 0, 'the node stops cleanly on SIGTERM');
    wiped.wipe();

    // The chain moves on while it is away.
    for (let i = 0; i < 3; i++) receipts.push(await clients[others[i]!.index]!.sendTransactionAndWait(kvTx(`away-${i}`, `w${i}`), 15_000));
    const target = Math.max(...((await cluster.heights(others)) as number[]));

    const restartedAt = Date.now();
    await wiped.start();
    const healthyMs = Date.now() - restartedAt;
    assert.ok((await wiped.height())! < target, 'the node came back empty');
    await cluster.waitForHeight(target, [wiped], 30_000);
    const syncMs = Date.now() - restartedAt;
    console.log(`  ${wiped.name} wiped and restarted: healthy after ${healthyMs} ms, at height ${target} (${target} blocks synced) ${syncMs} ms after the restart`);

    // Same chain, same receipts, same state as the others.
    const hashes = await sameChain(nodes, target);
    assert.equal(await verifyChain(wiped, genesis, target), hashes, 'the synced chain verifies from genesis');
    for (const r of receipts) assert.equal(await wiped.client.getTransactionReceipt(r.hash), r, `${wiped.name} has the receipt of ${r.hash}`);
    assert.is((await wiped.client.query('kv/before-0')).value, 'v0');
    assert.is((await wiped.client.query('kv/away-2')).value, 'w2', 'the state written while it was away');

    // It takes part again: transactions sent to it commit on all four.
    const fresh = await Promise.all([0, 1, 2].map((i) => wiped.client.sendTransaction(kvTx(`after-${i}`, `a${i}`))));
    for (const hash of fresh) await waitCommittedOn(nodes, hash, 15_000);
    const final = Math.max(...((await cluster.heights(nodes)) as number[]));
    await cluster.waitForHeight(final, nodes, 10_000);
    await sameChain(nodes, final);
  } catch (err) {
    console.log(cluster.logTails(20));
    throw err;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.cleanup();
  }
});

test.run();
