// The operator's command line (spec/cli.md), run as operators run it: the real bin in child
// processes, from a cwd outside the project, on real files.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blsPopVerify } from '../consensus/crypto/bls.ts';
import { Ed25519Signer, ed25519PublicKeyOf, ed25519Verify } from '../consensus/crypto/ed25519.ts';
import { from0x, utf8 } from '../consensus/crypto/encoding.ts';
import { loadGenesis, loadNodeConfig, UserError, validateGenesis } from '../cluster/config.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'goodness.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin on this test's Node (22) from a cwd outside the project. */
function goodness(args: string[], opts: { direct?: boolean; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // direct: run the file itself, so its shebang picks whatever `node` is on PATH (Node 20
    // here), which exercises the re-exec onto the project's Node 22.
    const [cmd, argv] = opts.direct ? [BIN, args] : [process.execPath, [BIN, ...args]];
    const child = spawn(cmd, argv, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'goodness-cli-'));
}

function assertUserError(run: Run, ...mentions: string[]): void {
  assert.is(run.code, 1, `exit code 1 expected, got ${run.code}; stderr: ${run.stderr}`);
  for (const m of mentions) assert.ok(run.stderr.includes(m), `stderr should mention ${JSON.stringify(m)}: ${run.stderr}`);
  assert.not.match(run.stderr, /\n\s+at /, 'no stack trace for a user error');
}

const SUMMARY_KEYS = ['dir', 'height', 'name', 'p2p', 'peers', 'pending', 'pid', 'rpc', 'view'];

