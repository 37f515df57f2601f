// Membership by governance under load (issues 3 and 6), with real node processes of the goodness
// ledger: `cluster add-node` makes a fifth node, which starts as an observer and follows the
// chain over the others' JSON-RPC; governance adds it as a validator, then removes validator 0,
// while the load driver (`goodness bench --workload goodness`, deeds and redemptions of many
// users) and a steady trickle of account openings keep the cluster busy. Checked: the sets change at the height every
// node computes (block of the action + window + 1), the new validator signs certificates and the
// removed one no longer does, no transaction is lost, the longest gap between commits stays under
// one view-change timeout, the light client follows both changes from genesis, and a certificate
// of the new set does not pass against the old one.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headerFields } from '../consensus/chain/header.ts';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { addValidatorAction } from '../cluster/gov.ts';
import { LightClient, verifyCommit } from '../rpc/light-client.ts';
import { LocalCluster, SteadyLoad, sameChain, sleep, type ClusterNode } from './fixtures/cluster-process.ts';
import { genesisHashOf, genesisValidators } from './fixtures/node-process.ts';

const BASE_PORT = 28900;
const VIEW_TIMEOUT_MS = 2_000;
const BIN = join(import.meta.dirname, '..', 'bin', 'goodness.js');
const DRIVER_SECONDS = 40;

