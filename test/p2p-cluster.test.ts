// Four validators on real libp2p over loopback: every channel in both directions between every
// pair, sync request/response (reply, error reply, timeout, late reply), transaction gossip
// without re-gossip, a validator removed from the set, and a node stopped and restarted on its
// port with the others reconnecting and messages flowing again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { P2PNode } from '../p2p/node.ts';
import { createP2PNode } from '../p2p/node.ts';
import { firstTcpAddress, generateKeys, startLocalCluster, waitFor, waitFullMesh, type LocalCluster } from '../p2p/testing.ts';
import { TxGossip } from '../p2p/tx-gossip.ts';
import { CHANNELS, P2PRequestError, type Channel } from '../p2p/types.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

// Short backoff so that reconnects happen within the test's time.
const tuning = { backoff: { baseMs: 100, maxMs: 1_000 } };

function record(node: P2PNode, channel: Channel): string[] {
  const got: string[] = [];
  node.onMessage(channel, (from, bytes) => got.push(`${from}:${dec(bytes)}`));
  return got;
}

test('four validators: every channel carries messages both ways between every pair', async () => {
  const cluster = await startLocalCluster(4, { tuning });
  try {
    await waitFullMesh(cluster.nodes);
    const inbox = cluster.nodes.map((node) => Object.fromEntries(CHANNELS.map((c) => [c, record(node, c)])) as Record<Channel, string[]>);
    for (const [from, node] of cluster.nodes.entries()) {
      for (let to = 0; to < 4; to++) {
        if (to === from) continue;
        for (const channel of CHANNELS) assert.ok(node.send(to, channel, enc(`${channel} ${from}->${to}`)));
      }
    }
    await waitFor(() => inbox.every((box) => CHANNELS.every((c) => box[c].length === 3)), 10_000, 'all messages');
    for (const [to, box] of inbox.entries()) {
      for (const channel of CHANNELS) {
        const expected = [0, 1, 2, 3].filter((f) => f !== to).map((f) => `${f}:${channel} ${f}->${to}`);
        assert.equal([...box[channel]].sort(), expected, `node ${to} ${channel}`);
      }
    }
    // broadcast reaches the three others, never the sender
    assert.is(cluster.nodes[2]!.broadcast('consensus', enc('vote')), 3);
    await waitFor(() => inbox.filter((box) => box.consensus.includes('2:vote')).length === 3, 5_000, 'broadcast');
    assert.not.ok(inbox[2]!.consensus.includes('2:vote'));
    // sending to oneself or to an unknown index is refused, not thrown
    assert.not.ok(cluster.nodes[0]!.send(0, 'consensus', enc('me')));
    assert.not.ok(cluster.nodes[0]!.send(9, 'consensus', enc('nobody')));

    const peers = cluster.nodes[0]!.peers();
    assert.equal(
      peers.map((p) => [p.validatorIndex, p.peerId, p.connected]),
      [1, 2, 3].map((i) => [i, cluster.validators[i]!.peerId, true]),
    );
    assert.ok(peers[0]!.addresses.some((a) => a.startsWith(cluster.validators[1]!.multiaddr!)));
    const stats = cluster.nodes[0]!.stats();
    assert.is(stats.selfIndex, 0);
    for (const p of stats.peers) {
      assert.is(p.connections, 1, 'duplicate connections were closed');
      assert.is(p.sent.consensus.msgs, 1, 'one consensus message to each peer');
      assert.is(p.received.consensus.msgs, p.index === 2 ? 2 : 1, 'and the broadcast from node 2');
      assert.is(p.sent.sync.bytes, 5 + enc(`sync 0->${p.index}`).length, 'sync messages carry the 5-byte sync header');
    }
  } finally {
    await cluster.stop();
  }
});

