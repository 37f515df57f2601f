// Vouched transactions (cluster/vouching.ts) against a validator that lies. Three honest
// validators run as real processes; the fourth validator's identity is held by this test as a
// plain libp2p node (no p2p/ code) listening where the others dial it. It gossips a valid
// transaction and a forged one (a flipped signature) on the `txs` channel, as if it had
// verified both. The valid one must commit everywhere: a designated honest validator verifies
// it and vouches for it (its hash), the other two admit it on the two vouchers. The forged one must never
// commit: the designated validator refuses it at once, the other two hold it unverified for
// 4 s (its vouchers never come), verify it with idle workers and drop it; each of them
// penalises the liar. Then a vouch that comes before its transaction is kept and counted, and
// the leader keeps a client's transaction out of its proposals until its vouch comes.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseNodeKeyFile, NODE_KEY_FILE } from '../cluster/keys.ts';
import { portsOf } from '../cluster/init.ts';
import { designatedVerifiers } from '../cluster/vouching.ts';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { randomNonce } from '../rpc/client.ts';
import { encodeFrames } from '../p2p/framing.ts';
import { protocolId } from '../p2p/node.ts';
import { CHANNELS } from '../p2p/types.ts';
import { encodeTxBatch, encodeVouchBatch } from '../p2p/tx-gossip.ts';
import { buildTx } from '../state/tx.ts';
import { LocalCluster, sleep, waitCommittedOn, type ClusterNode } from './fixtures/cluster-process.ts';

const BASE_PORT = 29000;
const LIAR = 3;

async function metric(node: ClusterNode, line: RegExp): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  for (const l of text.split('\n')) if (line.test(l)) return Number(l.trim().split(/\s+/).pop());
  return 0;
}