test('--help of every command works from any cwd, also on the Node found on PATH', async () => {
  const top = await goodness(['--help'], { direct: true });
  assert.is(top.code, 0, top.stderr);
  for (const cmd of ['cluster', 'node', 'keygen', 'bench']) assert.ok(top.stdout.includes(cmd), `top help lists ${cmd}`);
  const commands: [string[], string][] = [
    [['cluster', '--help'], 'init'],
    [['cluster', 'init', '--help'], 'P + 2i + 1'],
    [['cluster', 'start', '--help'], '--dir'],
    [['cluster', 'stop', '--help'], 'SIGKILL'],
    [['cluster', 'status', '--help'], '--json'],
    [['node', '--help'], '--log-level'],
    [['keygen', '--help'], 'accountId'],
    [['bench', '--help'], '--backlog'],
  ];
  for (const [args, mention] of commands) {
    const run = await goodness(args);
    assert.is(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
    assert.ok(run.stdout.includes(`Usage: goodness ${args.slice(0, -1).join(' ')}`), `${args.join(' ')} prints its usage`);
    assert.ok(run.stdout.includes(mention), `${args.join(' ')} help mentions ${mention}`);
  }
});

test('keygen prints an account key pair that signs and verifies', async () => {
  const run = await goodness(['keygen']);
  assert.is(run.code, 0, run.stderr);
  const key = JSON.parse(run.stdout) as Record<string, string>;
  assert.equal(Object.keys(key).sort(), ['accountId', 'did', 'publicKey', 'secretKey']);
  assert.match(key.accountId!, /^[0-9a-f]{64}$/);
  assert.match(key.secretKey!, /^[0-9a-f]{64}$/);
  assert.is(key.publicKey, key.accountId);
  assert.is(key.did, `did:goodness:${key.accountId}`);
  assert.is(ed25519PublicKeyOf(key.secretKey!), key.accountId);
  const message = utf8('a good deed');
  const sig = new Ed25519Signer(key.secretKey!).sign(message);
  assert.ok(ed25519Verify(key.accountId!, message, sig));
  assert.not.ok(ed25519Verify(key.accountId!, utf8('another deed'), sig));
  const second = JSON.parse((await goodness(['keygen'])).stdout) as Record<string, string>;
  assert.is.not(second.secretKey, key.secretKey, 'each run makes a new key');
});

test('bench against a node that is not there: a clear error, exit 1', async () => {
  const run = await goodness(['bench', '--rpc', 'http://127.0.0.1:1', '--duration', '1']);
  assert.is(run.code, 1);
  assert.match(run.stderr, /cannot reach the node/);
});

test('cluster init --nodes 1: files, genesis, keys, --json shape', async () => {
  const dir = tempDir();
  try {
    const run = await goodness(['cluster', 'init', '--nodes', '1', '--dir', dir, '--json']);
    assert.is(run.code, 0, run.stderr);
    const nodes = JSON.parse(run.stdout) as Record<string, unknown>[];
    assert.is(nodes.length, 1);
    assert.equal(Object.keys(nodes[0]!).sort(), SUMMARY_KEYS);
    assert.equal(nodes[0], {
      name: 'node0',
      dir: join(dir, 'node0'),
      rpc: 'http://127.0.0.1:26651',
      p2p: '/ip4/127.0.0.1/tcp/26650',
      pid: null,
      height: null,
      view: null,
      peers: null,
      pending: null,
    });

    const genesis = loadGenesis(join(dir, 'genesis.json'));
    assert.is(genesis.chain, 'goodness-local');
    assert.is(genesis.stateMachine, 'goodness');
    assert.ok(Math.abs(genesis.genesisTime - Date.now()) < 60_000, 'genesis time is now');
    assert.is(genesis.validators.length, 1);
    const v = genesis.validators[0]!;
    assert.ok(blsPopVerify(from0x(v.blsPublicKey, 48)!, from0x(v.pop, 96)!), 'proof of possession verifies');
    assert.is(readFileSync(join(dir, 'node0', 'genesis.json'), 'utf8'), readFileSync(join(dir, 'genesis.json'), 'utf8'), 'node folder holds a copy of genesis');

    const keyPath = join(dir, 'node0', 'node-key.json');
    assert.is(statSync(keyPath).mode & 0o777, 0o600, 'node key is readable by its owner only');
    const nodeKey = JSON.parse(readFileSync(keyPath, 'utf8')) as Record<string, string>;
    assert.equal(Object.keys(nodeKey).sort(), ['blsPublicKey', 'blsSecretKey', 'peerId', 'peerPrivateKey', 'pop']);
    assert.is(nodeKey.peerId, v.peerId);

    const governorPath = join(dir, 'accounts', 'governor.json');
    assert.is(statSync(governorPath).mode & 0o777, 0o600);
    const governor = JSON.parse(readFileSync(governorPath, 'utf8')) as Record<string, string>;
    assert.equal(genesis.app, { governors: [governor.accountId], orgs: [] });
    assert.is(ed25519PublicKeyOf(governor.secretKey!), governor.accountId);

    const loaded = loadNodeConfig(join(dir, 'node0'));
    assert.is(loaded.config.index, 0);
    assert.is(loaded.dataDir, join(dir, 'node0', 'data'));
    assert.equal(loaded.config.rpc, { host: '127.0.0.1', port: 26651 });
    assert.equal(loaded.config.peers, []);
    assert.equal(loaded.config.pool, { maxTxs: 100_000, maxBytes: 256 * 1024 * 1024, maxPerSender: 10_000 });
    assert.equal(loaded.config.rpcLimits, { maxBodyBytes: 1024 * 1024, maxBatch: 1000 });
    assert.is(loaded.keys.peerPrivateKey.type, 'Ed25519');
    assert.is(loaded.keys.peerId, v.peerId);

    // A tampered proof of possession is refused, naming the field.
    const tampered = JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8'));
    const other = JSON.parse((await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'other'), '--json'])).stdout);
    tampered.validators[0].pop = loadGenesis(join(other[0].dir, 'genesis.json')).validators[0]!.pop;
    assert.throws(() => validateGenesis(tampered, 'tampered'), (e: Error) => e instanceof UserError && e.message.includes('validators[0].pop'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster init refuses a folder that already holds a cluster', async () => {
  const dir = tempDir();
  try {
    assert.is((await goodness(['cluster', 'init', '--nodes', '1', '--dir', dir])).code, 0);
    const before = readFileSync(join(dir, 'genesis.json'), 'utf8');
    const again = await goodness(['cluster', 'init', '--nodes', '1', '--dir', dir]);
    assertUserError(again, 'already holds a cluster', '--dir');
    assert.is(readFileSync(join(dir, 'genesis.json'), 'utf8'), before, 'the existing genesis is untouched');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster init refuses --nodes 0 and --nodes 17 and other bad options', async () => {
  const dir = tempDir();
  try {
    for (const n of ['0', '17', 'four']) {
      const run = await goodness(['cluster', 'init', '--nodes', n, '--dir', join(dir, 'c')]);
      assertUserError(run, '--nodes', '1 to 16');
      assert.not.ok(existsSync(join(dir, 'c')), 'nothing is written');
    }
    assertUserError(await goodness(['cluster', 'init', '--dir', join(dir, 'c')]), '--nodes');
    assertUserError(await goodness(['cluster', 'init', '--nodes', '4', '--dir', join(dir, 'c'), '--base-port', '65530']), '--base-port');
    assertUserError(await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'c'), '--chain', 'bad chain']), '--chain');
    assertUserError(await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'c'), '--machine', 'evm']), '--machine');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster init --app-state sets the genesis app section, and a bad one is refused', async () => {
  const dir = tempDir();
  try {
    const governor = JSON.parse((await goodness(['keygen'])).stdout).accountId as string;
    const org = JSON.parse((await goodness(['keygen'])).stdout).accountId as string;
    const good = join(dir, 'app.json');
    const app = { governors: [governor], orgs: [{ org, name: 'Metro', roles: ['distributor'] }] };
    writeFileSync(good, JSON.stringify(app));
    const run = await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'a'), '--app-state', good]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(loadGenesis(join(dir, 'a', 'genesis.json')).app, app);
    assert.not.ok(existsSync(join(dir, 'a', 'accounts')), 'no generated governor when the app state names its own');

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ governors: [governor], orgs: [{ org, name: 'Regulator', roles: ['supervisor', 'issuer'] }] }));
    assertUserError(await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'b'), '--app-state', bad]), 'supervisor', bad);
    assert.not.ok(existsSync(join(dir, 'b', 'genesis.json')));
    assertUserError(await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'b'), '--app-state', join(dir, 'missing.json')]), 'missing.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster init --hosts spreads 4 nodes round-robin over 2 hosts', async () => {
  const dir = tempDir();
  try {
    const run = await goodness(['cluster', 'init', '--nodes', '4', '--dir', dir, '--hosts', '10.0.0.1,node-b.example', '--base-port', '30000', '--machine', 'kv', '--json']);
    assert.is(run.code, 0, run.stderr);
    const nodes = JSON.parse(run.stdout) as { name: string; rpc: string; p2p: string }[];
    assert.equal(
      nodes.map((n) => [n.name, n.rpc, n.p2p]),
      [
        ['node0', 'http://10.0.0.1:30001', '/ip4/10.0.0.1/tcp/30000'],
        ['node1', 'http://node-b.example:30003', '/dns/node-b.example/tcp/30002'],
        ['node2', 'http://10.0.0.1:30005', '/ip4/10.0.0.1/tcp/30004'],
        ['node3', 'http://node-b.example:30007', '/dns/node-b.example/tcp/30006'],
      ],
    );
    const genesis = loadGenesis(join(dir, 'genesis.json'));
    assert.is(genesis.stateMachine, 'kv');
    assert.equal(genesis.validators.map((v) => v.index), [0, 1, 2, 3]);
    const node1 = loadNodeConfig(join(dir, 'node1'));
    assert.equal(node1.config.rpc, { host: '0.0.0.0', port: 30003 });
    assert.equal(node1.config.p2p, { listen: '/ip4/0.0.0.0/tcp/30002', announce: '/dns/node-b.example/tcp/30002' });
    assert.equal(
      node1.config.peers,
      [0, 2, 3].map((i) => ({ index: i, peerId: genesis.validators[i]!.peerId, multiaddr: nodes[i]!.p2p, rpc: nodes[i]!.rpc })),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster add-node makes an observer folder that loads, and gov propose names what is wrong', async () => {
  const dir = tempDir();
  try {
    assert.is((await goodness(['cluster', 'init', '--nodes', '2', '--dir', join(dir, 'c'), '--base-port', '1200'])).code, 0);
    const added = await goodness(['cluster', 'add-node', '--dir', join(dir, 'c'), '--json']);
    assert.is(added.code, 0, added.stderr);
    const { node, action } = JSON.parse(added.stdout) as { node: { name: string; dir: string; rpc: string; p2p: string }; action: Record<string, string> };
    assert.is(node.name, 'node2');
    assert.is(node.rpc, 'http://127.0.0.1:1205', 'the next pair of ports after the cluster\'s');
    const loaded = loadNodeConfig(node.dir);
    assert.is(loaded.config.index, null, 'not a validator until governance adds it');
    assert.is(loaded.validator, null);
    assert.equal(loaded.config.peers.map((p) => [p.index, p.rpc]), [[0, 'http://127.0.0.1:1201'], [1, 'http://127.0.0.1:1203']], 'it follows the validators over their RPC');
    assert.is(action.type, 'validator.add');
    assert.is(action.peerId, loaded.keys.peerId);
    // The human form says what to do next.
    const second = await goodness(['cluster', 'add-node', '--dir', join(dir, 'c')]);
    assert.is(second.code, 0, second.stderr);
    assert.match(second.stdout, /gov propose .*--add-validator .*node3/);
    // gov propose: nothing to propose, a bad index, no node there: one clear line each.
    const key = join(dir, 'c', 'accounts', 'governor.json');
    assertUserError(await goodness(['gov', 'propose', '--rpc', 'http://127.0.0.1:1201', '--key', key, '--proposal', 'p1']), '--add-validator NODE_FOLDER');
    assertUserError(await goodness(['gov', 'propose', '--rpc', 'http://127.0.0.1:1201', '--key', key, '--proposal', 'p1', '--remove-validator', 'x']), 'validator index');
    assertUserError(await goodness(['gov', 'propose', '--rpc', 'http://127.0.0.1:1201', '--key', join(dir, 'nope.json'), '--proposal', 'p1', '--remove-validator', '1']), 'governor key');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('node and cluster commands name a missing node folder or cluster', async () => {
  const dir = tempDir();
  try {
    assertUserError(await goodness(['node', '--dir', dir]), 'config.json', dir);
    assertUserError(await goodness(['cluster', 'start', '--dir', dir]), 'holds no cluster', 'cluster init');
    assertUserError(await goodness(['cluster', 'status', '--dir', join(dir, 'nope')]), 'does not exist');
    // A cluster whose nodes are not running: status knows the addresses, nothing else.
    assert.is((await goodness(['cluster', 'init', '--nodes', '1', '--dir', join(dir, 'c'), '--base-port', '1100'])).code, 0);
    const status = await goodness(['cluster', 'status', '--dir', join(dir, 'c'), '--json']);
    assert.is(status.code, 0, status.stderr);
    const [node] = JSON.parse(status.stdout);
    // spec/cli.md's keys, then the extra ones a glance needs (null too for a stopped node).
    const { role, validatorIndex, leader, lastCommitAgeMs, viewChanges, syncing, highestKnownHeight, ...summary } = node;
    assert.equal(summary, { name: 'node0', dir: join(dir, 'c', 'node0'), rpc: 'http://127.0.0.1:1101', p2p: '/ip4/127.0.0.1/tcp/1100', pid: null, height: null, view: null, peers: null, pending: null });
    assert.equal([role, validatorIndex, leader, lastCommitAgeMs, viewChanges, syncing, highestKnownHeight], Array(7).fill(null));
    const stop = await goodness(['cluster', 'stop', '--dir', join(dir, 'c')]);
    assert.is(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /node0: was not running/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A base port P with P and P + 1 both free on loopback. */
async function freeBasePort(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const base = 20000 + 2 * Math.floor(Math.random() * 10000);
    if ((await free(base)) && (await free(base + 1))) return base;
  }
  throw new Error('no free pair of ports found');
}

function nodeModuleReady(): string | null {
  const path = join(ROOT, 'cluster', 'node.ts');
  if (!existsSync(path)) return 'cluster/node.ts does not exist yet';
  if (!/export\s+(async\s+)?function\s+runNode\b|export\s+const\s+runNode\b/.test(readFileSync(path, 'utf8'))) return 'cluster/node.ts does not export runNode yet';
  return null;
}

const notReady = nodeModuleReady();
if (notReady) console.log(`skipping "cluster start/status/stop with a real node": ${notReady}`);

(notReady ? test.skip : test)('cluster start, status and stop run a real node', async () => {
  const dir = tempDir();
  const cluster = join(dir, 'c');
  try {
    const base = await freeBasePort();
    assert.is((await goodness(['cluster', 'init', '--nodes', '1', '--dir', cluster, '--base-port', String(base)])).code, 0);
    const start = await goodness(['cluster', 'start', '--dir', cluster, '--json', '--timeout', '60'], { timeoutMs: 90_000 });
    assert.is(start.code, 0, start.stderr);
    const [started] = JSON.parse(start.stdout);
    assert.equal(Object.keys(started).sort(), SUMMARY_KEYS);
    assert.is(started.rpc, `http://127.0.0.1:${base + 1}`);
    assert.type(started.pid, 'number');

    const pidFile = join(cluster, 'node0', 'node.pid');
    assert.ok(existsSync(pidFile), 'the running node wrote node.pid');
    const status = await goodness(['cluster', 'status', '--dir', cluster, '--json']);
    assert.is(status.code, 0, status.stderr);
    const [node] = JSON.parse(status.stdout);
    assert.is(node.pid, Number(readFileSync(pidFile, 'utf8').trim()));
    assert.type(node.height, 'number');
    assert.type(node.view, 'number');
    assert.type(node.pending, 'number');
    const health = await fetch(`${node.rpc}/health`);
    assert.is(health.status, 200);
    await health.body?.cancel();

    // Starting again leaves the running node alone.
    const again = await goodness(['cluster', 'start', '--dir', cluster, '--json'], { timeoutMs: 90_000 });
    assert.is(again.code, 0, again.stderr);
    assert.is(JSON.parse(again.stdout)[0].pid, node.pid);

    const stop = await goodness(['cluster', 'stop', '--dir', cluster], { timeoutMs: 30_000 });
    assert.is(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /node0: stopped/);
    assert.not.ok(existsSync(pidFile), 'a cleanly stopped node removed node.pid');
    assert.throws(() => process.kill(node.pid, 0), 'the node process is gone');
  } finally {
    await goodness(['cluster', 'stop', '--dir', cluster], { timeoutMs: 30_000 }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