test('sync: request/response, error reply, timeout with a late reply, unknown peer', async () => {
  const cluster = await startLocalCluster(2, { tuning });
  try {
    await waitFullMesh(cluster.nodes);
    const [a, b] = cluster.nodes as [P2PNode, P2PNode];
    // no handler yet: an error reply
    const noHandler = await a.request(1, enc('x'), 2_000).catch((e: unknown) => e);
    assert.instance(noHandler, P2PRequestError);
    assert.is((noHandler as P2PRequestError).code, 'remote-error');

    b.onRequest(async (from, bytes) => {
      const q = dec(bytes);
      if (q === 'fail') throw new Error('no such block');
      if (q === 'slow') await new Promise((r) => setTimeout(r, 600));
      return enc(`block for ${q} asked by ${from}`);
    });
    a.onRequest((from) => enc(`a answers ${from}`));
    assert.is(dec(await a.request(1, enc('h7'), 2_000)), 'block for h7 asked by 0');
    assert.is(dec(await b.request(0, enc('?'), 2_000)), 'a answers 1');
    // several at once complete independently
    const many = await Promise.all([1, 2, 3, 4, 5].map((i) => a.request(1, enc(`h${i}`), 2_000)));
    assert.equal(many.map(dec), [1, 2, 3, 4, 5].map((i) => `block for h${i} asked by 0`));
    // a large reply (1 MiB, several Yamux frames)
    b.onRequest(() => new Uint8Array(1 << 20).fill(7));
    const big = await a.request(1, enc('big'), 5_000);
    assert.is(big.length, 1 << 20);
    assert.is(big[12345], 7);
    b.onRequest(async (_from, bytes) => {
      if (dec(bytes) === 'slow') await new Promise((r) => setTimeout(r, 600));
      if (dec(bytes) === 'fail') throw new Error('no such block');
      return enc('ok');
    });

    const failed = await a.request(1, enc('fail'), 2_000).catch((e: unknown) => e);
    assert.is((failed as P2PRequestError).code, 'remote-error');
    assert.match((failed as Error).message, 'no such block');

    const started = Date.now();
    const timedOut = await a.request(1, enc('slow'), 200).catch((e: unknown) => e);
    assert.is((timedOut as P2PRequestError).code, 'timeout');
    assert.ok(Date.now() - started < 550, 'the timeout fired before the reply');
    await waitFor(() => a.stats().peers[0]!.requests.lateResponses === 1, 3_000, 'the late reply to be counted');

    const unknown = await a.request(5, enc('x'), 1_000).catch((e: unknown) => e);
    assert.is((unknown as P2PRequestError).code, 'unknown-peer');
    const tooBig = await a.request(1, new Uint8Array(a.maxFrameBytes), 1_000).catch((e: unknown) => e);
    assert.is((tooBig as P2PRequestError).code, 'too-large');

    const r = a.stats().peers[0]!.requests;
    assert.is(r.timedOut, 1);
    assert.is(r.failed, 2);
    assert.is(b.stats().peers[0]!.requests.served, 10, 'every request was answered, the one without a handler too');
  } finally {
    await cluster.stop();
  }
});

test('tx gossip over four validators: each tx reaches every other validator exactly once', async () => {
  const cluster = await startLocalCluster(4, { tuning });
  const gossips: TxGossip[] = [];
  try {
    await waitFullMesh(cluster.nodes);
    const received = cluster.nodes.map(() => new Map<string, number>());
    for (const [i, node] of cluster.nodes.entries()) {
      gossips.push(
        new TxGossip(node, {
          flushMs: 5,
          maxBatchTxs: 50,
          onTx: (tx) => {
            const key = dec(tx);
            received[i]!.set(key, (received[i]!.get(key) ?? 0) + 1);
          },
        }),
      );
    }
    const perNode = 120;
    for (let k = 0; k < perNode; k++) for (const [i, g] of gossips.entries()) g.add(enc(`tx ${i}/${k}`));
    const expected = 3 * perNode;
    await waitFor(() => received.every((m) => m.size === expected), 10_000, 'every tx everywhere');
    await new Promise((r) => setTimeout(r, 100)); // room for any (wrong) re-gossip to show up
    for (const [i, m] of received.entries()) {
      assert.is(m.size, expected);
      assert.ok([...m.values()].every((n) => n === 1), `node ${i} saw a tx twice`);
      assert.not.ok([...m.keys()].some((k) => k.startsWith(`tx ${i}/`)), 'own txs do not come back');
    }
    const s = gossips[0]!.stats();
    assert.is(s.txsSent, perNode);
    assert.ok(s.batchesSent >= 3 && s.batchesSent < perNode, `batched: ${s.batchesSent} batches`);
  } finally {
    for (const g of gossips) g.stop();
    await cluster.stop();
  }
});

test('a validator removed from the set is disconnected and its messages refused', async () => {
  const cluster = await startLocalCluster(3, { tuning });
  try {
    await waitFullMesh(cluster.nodes);
    const [a, , c] = cluster.nodes as [P2PNode, P2PNode, P2PNode];
    const got = record(a, 'consensus');
    a.setValidators(cluster.validators.slice(0, 2));
    assert.equal(a.peers().map((p) => p.validatorIndex), [1]);
    await waitFor(() => !c.peers()[0]!.connected, 5_000, 'c to lose a');
    c.send(0, 'consensus', enc('let me in'));
    // c keeps redialling; a's gater refuses it after the handshake
    await waitFor(() => (a.stats().refused.connections.not_validator ?? 0) >= 1, 5_000, 'a refusal');
    assert.ok(a.stats().refusedPeers[cluster.validators[2]!.peerId]! >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got, []);
    // and back in: governance re-adds it
    a.setValidators(cluster.validators);
    await waitFor(() => got.includes('2:let me in'), 5_000, 'the queued message after re-adding');
  } finally {
    await cluster.stop();
  }
});