test('a validator gossiping a forged transaction: it never commits, every honest node drops it and penalises the liar; its valid one commits; its vouch ahead of a transaction counts', async () => {
  const cluster = await LocalCluster.init({ nodes: 4, basePort: BASE_PORT, machine: 'goodness' });
  let liar: Libp2p | null = null;
  try {
    const honest = cluster.nodes.slice(0, LIAR);
    const keys = parseNodeKeyFile(JSON.parse(readFileSync(join(cluster.node(LIAR).dir, NODE_KEY_FILE), 'utf8')));
    const prefix = `/goodness/${cluster.genesis.chain}`;
    liar = await createLibp2p({
      privateKey: keys.peerPrivateKey,
      addresses: { listen: [`/ip4/127.0.0.1/tcp/${portsOf(BASE_PORT, LIAR).p2p}`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
    // The honest nodes open their one-way streams to it; it reads nothing and votes for nothing.
    for (const channel of CHANNELS) await liar.handle(protocolId(prefix, channel), () => {});
    await Promise.all(honest.map((n) => n.start()));

    const chain = cluster.genesis.chain;
    const expires = (await honest[0]!.client.getBlockNumber()) + 500;
    const valid = buildTx(new Ed25519Signer(ed25519Keygen().secretKey), { chain, type: 'account.open', body: {}, nonce: randomNonce(), expires });
    const signed = buildTx(new Ed25519Signer(ed25519Keygen().secretKey), { chain, type: 'account.open', body: {}, nonce: randomNonce(), expires });
    const sig = signed.envelope.sig;
    const forgedBytes = new TextEncoder().encode(new TextDecoder().decode(signed.bytes).replace(sig, (sig[0] === '0' ? '1' : '0') + sig.slice(1)));
    const forgedHash = '0x' + Buffer.from(await crypto.subtle.digest('SHA-256', forgedBytes)).toString('hex');

    // On the connections the honest nodes dialled (a second one, dialled from here, may be the
    // duplicate a node closes), all at once, as gossip would.
    const peerIds = honest.map((n) => parseNodeKeyFile(JSON.parse(readFileSync(join(n.dir, NODE_KEY_FILE), 'utf8'))).peerId);
    const sendOnTxs = (body: Uint8Array, to: ClusterNode[]) =>
      Promise.all(
        to.map(async (node) => {
          const peerId = peerIds[honest.indexOf(node)]!;
          for (let attempt = 1; ; attempt++) {
            try {
              const conn = liar!.getConnections().find((c) => c.remotePeer.toString() === peerId && c.status === 'open');
              if (!conn) throw new Error(`${node.name} has not dialled the liar yet`);
              const stream = await conn.newStream(protocolId(prefix, 'txs'));
              stream.send(encodeFrames([[body]]));
              // Closed once written: a node takes two inbound streams per protocol from a peer, and
              // this sends three times; left open, a later send could find its stream refused.
              await stream.close();
              return;
            } catch (err) {
              if (attempt === 50) throw err;
              await sleep(200);
            }
          }
        }),
      );
    await sendOnTxs(encodeTxBatch([forgedBytes, valid.bytes]), honest);

    await waitCommittedOn(honest, valid.hash, 30_000);
    const designated = designatedVerifiers(forgedHash, LIAR, [0, 1, 2, 3]);
    assert.is(designated.length, 1);
    // The others drop it 4 s later, with idle workers: wait for the count.
    const deadline = Date.now() + 15_000;
    for (const n of honest) {
      if (designated.includes(n.index)) continue;
      while ((await metric(n, /^goodness_tx_admissions_total\{result="vouched-bad-signature"\}/)) < 1) {
        if (Date.now() > deadline) assert.unreachable(`${n.name} still holds the forged transaction`);
        await sleep(100);
      }
    }
    for (const n of honest) {
      const refused = await metric(n, /^goodness_tx_admissions_total\{result="refused"\}/);
      const dropped = await metric(n, /^goodness_tx_admissions_total\{result="vouched-bad-signature"\}/);
      if (designated.includes(n.index)) assert.equal([refused, dropped], [1, 0], `${n.name} verified it at admission and refused it`);
      else assert.equal([refused, dropped], [0, 1], `${n.name} admitted it unverified, then dropped it`);
      assert.ok((await metric(n, new RegExp(`^goodness_p2p_peer_score\\{peer="${LIAR}"\\}`))) < 100, `${n.name} penalised the liar`);
      // Why each checked the forged one (goodness_signature_check_requests_total): the designated
      // one at admission; another when its workers were idle, or as the leader, whose wait for
      // vouchers (2 s) ends before the idle one (4 s).
      const reasons = designated.includes(n.index) ? ['designated'] : ['idle', 'vouchers-late'];
      let checks = 0;
      for (const reason of reasons) checks += await metric(n, new RegExp(`^goodness_signature_check_requests_total\\{reason="${reason}"\\}`));
      assert.ok(checks >= 1, `${n.name} counts a check as ${reasons.join(' or ')}`);
      assert.is(await metric(n, /^goodness_pool_transactions /), 0, `${n.name}'s pool is empty`);
    }
    // The valid one was verified by its designated validator only; the other two took it on vouchers.
    const designatedForValid = designatedVerifiers(valid.hash, LIAR, [0, 1, 2, 3]);
    for (const n of honest) {
      if (designatedForValid.includes(n.index)) continue;
      assert.ok((await metric(n, /^goodness_tx_vouched_total /)) >= 1, `${n.name} took the valid transaction on two validators' word`);
    }
    // A vouch before its transaction: the fourth validator, here designated to verify a client's
    // transaction that node0 admits, vouches for it before node0 has even been given it. The
    // other two keep the vouch, and when node0's gossip brings the transaction they take it on
    // node0's word and this vouch, without a check of their own.
    // A client's transaction whose designated verifier, when `entry` gossips it, is the fourth validator.
    const designatingLiar = (entry: ClusterNode) => {
      for (;;) {
        const tx = buildTx(new Ed25519Signer(ed25519Keygen().secretKey), { chain, type: 'account.open', body: {}, nonce: randomNonce(), expires });
        if (designatedVerifiers(tx.hash, entry.index, [0, 1, 2, 3])[0] === LIAR) return tx;
      }
    };
    const entry = honest[0]!;
    const early = designatingLiar(entry);
    const others = honest.filter((n) => n !== entry);
    const vouchedBefore = await Promise.all(others.map((n) => metric(n, /^goodness_tx_vouched_total /)));
    await sendOnTxs(encodeVouchBatch([Buffer.from(early.hash.slice(2), 'hex')]), others);
    await sleep(500);
    await entry.client.sendTransaction('0x' + Buffer.from(early.bytes).toString('hex'));
    await waitCommittedOn(honest, early.hash, 30_000);
    for (const [i, n] of others.entries()) {
      assert.is(await metric(n, /^goodness_tx_vouched_total /), vouchedBefore[i]! + 1, `${n.name} took it on the early vouch and its entry's copy`);
    }

    // A client's transaction at the leader whose designated verifier is the fourth validator,
    // silent for now: the leader keeps it out of its proposals (proposed at once, the other two
    // would each verify it, the leader counting once as sender and as proposer). Idle, the
    // cluster would commit it within a few hundred milliseconds otherwise. The vouch lets it in.
    const leaderIndex = (await honest[0]!.client.getConsensusStatus()).leader;
    const leader = honest.find((n) => n.index === leaderIndex);
    assert.ok(leader, `an honest validator leads (leader ${leaderIndex})`);
    const held = designatingLiar(leader);
    await leader.client.sendTransaction('0x' + Buffer.from(held.bytes).toString('hex'));
    await sleep(700);
    for (const n of honest) assert.is(await n.client.getTransactionReceipt(held.hash), null, `${n.name}: the leader holds it while its vouch is missing`);
    await sendOnTxs(encodeVouchBatch([Buffer.from(held.hash.slice(2), 'hex')]), honest);
    await waitCommittedOn(honest, held.hash, 30_000);

    // A block later it is still nowhere.
    const later = buildTx(new Ed25519Signer(ed25519Keygen().secretKey), { chain, type: 'account.open', body: {}, nonce: randomNonce(), expires });
    await honest[1]!.client.sendTransaction('0x' + Buffer.from(later.bytes).toString('hex'));
    await waitCommittedOn(honest, later.hash, 30_000);
    for (const n of honest) assert.is(await n.client.getTransactionReceipt(forgedHash), null, `${n.name} has no receipt for the forged transaction`);
  } finally {
    await liar?.stop();
    await cluster.cleanup();
  }
});

test.run();
