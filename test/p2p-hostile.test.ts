// Hostile peers against a real libp2p validator: a non-validator identity, raw TCP garbage,
// and a peer holding a validator's key that writes malformed, oversized, half-finished and
// unsolicited frames. The receiver must not crash, must count each event, must score the peer
// down, ban it below the threshold for the cool-down, then let it back in.
// The attacker is a plain libp2p node (same transports, no p2p/ code) so it can write anything.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrames, frameHeader } from '../p2p/framing.ts';
import { protocolId, type P2PNode } from '../p2p/node.ts';
import type { Channel } from '../p2p/types.ts';
import { DEFAULT_SCORE_OPTIONS } from '../p2p/score.ts';
import { firstTcpAddress, generateKeys, startLocalCluster, waitFor, waitFullMesh } from '../p2p/testing.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const proto = (channel: Channel) => protocolId('/goodness', channel);

function rawNode(privateKey: PrivateKey): Promise<Libp2p> {
  return createLibp2p({ privateKey, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] });
}

async function rawStream(raw: Libp2p, victim: P2PNode, channel: Channel): Promise<Stream> {
  const conn = await raw.dial(multiaddr(firstTcpAddress(victim)));
  return conn.newStream(proto(channel));
}

function closed(stream: Stream): Promise<void> {
  return waitFor(() => stream.status !== 'open', 3_000, `the ${stream.protocol} stream to be reset`);
}

test('a non-validator identity is refused after the handshake and counted; validators are unaffected', async () => {
  const cluster = await startLocalCluster(2);
  const [stranger] = await generateKeys(1);
  const raw = await rawNode(stranger!);
  try {
    await waitFullMesh(cluster.nodes);
    const [victim, honest] = cluster.nodes as [P2PNode, P2PNode];
    // The dialer may see its side of the upgrade complete (Noise carries the muxer choice in its
    // handshake) before the victim's gater refuses and resets the connection.
    await raw.dial(multiaddr(firstTcpAddress(victim))).catch((e: Error) => e);
    const strangerId = peerIdFromPrivateKey(stranger!).toString();
    await waitFor(() => victim.stats().refused.connections.not_validator === 1, 3_000, 'the refusal to be counted');
    assert.is(victim.stats().refusedPeers[strangerId], 1);
    await waitFor(() => raw.getConnections().length === 0, 3_000, 'the stranger to be disconnected');
    // and a stream it manages to open in that window reaches no handler
    const late = await raw
      .dial(multiaddr(firstTcpAddress(victim)))
      .then((conn) => conn.newStream(proto('consensus')))
      .then((stream) => (stream.send(encodeFrames([[enc('hi')]])), stream))
      .catch((e: Error) => e);
    if (!(late instanceof Error)) await closed(late);
    assert.equal(victim.stats().peers.map((p) => p.received.consensus.msgs), [0]);
    const got: string[] = [];
    victim.onMessage('consensus', (from) => got.push(String(from)));
    honest.send(0, 'consensus', enc('still fine'));
    await waitFor(() => got.length === 1, 3_000, 'honest traffic');
  } finally {
    await raw.stop();
    await cluster.stop();
  }
});

test('garbage on raw TCP connections is counted as failed handshakes; the node keeps working', async () => {
  const cluster = await startLocalCluster(2);
  try {
    await waitFullMesh(cluster.nodes);
    const [victim, honest] = cluster.nodes as [P2PNode, P2PNode];
    const port = Number(firstTcpAddress(victim).split('/')[4]);
    const payloads = [randomBytes(4096), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('\x13/multistream/1.0.0\n\xff\xff\xff\xff\x0f garbage')];
    await Promise.all(
      payloads.map(
        (payload) =>
          new Promise<void>((resolve) => {
            const socket = connect(port, '127.0.0.1', () => socket.end(payload));
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.resume();
          }),
      ),
    );
    await waitFor(() => victim.stats().inboundHandshakeFailures === payloads.length, 5_000, 'three failed handshakes');
    const got: string[] = [];
    victim.onMessage('txs', (from) => got.push(String(from)));
    honest.send(0, 'txs', enc('batch'));
    await waitFor(() => got.length === 1, 3_000, 'honest traffic after the garbage');
    assert.ok(victim.peers()[0]!.connected);
  } finally {
    await cluster.stop();
  }
});

test('a validator speaking an older consensus wire version cannot open the channel (PRECOMMITs changed encoding in 2.0.0)', async () => {
  const keys = await generateKeys(3);
  const cluster = await startLocalCluster(2, {}, keys.slice(0, 2));
  const oldKey = keys[2]!;
  const raw = await rawNode(oldKey);
  try {
    await waitFullMesh(cluster.nodes);
    const [victim] = cluster.nodes as [P2PNode, P2PNode];
    victim.setValidators([...cluster.validators, { index: 2, peerId: peerIdFromPrivateKey(oldKey).toString() }]);
    const conn = await raw.dial(multiaddr(firstTcpAddress(victim)));
    const old = await conn.newStream('/goodness/consensus/1.0.0').then(() => null, (e: Error) => e);
    assert.ok(old instanceof Error, 'the 1.0.0 consensus protocol is not offered');
    const current = await conn.newStream(proto('consensus'));
    assert.is(current.protocol, '/goodness/consensus/2.0.0');
    current.send(encodeFrames([[enc('a vote')]]));
    await waitFor(() => victim.stats().peers.find((p) => p.index === 2)?.received.consensus.msgs === 1, 3_000, 'the frame on the current version');
  } finally {
    await raw.stop();
    await cluster.stop();
  }
});

