// Four validator processes on loopback (issue 3): with two of four SIGKILLed there is no
// quorum, so nothing commits and nothing forks however long the two survivors try; when one
// of the dead returns, commits resume and the three agree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalCluster, SteadyLoad, sameChain, sleep, verifyChain, waitCommittedOn, type ClusterNode } from './fixtures/cluster-process.ts';

const BASE_PORT = 28700;
const VIEW_TIMEOUT_MS = 1_000;
/** how long the survivors are watched without a quorum: several view timeouts */
const STALL_WATCH_MS = 5 * VIEW_TIMEOUT_MS;

/** Heights of `nodes` once they are equal and have not moved for a second (at most 5 s). */
async function settledHeights(cluster: LocalCluster, nodes: ClusterNode[]): Promise<number[]> {
  const deadline = Date.now() + 5_000;
  let last = JSON.stringify(await cluster.heights(nodes));
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = await cluster.heights(nodes);
    const key = JSON.stringify(now);
    if (key !== last) {
      last = key;
      since = Date.now();
    } else if (Date.now() - since >= 1_000 && new Set(now).size === 1) {
      return now as number[];
    }
  }
  return JSON.parse(last) as number[];
}

test('two of four down: no commit, no fork; one returns: commits resume and the three agree', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: VIEW_TIMEOUT_MS } });
  let load: SteadyLoad | null = null;
  try {
    await cluster.startAll();
    const { nodes, genesis } = cluster;
    load = new SteadyLoad(() => nodes, 'before', 50);
    await cluster.waitForHeight(3, nodes, 20_000);

    // Kill the leader and one more, under load: the two left are short of the quorum of three,
    // and may hold blocks prepared but not committed.
    const { leader: leaderIndex, view: viewAtKill } = await nodes[0]!.client.getConsensusStatus();
    const dead = [cluster.node(leaderIndex), cluster.node((leaderIndex + 1) % 4)];
    const survivors = nodes.filter((n) => !dead.includes(n));
    for (const exit of await Promise.all(dead.map((n) => n.kill('SIGKILL')))) assert.is(exit.signal, 'SIGKILL');
    await load.stop();
    // Blocks certified just before the kill may still be landing on the survivors (a lagging
    // survivor learns the certificate from the other by retransmission): let them settle.
    const stalledAt = await settledHeights(cluster, survivors);
    const heightBefore = Math.max(...stalledAt);

    // The survivors have pending work the whole time (the view timer runs only then).
    load = new SteadyLoad(() => survivors, 'stalled', 100);
    const watchStart = Date.now();
    while (Date.now() - watchStart < STALL_WATCH_MS) {
      const hs = await cluster.heights(survivors);
      assert.equal(hs, stalledAt, `no commit without a quorum (heights ${hs.join(',')}, were ${stalledAt.join(',')})`);
      await sleep(250);
    }
    await load.stop();
    const pending = load.admitted;
    assert.ok(pending.length > 10, `the survivors admitted transactions meanwhile (${pending.length})`);
    for (const n of survivors) assert.is(await n.client.getTransactionReceipt(pending[0]!), null, `${n.name} did not commit ${pending[0]}`);
    const viewsAfter = await Promise.all(survivors.map((n) => n.client.getConsensusStatus().then((s) => s.view)));
    console.log(`  nodes ${dead.map((n) => n.index).join(',')} down: heights stayed ${stalledAt.join(',')} for ${STALL_WATCH_MS} ms; survivors' views ${viewAtKill} -> ${viewsAfter.join(',')}`);
    assert.ok(
      viewsAfter.every((v) => v > viewAtKill),
      'the survivors moved on from the dead leader\'s view',
    );
    // No fork: the survivors hold the same blocks up to where they stopped.
    const equalUpTo = Math.min(...stalledAt);
    await sameChain(survivors, equalUpTo);

    // One returns (on its own data dir): three make a quorum again. It is the leader of the
    // survivors' view, while the proposer of the blocks they prepared before the kill stays
    // dead: the returning node must get those blocks' transactions from the survivors.
    const back = dead[1]!;
    const returnedAt = Date.now();
    await back.start();
    const three = [...survivors, back];
    const blocks = await waitCommittedOn(three, pending[pending.length - 1]!, 30_000);
    const resumeMs = Date.now() - returnedAt;
    // Whether it had to fetch a re-proposed block's transactions from the survivors (the
    // proposer being dead) depends on timing: said, not asserted.
    const fetchedElsewhere = back.logRecords().filter((r) => String(r.msg).startsWith('fetched a proposal')).length;
    console.log(`  node${back.index} back: the survivors' pending transactions committed (block ${blocks[0]}) ${resumeMs} ms after its restart (transactions fetched from non-proposers ${fetchedElsewhere} times)`);
    for (const hash of pending) await waitCommittedOn(three, hash, 5_000);

    const final = Math.max(...((await cluster.heights(three)) as number[]));
    assert.ok(final > heightBefore, 'commits resumed');
    await cluster.waitForHeight(final, three, 10_000);
    const hashes = await sameChain(three, final);
    for (const n of three) assert.equal(await verifyChain(n, genesis, final), hashes, `${n.name}'s chain verifies from genesis`);

    // The old leader returns too and catches up with the same chain.
    await dead[0]!.start();
    await cluster.waitForHeight(final, [dead[0]!], 20_000);
    await sameChain(nodes, final);
  } catch (err) {
    console.log(cluster.logTails(20));
    throw err;
  } finally {
    await load?.stop();
    await cluster.cleanup();
  }
});

test.run();
