// A multi-host cluster (issue 6): four validators, each in its own network namespace with its
// own address, started from the folders `goodness cluster init --hosts` made, as an operator
// would on four machines. Faults are real network faults, not killed processes: one host's
// link goes down and comes back; the cluster is split 3/1 and then 2/2 and healed. Checked
// throughout: a side with a quorum (3 of 4) keeps committing, a side without commits nothing,
// no two nodes ever hold different blocks at a height, and after each fault every node
// converges to the same chain. Skips, saying why, where namespaces cannot be made (not root,
// no iproute2, no CAP_NET_ADMIN).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONFIG_FILE, LOG_FILE, type NodeConfig } from '../cluster/config.ts';
import type { NodeSummary } from '../cluster/init.ts';
import { GoodnessClient } from '../rpc/client.ts';
import { kvTx, sleep } from './fixtures/cluster-process.ts';
import { NetnsNetwork, netnsUnavailable } from './fixtures/netns.ts';
import { health } from './fixtures/node-process.ts';
import { exited, signalAndWait, track, type Exit } from './fixtures/process-group.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'goodness.js');
const NODES = 4;
const BASE_PORT = 26650;
const HEALTH_TIMEOUT_MS = 30_000;
/** how long a side without a quorum is watched: more than two default view timeouts (2 s) */
const STALL_WATCH_MS = 5_000;
const CONVERGE_TIMEOUT_MS = 30_000;

/** `goodness ARGS` run from the root namespace (the operator's machine); its stdout. */
function goodness(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`goodness ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** One validator: `goodness node --dir` inside its host's namespace, reached over its host address. */
class HostNode {
  readonly client: GoodnessClient;
  readonly logPath: string;
  private child: ChildProcess | null = null;

  constructor(
    readonly index: number,
    readonly dir: string,
    readonly url: string,
    private readonly net: NetnsNetwork,
  ) {
    this.logPath = join(dir, LOG_FILE);
    // A short timeout: a node whose link is down must not stall a poll.
    this.client = new GoodnessClient(url, { timeoutMs: 2_000 });
  }

  get name(): string {
    return `node${this.index}`;
  }

  /** Spawns the node in its namespace (its own process group) and waits for GET /health = 200. */
  async start(): Promise<void> {
    // process.execPath is the Node 22 this test runs on, so bin/goodness.js does not re-execute.
    const { file, args } = this.net.command(this.index, [process.execPath, BIN, 'node', '--dir', this.dir, '--log-level', 'info']);
    const log = openSync(this.logPath, 'a');
    const child = spawn(file, args, { cwd: ROOT, detached: true, stdio: ['ignore', log, log], env: { ...process.env, FORCE_COLOR: '0' } });
    closeSync(log);
    this.child = child;
    track(child);
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited(child)) throw new Error(`${this.name} exited (code ${child.exitCode}) before it became healthy:\n${this.logTail()}`);
      if ((await health(this.url, 1_000)) === 200) return;
      await sleep(150);
    }
    throw new Error(`${this.name} did not answer ${this.url}/health within ${HEALTH_TIMEOUT_MS} ms:\n${this.logTail()}`);
  }

  /** SIGTERM to the group (SIGKILL after 5 s); what a service manager does. */
  async stop(): Promise<Exit> {
    await this.client.close();
    if (!this.child) return { code: null, signal: null };
    return signalAndWait(this.child, 'SIGTERM');
  }

  async height(): Promise<number | null> {
    try {
      return await this.client.getBlockNumber();
    } catch {
      return null;
    }
  }

  /** goodness_p2p_peers_connected from GET /metrics (getPeers does not say which peers are connected). */
  async connectedPeers(): Promise<number> {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(2_000) });
    const m = /^goodness_p2p_peers_connected (\d+)/m.exec(await res.text());
    return m ? Number(m[1]) : -1;
  }

  logTail(lines = 15): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

const heightsOf = (nodes: HostNode[]) => Promise.all(nodes.map((n) => n.height()));

/**
 * Every block hash any node has reported, by height: a node reporting another hash at a height
 * already seen is a fork. Each node is read from where it was last read up to its height (in
 * batches); finalCheck() reads every node again from block 1.
 */
class ForkWatch {
  private readonly hashAt = new Map<number, { hash: string; from: string }>();
  private readonly checkedUpTo = new Map<HostNode, number>();

  async check(nodes: HostNode[], from?: number): Promise<number> {
    let compared = 0;
    for (const node of nodes) {
      const height = await node.height();
      if (height === null) continue;
      for (let start = (from ?? this.checkedUpTo.get(node) ?? 0) + 1; start <= height; start += 200) {
        const numbers = Array.from({ length: Math.min(200, height - start + 1) }, (_, k) => start + k);
        const answers = await node.client.batch(numbers.map((h) => ({ method: 'getBlockByNumber', params: [h] }) as const));
        answers.forEach((a, k) => {
          const h = numbers[k]!;
          if (!a.ok || !a.result) throw new Error(`${node.name} has no block ${h} below its height ${height}`);
          const hash = (a.result as { hash: string }).hash;
          const seen = this.hashAt.get(h);
          if (seen && seen.hash !== hash) throw new Error(`fork at height ${h}: ${seen.from} has ${seen.hash}, ${node.name} has ${hash}`);
          if (!seen) this.hashAt.set(h, { hash, from: node.name });
          compared++;
        });
      }
      this.checkedUpTo.set(node, Math.max(height, this.checkedUpTo.get(node) ?? 0));
    }
    return compared;
  }

  finalCheck(nodes: HostNode[]): Promise<number> {
    return this.check(nodes, 0);
  }
}

/**
 * A steady trickle of kv transactions, round-robin over `targets()` (which a phase changes),
 * so that every node always has pending work: the view timer runs only while there is some,
 * and a side without a quorum must be seen not committing what it holds.
 */
class Load {
  readonly admitted = new Map<HostNode, string[]>();
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    public targets: HostNode[],
    intervalMs = 60,
  ) {
    this.done = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const node = this.targets[i % Math.max(1, this.targets.length)];
        if (node) {
          try {
            const hash = await node.client.sendTransaction(kvTx(`netns-${i}`, String(i)));
            this.admitted.set(node, [...(this.admitted.get(node) ?? []), hash]);
          } catch {
            // a node being cut off times out: expected
          }
        }
        await sleep(intervalMs);
      }
    })();
  }

  lastAdmittedBy(node: HostNode): string | undefined {
    return this.admitted.get(node)?.at(-1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** Heights of `nodes` once none has moved for `quietMs` (at most 6 s; a block certified just before a fault may still land). */
async function settledHeights(nodes: HostNode[], quietMs = 1_500): Promise<(number | null)[]> {
  const deadline = Date.now() + 6_000;
  let last = JSON.stringify(await heightsOf(nodes));
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(200);
    const key = JSON.stringify(await heightsOf(nodes));
    if (key !== last) [last, since] = [key, Date.now()];
    else if (Date.now() - since >= quietMs) break;
  }
  return JSON.parse(last) as (number | null)[];
}

/** Waits until every one of `nodes` has committed at least `height`. */
async function waitForHeight(nodes: HostNode[], height: number, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
  const started = Date.now();
  for (;;) {
    const hs = await heightsOf(nodes);
    if (hs.every((h) => h !== null && h >= height)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${nodes.map((n) => n.name).join(', ')} did not all reach height ${height} within ${timeoutMs} ms (heights ${hs.join(', ')}):\n${nodes.map((n) => `--- ${n.name} ---\n${n.logTail()}`).join('\n')}`);
    }
    await sleep(200);
  }
}