/** `goodness bench` as a child process; resolves once its clock has started, and exposes its exit. */
function startDriver(urls: string[], governorKey: string, out: string): { clockStarted: Promise<void>; exited: Promise<{ code: number | null; output: string }>; kill(): void } {
  const child = spawn(process.execPath, [BIN, 'bench', '--rpc', urls.join(','), '--workload', 'goodness', '--rate', '150', '--duration', String(DRIVER_SECONDS), '--users', '60', '--distributors', '2', '--governor-key', governorKey, '--out', out, '--progress-every', '1', '--drain-timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let started: () => void;
  const clockStarted = new Promise<void>((r) => (started = r));
  const onData = (c: Buffer) => {
    output += c.toString();
    if (/\d+(\.\d)?s\/\d+s \S+ left \| sent [1-9]/.test(output)) started();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; output: string }>((r) => child.on('close', (code) => r({ code, output })));
  return { clockStarted, exited, kill: () => child.kill('SIGKILL') };
}

/** Records when `node`'s height rises, to find the longest time without a commit. */
class CommitGaps {
  private last = Date.now();
  private height = -1;
  longestMs = 0;
  private stopped = false;
  private readonly done: Promise<void>;
  constructor(node: () => ClusterNode) {
    this.done = (async () => {
      while (!this.stopped) {
        const h = await node().height();
        const now = Date.now();
        if (h !== null && h > this.height) {
          if (this.height >= 0) this.longestMs = Math.max(this.longestMs, now - this.last);
          this.height = h;
          this.last = now;
        }
        await sleep(25);
      }
    })();
  }
  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return this.longestMs;
  }
}

async function signersAt(node: ClusterNode, from: number, to: number): Promise<Set<number>> {
  const out = new Set<number>();
  for (let h = from; h <= to; h++) for (const s of (await node.client.getCommitCertificate(h))!.signers) out.add(s);
  return out;
}

const indexes = async (node: ClusterNode, height: number) => (await node.client.getValidators(height)).map((v) => v.index);

test('an observer is promoted and a validator removed by governance under load: sets change where computed, nothing lost, no stall, light clients follow', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, machine: 'goodness', consensus: { viewTimeoutMs: VIEW_TIMEOUT_MS } });
  const window = cluster.genesis.consensus.window ?? 4;
  const governor = new Ed25519Signer((JSON.parse(readFileSync(join(cluster.dir, 'accounts', 'governor.json'), 'utf8')) as { secretKey: string }).secretKey);
  let load: SteadyLoad | null = null;
  let gaps: CommitGaps | null = null;
  let driver: ReturnType<typeof startDriver> | null = null;
  try {
    await cluster.startAll();
    const { node: observer, folder } = await cluster.addNode();
    await observer.start();
    // Load goes to every node that is not being removed, the observer too (it forwards by RPC).
    let targets = cluster.nodes.slice();
    load = new SteadyLoad(() => targets, 'open', 40, async (_i, node) => (await node.client.buildTx(new Ed25519Signer(ed25519Keygen().secretKey), { type: 'account.open', body: {} })).raw);
    const top = (await cluster.node(1).height())!;
    await cluster.waitForHeight(top + 3, [observer], 30_000);
    // The load driver prepares its organisations, users and consents before its clock starts.
    driver = startDriver(cluster.nodes.map((n) => n.url), join(cluster.dir, 'accounts', 'governor.json'), join(cluster.dir, 'bench'));
    await Promise.race([driver.clockStarted, driver.exited.then((e) => Promise.reject(new Error(`the load driver ended before its clock started:\n${e.output}`)))]);
    gaps = new CommitGaps(() => cluster.node(2));

    // Promotion: validator.add of the observer's keys.
    const add = await cluster.node(1).client.sendTxAndWait(governor, { type: 'gov.propose', body: { proposal: 'add-node4', action: addValidatorAction(folder) } });
    assert.is(add.status, 'ok', add.log);
    assert.ok(add.events.some((e) => e.type === 'validator.add' && e.attributes.index === '4'), 'the new validator takes index 4');
    const addFrom = add.blockNumber + window + 1;
    await cluster.waitForHeight(addFrom + 10, cluster.nodes, 60_000);
    assert.equal(await indexes(cluster.node(0), addFrom - 1), [0, 1, 2, 3]);
    assert.equal(await indexes(cluster.node(0), addFrom), [0, 1, 2, 3, 4], `the set changes at ${add.blockNumber} + window + 1`);
    assert.equal(await indexes(observer, addFrom), [0, 1, 2, 3, 4], 'the new validator computes the same schedule');
    const before = (await cluster.node(0).client.getBlockByNumber(addFrom - 1))!;
    assert.is.not(before.validatorsHash, before.nextValidatorsHash, 'the last block of the old set commits to the new one');

    // Removal of validator 0; the load stops going to it (it keeps running, and follows).
    targets = cluster.nodes.slice(1);
    const rm = await cluster.node(1).client.sendTxAndWait(governor, { type: 'gov.propose', body: { proposal: 'remove-0', action: { type: 'validator.remove', index: 0 } } });
    assert.is(rm.status, 'ok', rm.log);
    const rmFrom = rm.blockNumber + window + 1;
    await cluster.waitForHeight(rmFrom + 10, cluster.nodes.slice(1), 60_000);
    assert.equal(await indexes(cluster.node(1), rmFrom), [1, 2, 3, 4]);
    assert.ok(!(await signersAt(cluster.node(1), rmFrom, rmFrom + 10)).has(0), 'the removed validator signs no certificate after its removal');

    await load.stop();
    const longestGap = await gaps.stop();
    gaps = null;
    const run = await driver.exited;
    driver = null;
    assert.is(run.code, 0, run.output);
    const report = JSON.parse(readFileSync(join(cluster.dir, 'bench', 'report.json'), 'utf8')) as { runs: { sent: number; committed: number; rejected: number; unresolved: Record<string, number> }[] };
    const driven = report.runs[0]!;
    console.log(`  load driver: ${driven.sent} sent, ${driven.committed} committed, ${driven.rejected} refused, unresolved ${JSON.stringify(driven.unresolved)}`);
    assert.ok(driven.committed > 0);
    assert.equal(driven.unresolved, { admitted: 0, backpressured: 0, unknown: 0 }, 'the driver lost nothing');
    // Nothing lost: every admitted transaction commits.
    const admitted = load.admitted;
    const deadline = Date.now() + 60_000;
    let missing = admitted;
    const blocks: number[] = [];
    while (missing.length > 0 && Date.now() < deadline) {
      const receipts = await Promise.all(missing.map((h) => cluster.node(2).client.getTransactionReceipt(h).catch(() => null)));
      for (const r of receipts) if (r) blocks.push(r.blockNumber);
      missing = missing.filter((_, i) => receipts[i] === null);
      if (missing.length > 0) await sleep(500);
    }
    console.log(`  membership under load: ${admitted.length} transactions admitted, ${admitted.length - missing.length} committed, ${missing.length} lost; longest gap between commits ${longestGap} ms (view timeout ${VIEW_TIMEOUT_MS} ms); validator 4 from height ${addFrom}, validator 0 out from ${rmFrom}`);
    assert.is(missing.length, 0, `lost: ${missing.slice(0, 5).join(', ')}`);
    assert.ok(blocks.some((b) => b >= addFrom - 3 && b < addFrom + 3), 'transactions committed around the promotion');
    assert.ok(blocks.some((b) => b >= rmFrom - 3 && b < rmFrom + 3), 'transactions committed around the removal');
    assert.ok(longestGap < VIEW_TIMEOUT_MS, `longest gap between commits ${longestGap} ms, over one view-change timeout`);

    // One chain on every node, the removed one included (it follows by RPC).
    const end = (await cluster.node(1).height())!;
    await cluster.waitForHeight(end, cluster.nodes, 30_000);
    await sameChain(cluster.nodes, end);
    // Certificates hold the first quorum of COMMITs a node received: a node that was just
    // syncing may miss a few, but over the rest of the run the new validator must be in some.
    const sent = await fetch(`${observer.url}/metrics`).then((r) => r.text());
    const commitsSent = Number(/goodness_consensus_messages_total\{direction="sent",type="commit"\} (\d+)/.exec(sent)?.[1] ?? 0);
    console.log(`  the promoted node sent ${commitsSent} COMMIT messages; signers seen on node 1 since ${addFrom}: ${[...(await signersAt(cluster.node(1), addFrom, end))].join(',')}`);
    assert.ok(commitsSent > 0, 'the promoted node votes');
    assert.ok((await signersAt(cluster.node(1), addFrom, end)).has(4), 'the promoted node signs certificates');

    // A light client trusting only the genesis hash follows both changes.
    const light = LightClient.trustingGenesis(genesisHashOf(cluster.genesis));
    assert.is(await light.syncTo(cluster.node(3).client, end), end);
    assert.equal(light.validatorsFor(rmFrom)!.map((v) => v.index), [1, 2, 3, 4]);
    // A certificate of the new set is refused against the genesis set: signer 4 is foreign there.
    const last = (await cluster.node(3).client.getBlockByNumber(end))!;
    const cert = (await cluster.node(3).client.getCommitCertificate(end))!;
    const stale = verifyCommit(headerFields(last), last.hash, cert, genesisValidators(cluster.genesis));
    assert.ok(!stale.ok, 'checked against the old set, a certificate of the new set fails');
    assert.ok(verifyCommit(headerFields(last), last.hash, cert, light.validatorsFor(end)!).ok);
  } catch (err) {
    console.log(cluster.logTails(20));
    throw err;
  } finally {
    driver?.kill();
    await gaps?.stop();
    await load?.stop();
    await cluster.cleanup();
  }
});

test.run();