test('a validator writing bad frames is faulted per reason, scored down, banned for the cool-down, then let back', async () => {
  const coolDownMs = 1_500;
  const keys = await generateKeys(3);
  const cluster = await startLocalCluster(2, { tuning: { frameReadTimeoutMs: 300, score: { ...DEFAULT_SCORE_OPTIONS, coolDownMs, recoveryPerSecond: 0 } } }, keys.slice(0, 2));
  const rogueKey = keys[2]!;
  const rogueId = peerIdFromPrivateKey(rogueKey).toString();
  const raw = await rawNode(rogueKey);
  try {
    await waitFullMesh(cluster.nodes);
    const [victim, honest] = cluster.nodes as [P2PNode, P2PNode];
    // validator 2 is in the victim's set without an address: it only accepts its dials
    victim.setValidators([...cluster.validators, { index: 2, peerId: rogueId }]);
    const peer2 = () => victim.stats().peers.find((p) => p.index === 2)!;

    // 1. writing back on the victim's one-way stream: unexpected_data (-30)
    // (only on the first stream: the victim reopens at once and would otherwise fault again)
    let talkedBack = false;
    await raw.handle(proto('consensus'), (stream) => {
      if (!talkedBack) stream.send(enc('I talk back'));
      talkedBack = true;
    });
    await raw.dial(multiaddr(firstTcpAddress(victim)));
    await waitFor(() => victim.isConnected(2), 3_000, 'the rogue validator to connect');
    assert.ok(victim.send(2, 'consensus', enc('vote')));
    await waitFor(() => peer2().faults.consensus.unexpected_data === 1, 3_000, 'unexpected_data');
    assert.is(peer2().score, 70);
    await waitFor(() => peer2().sent.consensus.msgs === 1, 3_000, 'the vote to go out on a new stream');

    // 2. a sync frame too short for its header: malformed_frame (-30), stream reset
    const sync = await rawStream(raw, victim, 'sync');
    sync.send(encodeFrames([[new Uint8Array([1, 0])]]));
    await closed(sync);
    assert.is(peer2().faults.sync.malformed_frame, 1);
    assert.is(peer2().score, 40);

    // 3. a frame begun and never finished: read_timeout (-10)
    const txs = await rawStream(raw, victim, 'txs');
    txs.send(frameHeader(100));
    txs.send(new Uint8Array(10));
    await closed(txs);
    assert.is(peer2().faults.txs.read_timeout, 1);
    assert.is(peer2().score, 30);

    // 4. the caller's own complaint (a vote with a bad signature) also counts, by its reason
    victim.penalize(2, 'bad_vote_signature');
    assert.is(peer2().faults.app.bad_vote_signature, 1);
    assert.is(peer2().score, 20);

    // 5. HTTP on a consensus stream reads as a 1.2 GB length: oversized_frame (-40) -> banned
    const consensus = await rawStream(raw, victim, 'consensus');
    consensus.send(enc('GET / HTTP/1.1\r\n\r\n'));
    await closed(consensus);
    assert.is(peer2().faults.consensus.oversized_frame, 1);
    assert.is(peer2().bans, 1);
    assert.ok(peer2().bannedUntil! > Date.now());
    await waitFor(() => raw.getConnections().length === 0 && !victim.isConnected(2), 3_000, 'the rogue to be disconnected');
    assert.not.ok(victim.send(2, 'consensus', enc('x')), 'nothing is queued for a banned peer');
    assert.is(peer2().dropped.consensus.peer_banned, 1);

    // while banned, its dials are refused after the handshake
    await raw.dial(multiaddr(firstTcpAddress(victim))).catch((e: Error) => e);
    await waitFor(() => (victim.stats().refused.connections.banned ?? 0) >= 1, 3_000, 'a refusal while banned');
    await waitFor(() => raw.getConnections().length === 0, 3_000, 'the refused connection to close');
    assert.not.ok(victim.isConnected(2));

    // the honest validator never noticed
    const got: string[] = [];
    victim.onMessage('consensus', (from, bytes) => got.push(`${from}:${new TextDecoder().decode(bytes)}`));
    honest.send(0, 'consensus', enc('hello'));
    await waitFor(() => got.includes('1:hello'), 3_000, 'honest traffic during the ban');
    assert.is(victim.stats().peers.find((p) => p.index === 1)!.score, 100);

    // after the cool-down it is back with a fresh score, and a good frame is delivered
    await new Promise((r) => setTimeout(r, coolDownMs));
    const again = await rawStream(raw, victim, 'consensus');
    again.send(encodeFrames([[enc('sorry')]]));
    await waitFor(() => got.includes('2:sorry'), 3_000, 'a good frame after the cool-down');
    assert.is(peer2().score, 100);
    assert.is(peer2().bannedUntil, null);
  } finally {
    await raw.stop();
    await cluster.stop();
  }
});

test.run();