async function waitCommittedOn(nodes: HostNode[], hash: string, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number[]> {
  const started = Date.now();
  for (;;) {
    const receipts = await Promise.all(nodes.map((n) => n.client.getTransactionReceipt(hash).catch(() => null)));
    if (receipts.every((r) => r !== null)) return receipts.map((r) => r!.blockNumber);
    if (Date.now() - started > timeoutMs) throw new Error(`${hash} not committed on ${nodes.filter((_, i) => !receipts[i]).map((n) => n.name).join(', ')} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * Watches a side without a quorum for `ms`: it commits no new block. Its highest height must not
 * move; a node of the side behind another may still fetch blocks that side already holds
 * (certified before the split: not a new commit), but none beyond. Returns the side's heights.
 */
async function assertStalled(side: HostNode[], ms: number, what: string): Promise<(number | null)[]> {
  const before = await settledHeights(side);
  const top = Math.max(...(before as number[]));
  const started = Date.now();
  let now = before;
  while (Date.now() - started < ms) {
    await sleep(500);
    now = await heightsOf(side);
    const names = side.map((n) => n.name).join(', ');
    assert.ok(
      now.every((h) => h !== null && h <= top),
      `${what}: ${names} commit nothing beyond ${top} (heights ${now.join(',')}, were ${before.join(',')})`,
    );
  }
  assert.is(Math.max(...(now as number[])), top, `${what}: the side's top stays ${top}`);
  return now;
}

/** Checks that `from` reaches (or does not reach) each of `to` over TCP, on its p2p port. */
async function assertReach(net: NetnsNetwork, configs: NodeConfig[], from: number, to: number[], expected: boolean): Promise<void> {
  for (const t of to) {
    const port = Number(/\/tcp\/(\d+)/.exec(configs[t]!.p2p.announce)![1]);
    const r = await net.reach(from, net.host(t).address, port);
    assert.is(r.reached, expected, `node${from} ${expected ? 'reaches' : 'does not reach'} node${t} (${r.outcome})`);
  }
}

const skipReason = netnsUnavailable();
const TITLE = 'four hosts in network namespaces: link down/up, 3/1 and 2/2 partitions, heal; quorum side commits, others stall, no fork, all converge';

if (skipReason) {
  console.log(`SKIP multihost-netns: ${skipReason}`);
  test.skip(TITLE, () => {});
} else {
  test(TITLE, async () => {
    const net = NetnsNetwork.create(NODES);
    const dir = mkdtempSync(join(tmpdir(), 'goodness-netns-'));
    // A SIGINT/SIGTERM exits without reaching `finally`: the folder goes with the process.
    const removeDir = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', removeDir);
    const nodes: HostNode[] = [];
    let load: Load | null = null;
    let ok = false;
    try {
      const addresses = net.hosts.map((h) => h.address);
      // The operator's command, verbatim: one folder per node, node i on host i.
      const made = JSON.parse(await goodness(['cluster', 'init', '--nodes', String(NODES), '--dir', dir, '--hosts', addresses.join(','), '--machine', 'kv', '--chain', 'goodness-netns', '--base-port', String(BASE_PORT), '--json'])) as NodeSummary[];
      assert.is(made.length, NODES);
      const configs = made.map((m) => JSON.parse(readFileSync(join(m.dir, CONFIG_FILE), 'utf8')) as NodeConfig);
      made.forEach((m, i) => {
        assert.ok(m.p2p.startsWith(`/ip4/${addresses[i]}/tcp/`), `${m.name} announces its host ${addresses[i]} (${m.p2p})`);
        assert.ok(m.rpc.startsWith(`http://${addresses[i]}:`), `${m.name}'s RPC is on its host (${m.rpc})`);
        assert.ok(configs[i]!.p2p.listen.startsWith('/ip4/0.0.0.0/'), `${m.name} binds every interface`);
        assert.equal(configs[i]!.peers.map((p) => p.multiaddr.split('/')[2]).sort(), addresses.filter((_, j) => j !== i).sort(), `${m.name} dials the other hosts`);
        nodes.push(new HostNode(i, m.dir, m.rpc, net));
      });

      let t0 = Date.now();
      await Promise.all(nodes.map((n) => n.start()));
      console.log(`  4 nodes up in their namespaces (${addresses.join(', ')}) in ${Date.now() - t0} ms`);
      // They found each other over the namespace network (the p2p gauge counts open connections).
      for (const n of nodes) {
        const deadline = Date.now() + 10_000;
        let connected = await n.connectedPeers();
        while (connected < NODES - 1 && Date.now() < deadline) {
          await sleep(200);
          connected = await n.connectedPeers();
        }
        assert.is(connected, NODES - 1, `${n.name} is connected to the three others`);
      }

      const watch = new ForkWatch();
      load = new Load(nodes);
      await waitForHeight(nodes, 3, 20_000);

      // (a) One host's link goes down: the leader's, so the others must also change view.
      const leader = (await nodes[0]!.client.getConsensusStatus()).leader;
      const cut = nodes[leader]!;
      const rest = nodes.filter((n) => n !== cut);
      load.targets = rest;
      net.linkDown(cut.index);
      t0 = Date.now();
      await assertReach(net, configs, rest[0]!.index, [cut.index], false);
      assert.is(await cut.height(), null, 'the test process cannot reach the cut-off node either');
      const restStart = Math.max(...((await heightsOf(rest)) as number[]));
      await waitForHeight(rest, restStart + 3, 20_000);
      const restAt = Math.max(...((await heightsOf(rest)) as number[]));
      console.log(`  (a) ${cut.name} (the leader) link down: the other three went ${restStart} -> ${restAt} in ${Date.now() - t0} ms`);
      net.linkUp(cut.index);
      t0 = Date.now();
      await waitForHeight([cut], restAt);
      console.log(`  (a) link up: ${cut.name} caught up to ${restAt} in ${Date.now() - t0} ms`);
      const compared = await watch.check(nodes);
      assert.ok(compared > 0);

      // (b) 3/1: {the others} and {node 3}. The minority gets transactions too, so that it
      // has work and runs view changes, and must still commit nothing.
      const minority = nodes[NODES - 1]!;
      const majority = nodes.filter((n) => n !== minority);
      load.targets = nodes;
      await sleep(500);
      net.partition([majority.map((n) => n.index), [minority.index]]);
      await assertReach(net, configs, minority.index, [0], false);
      await assertReach(net, configs, 0, [minority.index], false);
      await assertReach(net, configs, 0, [1, 2], true);
      const majorityBefore = Math.max(...((await heightsOf(majority)) as number[]));
      t0 = Date.now();
      const [minorityHeight] = await assertStalled([minority], STALL_WATCH_MS, '3/1 split, minority side');
      const majorityAfter = Math.max(...((await heightsOf(majority)) as number[]));
      console.log(`  (b) 3/1 split: ${minority.name} stayed at ${minorityHeight} for ${Date.now() - t0} ms while the majority went ${majorityBefore} -> ${majorityAfter}`);
      assert.ok(majorityAfter >= majorityBefore + 3, `the majority side keeps committing (${majorityBefore} -> ${majorityAfter})`);
      const pendingOnMinority = load.lastAdmittedBy(minority);
      assert.ok(pendingOnMinority, 'the minority admitted transactions during the split');
      assert.is(await minority.client.getTransactionReceipt(pendingOnMinority!), null, 'what the minority admitted is not committed during the split');
      await watch.check(nodes);

      net.heal();
      t0 = Date.now();
      const healedTarget = Math.max(...((await heightsOf(majority)) as number[]));
      await waitForHeight([minority], healedTarget);
      // What only the minority held during the split reaches the others and commits everywhere.
      await waitCommittedOn(nodes, pendingOnMinority!);
      console.log(`  (b) healed: ${minority.name} caught up to ${healedTarget} and its split-time transactions committed everywhere in ${Date.now() - t0} ms`);
      await watch.check(nodes);

      // (b') 2/2: neither side has a quorum of three; nothing commits anywhere.
      net.partition([[0, 1], [2, 3]]);
      await assertReach(net, configs, 0, [2, 3], false);
      await assertReach(net, configs, 3, [0, 1], false);
      await assertReach(net, configs, 0, [1], true);
      t0 = Date.now();
      const [left, right] = await Promise.all([assertStalled([nodes[0]!, nodes[1]!], STALL_WATCH_MS, '2/2 split, left'), assertStalled([nodes[2]!, nodes[3]!], STALL_WATCH_MS, '2/2 split, right')]);
      const stalled = [...left, ...right];
      console.log(`  (b') 2/2 split: no side committed a new block for ${Date.now() - t0} ms (heights ${stalled.join(',')})`);
      await watch.check(nodes);
      net.heal();
      t0 = Date.now();
      await waitForHeight(nodes, Math.max(...(stalled as number[])) + 2);
      console.log(`  (b') healed: commits resumed on all four in ${Date.now() - t0} ms`);

      // (c) One more transaction commits everywhere at the same height, and the four hold one chain.
      await load.stop();
      const last = await nodes[0]!.client.sendTransaction(kvTx('netns-final', 'done'));
      const blocks = await waitCommittedOn(nodes, last);
      assert.is(new Set(blocks).size, 1, `the final transaction is in the same block everywhere (${blocks.join(',')})`);
      const tip = Math.max(...((await heightsOf(nodes)) as number[]));
      await waitForHeight(nodes, tip);
      const checked = await watch.finalCheck(nodes);
      const tips = await Promise.all(nodes.map(async (n) => (await n.client.getBlockByNumber(tip))!.hash));
      assert.is(new Set(tips).size, 1, `one tip hash at ${tip}: ${tips.join(', ')}`);
      console.log(`  (c) all four at tip ${tip} with one hash; ${checked} block hashes compared, no fork`);

      // The operator's check from the machine that ran init: every node answers over its host address.
      const status = JSON.parse(await goodness(['cluster', 'status', '--dir', dir, '--json'])) as NodeSummary[];
      assert.equal(status.map((s) => s.rpc), made.map((m) => m.rpc));
      assert.ok(status.every((s) => s.height !== null && s.height >= tip), `cluster status sees every node at ${tip} or above: ${status.map((s) => s.height).join(',')}`);

      // SIGTERM (systemd's and docker's stop signal) stops each node cleanly: exit code 0.
      const exits = await Promise.all(nodes.map((n) => n.stop()));
      assert.equal(exits, nodes.map(() => ({ code: 0, signal: null })), 'every node exits 0 on SIGTERM');
      ok = true;
    } catch (err) {
      for (const n of nodes) console.log(`--- ${n.name} ---\n${n.logTail(25)}`);
      throw err;
    } finally {
      await load?.stop();
      await Promise.all(nodes.map((n) => n.stop()));
      net.destroy();
      const left = net.leftovers();
      process.removeListener('exit', removeDir);
      if (ok || process.env.GOODNESS_KEEP_CLUSTER !== '1') removeDir();
      else console.log(`  cluster kept in ${dir}`);
      assert.equal(left, [], 'the network namespaces, veths and bridge are gone');
    }
  });
}

test.run();
