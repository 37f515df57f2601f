// Four validator processes on loopback (issue 3): SIGKILL the current leader under a steady
// load. The other three change view and commit again within seconds; the killed node restarts
// on its data dir, catches up and ends with the same hashes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalCluster, SteadyLoad, kvTx, sameChain, sleep, verifyChain, waitCommittedOn, type ClusterNode } from './fixtures/cluster-process.ts';

const BASE_PORT = 28600;
const VIEW_TIMEOUT_MS = 1_000;
/** how long the three survivors may take to commit in a new view (several timeouts on a loaded 2-core machine) */
const RESUME_LIMIT_MS = 10_000;

/** Waits until every node of `nodes` has committed a block above `above` in a view above `view`; returns that block's height. */
async function waitForNewViewCommit(nodes: ClusterNode[], above: number, view: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const checked = new Map<string, number>();
  for (;;) {
    for (const n of nodes) {
      if (checked.has(n.name)) continue;
      const top = await n.height();
      for (let h = (top ?? 0); top !== null && h > above; h--) {
        const b = await n.client.getBlockByNumber(h).catch(() => null);
        if (b && b.view > view) {
          checked.set(n.name, h);
          break;
        }
        if (b && b.view <= view) break;
      }
    }
    if (checked.size === nodes.length) return Math.min(...checked.values());
    if (Date.now() - started > timeoutMs) throw new Error(`no commit in a view above ${view} on ${nodes.filter((n) => !checked.has(n.name)).map((n) => n.name).join(', ')} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

test('SIGKILL of the leader: the other three commit again after a view change; the leader restarts and catches up', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, consensus: { viewTimeoutMs: VIEW_TIMEOUT_MS } });
  let load: SteadyLoad | null = null;
  try {
    await cluster.startAll();
    const { nodes, genesis } = cluster;
    load = new SteadyLoad(() => nodes, 'warm');
    await cluster.waitForHeight(3, nodes, 20_000);

    const statuses = await Promise.all(nodes.map((n) => n.client.getConsensusStatus()));
    const leaderIndex = statuses[0]!.leader;
    const view = Math.max(...statuses.map((s) => s.view));
    assert.ok(statuses.every((s) => s.leader === leaderIndex), `the nodes agree on the leader: ${statuses.map((s) => s.leader).join(',')}`);
    const leader = cluster.node(leaderIndex);
    const others = nodes.filter((n) => n !== leader);

    // The load now goes to the three survivors only: what the leader admitted dies with it.
    await load.stop();
    load = new SteadyLoad(() => others, 'during');
    await sleep(300);
    const killedAt = Date.now();
    const exit = await leader.kill('SIGKILL');
    assert.is(exit.signal, 'SIGKILL');
    const heightAtKill = Math.max(...((await cluster.heights(others)).filter((h) => h !== null) as number[]));

    const resumedAt = await waitForNewViewCommit(others, heightAtKill, view, RESUME_LIMIT_MS);
    const gapMs = Date.now() - killedAt;
    const after = await Promise.all(others.map((n) => n.client.getConsensusStatus()));
    console.log(`  leader node${leaderIndex} killed in view ${view} at height ${heightAtKill}; block ${resumedAt} committed in view ${after.map((s) => s.view).join('/')} ${gapMs} ms later (view timeout ${VIEW_TIMEOUT_MS} ms)`);
    assert.ok(after.every((s) => s.leader !== leaderIndex), 'the new leader is another node');
    assert.ok(gapMs < RESUME_LIMIT_MS);

    // Commits go on: transactions admitted by the survivors after the kill commit on all three.
    await sleep(500);
    const lastSent = load.admitted[load.admitted.length - 1]!;
    await waitCommittedOn(others, lastSent, 10_000);

    // The killed node restarts on its data dir and catches up while the load goes on.
    const target = Math.max(...((await cluster.heights(others)) as number[]));
    const restartedAt = Date.now();
    await leader.start();
    const startedMs = Date.now() - restartedAt;
    await cluster.waitForHeight(target, [leader], 20_000);
    const catchUpMs = Date.now() - restartedAt;
    console.log(`  node${leaderIndex} restarted (healthy after ${startedMs} ms) and reached height ${target} ${catchUpMs} ms after the restart`);

    // It takes part again: a transaction sent to it commits everywhere.
    const mine = await leader.client.sendTransaction(kvTx(`back-${leaderIndex}`, 'yes'));
    await waitCommittedOn(nodes, mine, 15_000);

    await load.stop();
    load = null;
    const final = Math.max(...((await cluster.heights(nodes)) as number[]));
    await cluster.waitForHeight(final, nodes, 15_000);
    const hashes = await sameChain(nodes, final);
    assert.equal(await verifyChain(leader, genesis, final), hashes, 'the restarted node serves a chain that verifies from genesis');
  } catch (err) {
    console.log(cluster.logTails(20));
    throw err;
  } finally {
    await load?.stop();
    await cluster.cleanup();
  }
});

test.run();
