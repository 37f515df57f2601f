// Four validator processes on loopback (issue 3, "Process tests on loopback"): transactions sent
// to every node commit on all of them, with the same block at every height, each block's
// certificate verified as a light client does against the genesis validator set alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GoodnessClient } from '../rpc/client.ts';
import { LightClient } from '../rpc/light-client.ts';
import { LocalCluster, kvTx, sameChain, verifyChain, waitCommittedOn } from './fixtures/cluster-process.ts';
import { genesisHashOf, genesisValidators } from './fixtures/node-process.ts';

const BASE_PORT = 28500;
const TXS_PER_NODE = 40;
const BATCH = 10;

test('transactions sent to all four nodes commit on all of them; same hashes; certificates verify against genesis', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: 1_000 } });
  const clients = cluster.nodes.map((n) => new GoodnessClient(n.url, { timeoutMs: 60_000 }));
  try {
    await cluster.startAll();
    const { genesis, nodes } = cluster;

    // Every node takes its share, in concurrent batches of sendTransactionAndWait: the receipt
    // a node returns is its own commit.
    const receipts = (
      await Promise.all(
        clients.map(async (client, i) => {
          const out = [];
          for (let b = 0; b < TXS_PER_NODE / BATCH; b++) {
            const answers = await client.batch(
              Array.from({ length: BATCH }, (_, j) => ({ method: 'sendTransactionAndWait' as const, params: [kvTx(`n${i}-b${b}-${j}`, `v${i}.${b}.${j}`), 20_000] as [string, number] })),
            );
            for (const a of answers) {
              if (!a.ok) throw new Error(`node${i} refused or timed out: ${a.error.message}\n${cluster.logTails(15)}`);
              out.push(a.result);
            }
          }
          return out;
        }),
      )
    ).flat();
    assert.is(receipts.length, 4 * TXS_PER_NODE);
    assert.ok(receipts.every((r) => r.status === 'ok'), 'every kv put succeeded');
    assert.is(new Set(receipts.map((r) => r.hash)).size, receipts.length, 'no transaction was committed twice');

    // Each transaction is committed on every node, at the same block and index.
    for (const r of receipts) {
      const where = await waitCommittedOn(nodes, r.hash, 10_000);
      assert.equal(where, [r.blockNumber, r.blockNumber, r.blockNumber, r.blockNumber], `${r.hash} is in block ${r.blockNumber} everywhere`);
    }
    const top = Math.max(...receipts.map((r) => r.blockNumber));
    await cluster.waitForHeight(top, nodes, 10_000);
    const heights = (await cluster.heights(nodes)) as number[];
    const height = Math.min(...heights);
    assert.ok(height >= top);

    // Same hash at every height on the four nodes; every certificate passes the light client.
    const hashes = await sameChain(nodes, height);
    for (const n of nodes) assert.equal(await verifyChain(n, genesis, height), hashes, `${n.name}'s chain verifies from genesis.json alone`);
    const blocks = await Promise.all(Array.from({ length: height }, (_, i) => nodes[0]!.client.getBlockByNumber(i + 1)));
    assert.is(blocks.reduce((sum, b) => sum + b!.txCount, 0), receipts.length, 'the blocks hold exactly the transactions sent');
    console.log(`  ${receipts.length} transactions in ${height} blocks, proposers ${[...new Set(blocks.map((b) => b!.proposer))].join(',')}, views ${[...new Set(blocks.map((b) => b!.view))].join(',')}`);

    // A transaction sent to node0 proves on node3 against a light client that trusts genesis only.
    const sentToNode0 = receipts[0]!; // node0's receipts come first
    // (The proof is checked directly: GoodnessClient.verifiedTransaction also fetches the
    // envelope with getTransactionByHash, which answers -32603 for kv transactions, as they are
    // not JSON envelopes.)
    const light = LightClient.trustingGenesis(genesisHashOf(genesis));
    const proof = await clients[3]!.getTransactionProof(sentToNode0.hash);
    assert.ok(proof, 'node3 has a proof of a transaction that came in through node0');
    const verified = await light.verifyTransactionProof(proof!, clients[3]!);
    assert.ok(verified.ok, `the proof verifies: ${verified.ok ? '' : verified.reason}`);
    if (verified.ok) {
      assert.is(verified.height, sentToNode0.blockNumber);
      assert.is(verified.blockHash, hashes[sentToNode0.blockNumber - 1]);
      assert.equal(verified.receipt, sentToNode0, 'the proven receipt is the one node0 returned');
    }

    // The state agrees too: a key written through node2 reads the same on every node.
    for (const n of nodes) assert.is((await n.client.query('kv/n2-b3-9')).value, 'v2.3.9', `${n.name} holds the write`);

    // getConsensusStatus agrees on the validator set, f = 1, quorum = 3 (and, idle, on view and leader).
    const statuses = await Promise.all(nodes.map((n) => n.client.getConsensusStatus()));
    const expected = genesisValidators(genesis);
    for (const [i, s] of statuses.entries()) {
      assert.equal(s.validators, expected, `node${i} reports the genesis validators`);
      assert.is(s.f, 1);
      assert.is(s.quorum, 3);
      assert.is(s.height, height);
      assert.is(s.view, statuses[0]!.view, `node${i} is in the same view`);
      assert.is(s.leader, statuses[0]!.leader, `node${i} names the same leader`);
      assert.ok(s.leader >= 0 && s.leader < 4);
    }
    for (const n of nodes) assert.equal(await n.client.getValidators(0), expected, `${n.name}: the set of block 0 is genesis's`);

    // What an operator scrapes agrees with what the chain says.
    for (const n of nodes) {
      const text = await (await fetch(`${n.url}/metrics`)).text();
      const metric = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
      assert.is(metric(/^goodness_height (\d+)$/m), height, `${n.name}: goodness_height`);
      assert.is(metric(/^goodness_p2p_peers_connected (\d+)$/m), 3, `${n.name}: connected to the three others`);
      assert.is(metric(/^goodness_view (\d+)$/m), statuses[0]!.view, `${n.name}: goodness_view`);
      assert.ok(metric(/^goodness_p2p_received_messages\{peer="\d+",channel="consensus"\} (\d+)$/m) > 0, `${n.name}: consensus messages received`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.cleanup();
  }
});

test.run();