test('a validator added to the set (governance) is dialled and joins the mesh', async () => {
  const cluster = await startLocalCluster(3, { tuning });
  let joiner: P2PNode | undefined;
  try {
    await waitFullMesh(cluster.nodes);
    const [key] = await generateKeys(1);
    const joinerId = peerIdFromPrivateKey(key!).toString();
    const before = [...cluster.validators, { index: 3, peerId: joinerId }];
    joiner = await createP2PNode({ privateKey: key!, listen: ['/ip4/127.0.0.1/tcp/0'], validators: before, tuning });
    await joiner.start();
    const all = [...cluster.validators, { index: 3, peerId: joinerId, multiaddr: firstTcpAddress(joiner) }];
    for (const node of cluster.nodes) node.setValidators(all);
    const got = record(joiner, 'consensus');
    await waitFullMesh([...cluster.nodes, joiner]);
    for (const node of cluster.nodes) node.send(3, 'consensus', enc('welcome'));
    await waitFor(() => got.length === 3, 5_000, 'welcome from the three');
    assert.equal(joiner.stats().selfIndex, 3);
  } finally {
    await joiner?.stop();
    await cluster.stop();
  }
});

test('reconnect: a validator stops and restarts on its port; the others redial and messages flow', async () => {
  let cluster: LocalCluster | undefined;
  let restarted: P2PNode | undefined;
  try {
    const small = { ...tuning, queues: { consensus: { maxMessages: 10, maxBytes: 1 << 20 }, txs: { maxMessages: 10, maxBytes: 1 << 20 }, sync: { maxMessages: 10, maxBytes: 1 << 20 } } };
    cluster = await startLocalCluster(4, { tuning: small });
    await waitFullMesh(cluster.nodes);
    const [a] = cluster.nodes as [P2PNode];
    const gone = cluster.nodes[3]!;
    const port = firstTcpAddress(gone).split('/')[4]!;
    await gone.stop();
    await waitFor(() => cluster!.nodes.slice(0, 3).every((n) => !n.peers()[2]!.connected), 5_000, 'the others to see it gone');
    // queued while it is away, bounded: 21 messages into a queue of 10 drop the 11 oldest
    for (let i = 0; i < 20; i++) a.send(3, 'consensus', enc(`filler ${i}`));
    a.send(3, 'consensus', enc('while you were away'));
    assert.is(a.stats().peers[2]!.dropped.consensus.queue_full, 11);
    assert.is(a.queueDepth(3, 'consensus'), 10);
    await waitFor(() => a.stats().peers[2]!.dialFailures >= 2, 5_000, 'redials to fail while it is down');

    restarted = await createP2PNode({ privateKey: cluster.keys[3]!, listen: [`/ip4/127.0.0.1/tcp/${port}`], validators: cluster.validators, tuning: small });
    const got = record(restarted, 'consensus');
    await restarted.start();
    cluster.nodes[3] = restarted;
    await waitFullMesh(cluster.nodes, 10_000);
    await waitFor(() => got.includes('0:while you were away'), 5_000, 'the queued message');
    assert.equal(got.filter((g) => g.startsWith('0:filler')), [11, 12, 13, 14, 15, 16, 17, 18, 19].map((i) => `0:filler ${i}`), 'the newest fillers, in order');
    for (let i = 0; i < 3; i++) cluster.nodes[i]!.send(3, 'consensus', enc(`after ${i}`));
    const back: string[] = [];
    for (let i = 0; i < 3; i++) cluster.nodes[i]!.onMessage('consensus', (from, b) => back.push(`${i}<-${from}:${dec(b)}`));
    restarted.broadcast('consensus', enc('I am back'));
    await waitFor(() => got.filter((g) => g.includes('after')).length === 3 && back.length === 3, 5_000, 'traffic both ways');
    const s = a.stats().peers[2]!;
    assert.ok(s.connects >= 2, `reconnected (connects ${s.connects})`);
    assert.is(s.disconnects, s.connects - 1);
  } finally {
    await restarted?.stop();
    await cluster?.stop();
  }
});

test.run();
