// The PBFT replica's rules, one at a time, on real replicas: the byte encoding, accepting and
// refusing pre-prepares, quorum counting with lazy signature checks, no second vote after a
// restart, view change and NEW-VIEW checks, timeouts doubling and resetting, the f + 1 join
// rule, catch-up by sync, validator-set changes, drop counters, and BLS certificates that
// consensus/chain/certificate.ts accepts. Votes are signed with SimVoteCrypto (a keyed MAC) except
// in the BLS test; the seeded simulator (pbft-sim.test.ts) covers randomized runs.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { verifyCertificate } from '../consensus/chain/certificate.ts';
import { Replica } from '../consensus/pbft/core.ts';
import {
  contentDigest,
  decodeMessage,
  decodeRecord,
  encodeMessage,
  encodeRecord,
  newViewSigningBytes,
  prepareSigningBytes,
  chainDigest,
  viewChangeSigningBytes,
} from '../consensus/pbft/messages.ts';
import type { Hash, Message, NewView, PersistRecord, PrePrepare, Ready, ViewChange } from '../consensus/pbft/types.ts';
import { SimKeyring, type VoteCrypto } from '../consensus/pbft/vote-crypto.ts';
import { blockHash, encodePayload } from './sim/executor.ts';
import { GENESIS, MiniCluster } from './sim/mini-cluster.ts';

const CHAIN = chainDigest('mini');
const keyring = new SimKeyring('mini', [0, 1, 2, 3, 4, 5, 6]);
const forger = SimKeyring.forger('mini', keyring.cryptoFor(0));

function block(parentHash: Hash, height: number, nonce: number): { hash: Hash; payload: Uint8Array } {
  const payload = encodePayload({ proposer: 0, view: 0, nonce, txs: [nonce], invalid: false });
  return { hash: blockHash(parentHash, height, payload), payload };
}

function prePrepare(signer: VoteCrypto, view: number, height: number, parentHash: Hash, nonce: number): PrePrepare {
  const b = block(parentHash, height, nonce);
  const digest = contentDigest(parentHash, b.payload);
  return { type: 'pre-prepare', view, height, hash: b.hash, parentHash, payload: b.payload, sig: signer.sign(prepareSigningBytes(CHAIN, view, height, b.hash, digest)) };
}

function viewChange(i: number, view: number): ViewChange {
  const vc: ViewChange = { type: 'view-change', view, replica: i, committedHeight: 0, committedHash: GENESIS, committedCert: null, prepared: [], sig: new Uint8Array(0) };
  vc.sig = keyring.cryptoFor(i).sign(viewChangeSigningBytes(CHAIN, vc));
  return vc;
}

function fresh(index: number, n = 4, records: PersistRecord[] = []): Replica {
  return new Replica(
    { index, chain: 'mini', genesisHash: GENESIS, validatorsAt: () => Array.from({ length: n }, (_, i) => i), crypto: keyring.cryptoFor(index), window: 4, baseTimeoutMs: 1000 },
    { committedHeight: 0, committedHash: GENESIS, committedCertificate: null, records },
  );
}

function msg(r: Replica, from: number, m: Message | Uint8Array, now = 0): Ready {
  return r.step({ type: 'message', from, bytes: m instanceof Uint8Array ? m : encodeMessage(m) }, now);
}

function sentOf(r: Ready, type: Message['type']): Message[] {
  return r.send.map((s) => s.msg).filter((m) => m.type === type);
}

// ---------------------------------------------------------------------------------------------

test('messages: every type round-trips through its byte encoding', () => {
  const pp = prePrepare(keyring.cryptoFor(0), 3, 7, GENESIS, 1);
  const vc = viewChange(2, 4);
  const cert = { number: 5, blockHash: pp.hash, view: 2, signers: [0, 1, 3], aggregateSignature: '0x' + 'ab'.repeat(32) };
  const vcFull: ViewChange = { ...vc, committedHeight: 5, committedHash: pp.hash, committedCert: cert, prepared: [{ view: 1, height: 6, hash: pp.hash, parentHash: GENESIS, digest: contentDigest(GENESIS, pp.payload), signers: [0, 2, 3], aggregate: new Uint8Array(32).fill(7), payload: pp.payload }] };
  const nv: NewView = { type: 'new-view', view: 4, viewChanges: [{ ...vcFull, prepared: vcFull.prepared.map((p) => ({ ...p, payload: null })) }], reproposals: [{ height: 6, hash: pp.hash, parentHash: GENESIS, payload: pp.payload }], sig: new Uint8Array(32).fill(9) };
  const all: Message[] = [
    pp,
    { type: 'prepare', view: 3, height: 7, hash: pp.hash, digest: GENESIS, sig: new Uint8Array(32).fill(1) },
    { type: 'precommit', view: 3, height: 7, hash: pp.hash },
    { type: 'commit', height: 7, hash: pp.hash, sig: new Uint8Array(32).fill(3) },
    vcFull,
    nv,
    { type: 'certificate', certificate: cert },
  ];
  for (const m of all) {
    const d = decodeMessage(encodeMessage(m));
    assert.ok(d.ok, m.type);
    if (d.ok) assert.equal(plain(d.msg), plain(m), m.type);
  }
});

test('messages: garbage, truncations and bit flips decode to an error, never a throw', () => {
  const pp = encodeMessage(prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1));
  for (let n = 0; n < pp.length; n++) assert.not.ok(decodeMessage(pp.slice(0, n)).ok, `truncated to ${n}`);
  assert.not.ok(decodeMessage(Uint8Array.from([...pp, 0])).ok, 'trailing byte');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const d = decodeMessage(bytes);
      // A random string may decode only if it is exactly a canonical encoding.
      if (d.ok) assert.equal(encodeMessage(d.msg), bytes);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.nat(pp.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const bad = Uint8Array.from(pp);
      bad[i]! ^= x;
      const d = decodeMessage(bad);
      if (d.ok) assert.equal(encodeMessage(d.msg), bad, 'a flip that decodes re-encodes to itself');
    }),
    { numRuns: 3000 },
  );
  const big = encodeMessage({ ...prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1), payload: new Uint8Array(2000) });
  assert.not.ok(decodeMessage(big, { ...decodeLimits(), maxPayloadBytes: 1000 }).ok, 'payload over the limit');
  const unsorted = encodeMessage({ type: 'certificate', certificate: { number: 1, blockHash: GENESIS, view: 0, signers: [2, 1, 3], aggregateSignature: '0x01' } });
  assert.is(decodeMessage(unsorted).ok, false, 'signers must ascend');
});

/** Byte arrays as hex, so that a Buffer and a Uint8Array holding the same bytes compare equal. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('hex') : v)));
}

function decodeLimits() {
  return { maxPayloadBytes: 1 << 20, maxMessageBytes: 32 << 20, maxSignatureBytes: 128, maxSigners: 1024, maxViewChanges: 1024, maxPrepared: 64, maxDeferredPerPeer: 32, maxViewAhead: 10_000 };
}

test('records: each kind round-trips, so a restart reads back what was written', () => {
  const pp = prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1);
  const records: PersistRecord[] = [
    { kind: 'view', view: 3, changing: true },
    { kind: 'new-view', view: 3, bytes: new Uint8Array([1, 2, 3]) },
    { kind: 'prepare', height: 4, view: 3, hash: pp.hash, digest: GENESIS },
    { kind: 'precommit', height: 4, view: 3, hash: pp.hash },
    { kind: 'prepared', height: 4, cert: { view: 3, height: 4, hash: pp.hash, parentHash: GENESIS, digest: GENESIS, signers: [0, 1, 2], aggregate: new Uint8Array(32), payload: pp.payload } },
    { kind: 'decided', height: 4, hash: pp.hash },
  ];
  for (const r of records) assert.equal(plain(decodeRecord(encodeRecord(r))), plain(r), r.kind);
});

// ---------------------------------------------------------------------------------------------

test('pre-prepare: accepted from the leader on the committed tip; refused from others, off the chain, twice, or far ahead', () => {
  const r = fresh(1);
  r.step({ type: 'start' }, 0);
  const leader = keyring.cryptoFor(0);
  const good = prePrepare(leader, 0, 1, GENESIS, 1);
  const ok = msg(r, 0, good);
  assert.equal(ok.validate.map((v) => v.hash), [good.hash], 'asks the driver to execute it');
  assert.equal(ok.dropped, []);

  const drops = (ready: Ready) => ready.dropped.map((d) => d.reason);
  assert.equal(drops(msg(fresh(1), 2, prePrepare(keyring.cryptoFor(2), 0, 1, GENESIS, 2))), ['wrong-leader']);
  assert.equal(drops(msg(fresh(1), 0, prePrepare(leader, 0, 1, good.hash, 4))), ['bad-parent'], 'height 1 must extend genesis');
  const second = msg(r, 0, prePrepare(leader, 0, 1, GENESIS, 5));
  assert.equal(drops(second), ['equivocation'], 'a second block for one (view, height)');
  assert.equal(second.validate, []);
  const far = msg(fresh(1), 0, prePrepare(leader, 50_000, 1, GENESIS, 6));
  assert.equal(far.dropped.map((d) => [d.reason, d.fault]), [['far-future', false]], 'counted, but views grow for the life of a chain: not a fault');
  assert.equal(drops(msg(fresh(1), 9, good)), ['not-validator']);
  assert.equal(drops(msg(fresh(1), 0, new Uint8Array([1, 1, 0, 0]))), ['malformed']);
  assert.equal(msg(fresh(1), 0, prePrepare(leader, 0, 9, GENESIS, 7)).dropped, [], 'beyond the window: ignored, not a fault');
  assert.is(r.dropCounters().get('0/equivocation'), 1, 'drops are counted per peer and reason');
});

test('pre-prepare: a child that arrives before its parent waits, and is executed only on top of it', () => {
  const r = fresh(2);
  const leader = keyring.cryptoFor(0);
  const p1 = prePrepare(leader, 0, 1, GENESIS, 1);
  const p2 = prePrepare(leader, 0, 2, p1.hash, 2);
  assert.equal(msg(r, 0, p2).validate, [], 'deferred: its parent is unknown');
  assert.equal(msg(r, 0, p1).validate.map((v) => v.height), [1], 'the parent first; the child waits for its state');
  const after = r.step({ type: 'validated', height: 1, hash: p1.hash, ok: true }, 0);
  assert.equal(after.validate.map((v) => v.height), [2]);
});

test('quorum: PREPAREs are checked together at quorum; a bad one is dropped and counted, and the quorum waits for a good one', () => {
  const r = fresh(1);
  const p1 = prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1);
  const digest = contentDigest(GENESIS, p1.payload);
  msg(r, 0, p1);
  const v = r.step({ type: 'validated', height: 1, hash: p1.hash, ok: true }, 0);
  assert.equal(sentOf(v, 'prepare').length, 1, 'votes once its execution matched');
  assert.equal(v.persist.map((p) => p.kind), ['prepare'], 'the vote is persisted in the same Ready, to be written before sending');
  const prep = (c: VoteCrypto) => ({ type: 'prepare' as const, view: 0, height: 1, hash: p1.hash, digest, sig: c.sign(prepareSigningBytes(CHAIN, 0, 1, p1.hash, digest)) });
  const bad = msg(r, 2, prep(forger));
  assert.equal(bad.dropped.map((d) => [d.from, d.reason]), [[2, 'bad-signature']], 'leader + self + a forged vote reach 3: checked, refused');
  assert.equal(sentOf(bad, 'precommit'), []);
  const good = msg(r, 3, prep(keyring.cryptoFor(3)));
  assert.equal(sentOf(good, 'precommit').length, 1, 'three good PREPAREs (the pre-prepare counts as the leader\'s): prepared');
  assert.equal(good.persist.map((p) => p.kind).sort(), ['precommit', 'prepared']);
});

test('quorum: a pre-prepare with a forged signature is executed (the channel says the leader sent it), but its vote fails at quorum and the replicas prepare without it', () => {
  const r = fresh(1);
  const forged = prePrepare(forger, 0, 1, GENESIS, 1);
  const digest = contentDigest(GENESIS, forged.payload);
  const accepted = msg(r, 0, forged);
  assert.equal(accepted.dropped, [], 'its signature is not checked on arrival');
  assert.equal(accepted.validate.map((v) => v.hash), [forged.hash]);
  assert.equal(sentOf(r.step({ type: 'validated', height: 1, hash: forged.hash, ok: true }, 0), 'prepare').length, 1);
  const prep = (i: number) => ({ type: 'prepare' as const, view: 0, height: 1, hash: forged.hash, digest, sig: keyring.cryptoFor(i).sign(prepareSigningBytes(CHAIN, 0, 1, forged.hash, digest)) });
  const third = msg(r, 2, prep(2));
  assert.equal(third.dropped.map((d) => [d.from, d.reason, d.fault]), [[0, 'bad-signature', true]], 'leader + self + replica 2 reach 3: the aggregate fails, one by one the leader\'s is the bad one');
  assert.equal(sentOf(third, 'precommit'), [], 'two good votes are not a quorum');
  const fourth = msg(r, 3, prep(3));
  const precommits = sentOf(fourth, 'precommit');
  assert.equal(precommits.length, 1, 'the three replicas\' PREPAREs prepare the block');
  const prepared = fourth.persist.find((p) => p.kind === 'prepared');
  assert.equal(prepared?.kind === 'prepared' && prepared.cert.signers, [1, 2, 3], 'the certificate leaves the leader out');
  assert.equal(msg(r, 0, prep(0)).dropped.map((d) => d.reason), [], 'the leader is not heard again at this (view, height): its vote there failed');
});

test('decided: a quorum of PRECOMMITs, which carry no signature (the channel authenticates them); a non-member\'s does not count, a second one for another block is equivocation', () => {
  const r = fresh(1);
  const p1 = prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1);
  const digest = contentDigest(GENESIS, p1.payload);
  msg(r, 0, p1);
  r.step({ type: 'validated', height: 1, hash: p1.hash, ok: true }, 0);
  const prepared = msg(r, 2, { type: 'prepare', view: 0, height: 1, hash: p1.hash, digest, sig: keyring.cryptoFor(2).sign(prepareSigningBytes(CHAIN, 0, 1, p1.hash, digest)) });
  assert.equal(sentOf(prepared, 'precommit'), [{ type: 'precommit', view: 0, height: 1, hash: p1.hash }]);
  const precommit = (hash: Hash) => ({ type: 'precommit' as const, view: 0, height: 1, hash });
  assert.equal(sentOf(msg(r, 9, precommit(p1.hash)), 'commit'), [], 'from a non-member: refused');
  assert.equal(sentOf(msg(r, 0, precommit(p1.hash)), 'commit'), [], 'self and the leader: two, not a quorum');
  const other = block(GENESIS, 1, 2).hash;
  assert.equal(msg(r, 0, precommit(other)).dropped.map((d) => d.reason), ['equivocation']);
  const decided = msg(r, 2, precommit(p1.hash));
  assert.equal(sentOf(decided, 'commit').map((m) => m.type === 'commit' && m.hash), [p1.hash], 'a quorum: decided, and the replica signs its COMMIT');
});

test('no double vote after a restart: the persisted vote binds the replica to its block', () => {
  const r = fresh(1);
  const leader = keyring.cryptoFor(0);
  const x = prePrepare(leader, 0, 1, GENESIS, 1);
  msg(r, 0, x);
  const voted = r.step({ type: 'validated', height: 1, hash: x.hash, ok: true }, 0);
  const records = voted.persist;
  const firstVote = sentOf(voted, 'prepare')[0]!;
  const restarted = fresh(1, 4, records);
  restarted.step({ type: 'start' }, 10);
  const y = prePrepare(leader, 0, 1, GENESIS, 2);
  const refused = msg(restarted, 0, y, 10);
  assert.equal(refused.dropped.map((d) => d.reason), ['equivocation'], 'the leader offers another block at the same (view, height)');
  assert.equal(refused.validate, []);
  const again = msg(restarted, 0, x, 10);
  assert.equal(again.validate.map((v) => v.hash), [x.hash]);
  const revote = restarted.step({ type: 'validated', height: 1, hash: x.hash, ok: true }, 10);
  assert.equal(plain(sentOf(revote, 'prepare')), plain([firstVote]), 'the same vote, byte for byte');
  assert.equal(revote.persist, [], 'nothing new to persist');
});

test('a restarted replica never goes back to a lower view', () => {
  const r = fresh(3);
  r.step({ type: 'pendingWork', pending: true }, 0);
  const vc = r.step({ type: 'timer', id: 'progress' }, 1000);
  assert.equal(vc.persist, [{ kind: 'view', view: 1, changing: true }]);
  const restarted = fresh(3, 4, vc.persist);
  assert.equal([restarted.status().view, restarted.status().changingView], [1, true]);
  const old = msg(restarted, 0, prePrepare(keyring.cryptoFor(0), 0, 1, GENESIS, 1), 1001);
  assert.equal(old.validate, [], 'a view-0 pre-prepare is stale now');
  const start = restarted.step({ type: 'start' }, 1001);
  assert.equal(sentOf(start, 'view-change').map((m) => (m as ViewChange).view), [1], 'it asks again for the view it promised');
});

// ---------------------------------------------------------------------------------------------

test('view change: a block prepared but not decided is re-proposed by the new view and committed unchanged', () => {
  const c = new MiniCluster({ n: 4, blocks: 1 });
  c.filter = (_f, _t, m) => m.type !== 'precommit';
  c.start();
  const prepared = c.nodes[0]!.sent.find((m) => m.type === 'pre-prepare') as PrePrepare;
  assert.ok(prepared, 'the leader proposed');
  assert.is(c.height(1), 0, 'no PRECOMMIT gets through: nothing decided');
  c.filter = () => true;
  c.advance(1000);
  const nv = c.nodes[1]!.sent.find((m) => m.type === 'new-view') as NewView;
  assert.ok(nv, 'the leader of view 1 sent NEW-VIEW');
  assert.equal(nv.reproposals.map((r) => r.hash), [prepared.hash], 'it re-proposes the prepared block');
  for (const n of c.nodes) assert.equal(n.chain.map((b) => b.hash), [GENESIS, prepared.hash], `node ${n.index}`);
  for (const n of c.nodes) assert.is(n.replica.status().view, 1);
});

test('view change: a NEW-VIEW with wrong re-proposals, a wrong payload or the wrong signer is refused', () => {
  const c = new MiniCluster({ n: 4, blocks: 1 });
  c.filter = (_f, to, m) => m.type !== 'precommit' && !(m.type === 'new-view' && to === 3);
  c.start();
  c.advance(1000);
  const nv = c.nodes[1]!.sent.find((m) => m.type === 'new-view') as NewView;
  assert.ok(nv.reproposals.length === 1);
  assert.is(c.nodes[3]!.replica.status().changingView, true, 'node 3 has not seen the NEW-VIEW');
  const leader = c.nodes[1]!.crypto;
  const signed = (m: NewView, by: VoteCrypto = leader): NewView => ({ ...m, sig: by.sign(newViewSigningBytes(CHAIN, m)) });
  const tampered: [string, NewView][] = [
    ['re-proposal left out', signed({ ...nv, reproposals: [] })],
    ['another payload', signed({ ...nv, reproposals: [{ ...nv.reproposals[0]!, payload: new Uint8Array([1]) }] })],
    ['another block', signed({ ...nv, reproposals: [{ ...nv.reproposals[0]!, hash: GENESIS }] })],
    ['signed by a non-leader', signed(nv, c.nodes[2]!.crypto)],
    ['too few view changes', signed({ ...nv, viewChanges: nv.viewChanges.slice(0, 2) })],
  ];
  for (const [what, bad] of tampered) {
    const r = c.deliver(3, 1, encodeMessage(bad));
    assert.equal(r.dropped.map((d) => d.reason), ['invalid-new-view'], what);
    assert.is(c.nodes[3]!.replica.status().changingView, true, what);
  }
  c.deliver(3, 2, encodeMessage(nv));
  c.run();
  assert.is(c.nodes[3]!.replica.status().view, 1, 'the genuine NEW-VIEW, even forwarded by another replica, is accepted');
  assert.is(c.nodes[3]!.replica.status().changingView, false);
});

test('timeouts double while views fail (a dead new leader moves on to the next view) and reset after a commit', () => {
  const c = new MiniCluster({ n: 7, baseTimeoutMs: 1000, blocks: 1 });
  c.nodes[0]!.down = true;
  c.nodes[1]!.down = true;
  c.start();
  assert.is(c.nodes[2]!.timers.get('progress'), 1000, 'pending work arms the base timeout');
  c.advance(1000);
  for (const i of [2, 3, 4, 5, 6]) assert.equal([c.nodes[i]!.replica.status().view, c.nodes[i]!.replica.status().changingView], [1, true]);
  assert.is(c.nodes[2]!.timers.get('progress'), 3000, 'a quorum asked for view 1: its timer runs, doubled');
  c.advance(3000);
  const s = c.nodes[3]!.replica.status();
  assert.equal([s.view, s.changingView], [2, false], 'leader 1 is dead: view 2, whose leader (2) is alive');
  const armed = c.nodes[3]!.readies.flatMap((r) => r.timers).filter((t) => t.id === 'progress').map((t) => t.at);
  assert.equal(armed, [1000, 3000, 7000, 4000], 'base; 2x for view 1; 4x for view 2; base again from the commit at 3000');
  assert.is(c.height(3), 1, 'and the new view commits');
  assert.is(c.nodes[3]!.replica.status().failedViews, 0, 'a commit resets the failures');
  assert.is(c.nodes[3]!.replica.status().timeoutMs, 1000);
});

test('progress timer: a new-height PRE-PREPARE from the leader starts it over, at most up to the window', () => {
  const r = fresh(1);
  const leader = keyring.cryptoFor(0);
  const progressAt = (ready: Ready) => ready.timers.find((t) => t.id === 'progress')?.at;
  r.step({ type: 'start' }, 0);
  assert.is(progressAt(r.step({ type: 'pendingWork', pending: true }, 0)), 1000, 'pending work arms the timer');
  let parent = GENESIS;
  // The leader proposes heights 1..4 (the window), 900 ms apart: each one starts the timer over,
  // so the replica stays in view 0 although nothing is decided for 3.6 s.
  for (let h = 1; h <= 4; h++) {
    const pp = prePrepare(leader, 0, h, parent, h);
    const ready = msg(r, 0, pp, h * 900);
    assert.is(progressAt(ready), h * 900 + 1000, `height ${h} restarts the timer`);
    if (h === 1) r.step({ type: 'validated', height: 1, hash: pp.hash, ok: true }, h * 900);
    parent = pp.hash;
  }
  assert.is(r.status().view, 0);
  // The same height again (a retransmission) and a height beyond the window restart nothing: a
  // leader whose blocks never decide gains at most `window` restarts.
  assert.is(progressAt(msg(r, 0, prePrepare(leader, 0, 4, parent, 99), 3700)), undefined, 'a second block at a height: nothing');
  assert.is(progressAt(msg(r, 0, prePrepare(leader, 0, 5, parent, 5), 3800)), undefined, 'beyond the window: nothing');
  r.step({ type: 'timer', id: 'progress' }, 4600);
  assert.equal([r.status().view, r.status().changingView], [1, true], 'and the timer then runs out');
});

test('join: one replica asking for a higher view drags no one; f + 1 do', () => {
  const r = fresh(3);
  assert.equal(sentOf(msg(r, 1, viewChange(1, 5)), 'view-change'), [], 'f = 1: one is not enough');
  const joined = msg(r, 2, viewChange(2, 5));
  assert.equal(sentOf(joined, 'view-change').map((m) => (m as ViewChange).view), [5], 'two (f + 1) include an honest one');
  assert.is(r.status().view, 5);
});

test('a replica far behind in views (a new validator, years later) enters a valid NEW-VIEW at any distance', () => {
  const view = 20_000;
  const vcs = [0, 1, 2].map((i) => ({ ...viewChange(i, view) }));
  const nv: NewView = { type: 'new-view', view, viewChanges: vcs, reproposals: [], sig: new Uint8Array(0) };
  nv.sig = keyring.cryptoFor(view % 4).sign(newViewSigningBytes(CHAIN, nv));
  const r = fresh(3);
  const ready = msg(r, 1, nv);
  assert.equal(ready.dropped, []);
  assert.equal([r.status().view, r.status().changingView], [view, false]);
  assert.equal(ready.persist.map((p) => p.kind), ['new-view', 'view'], 'the view it entered, and the NEW-VIEW that binds it, are persisted');
});

test('catch-up: a replica that was away syncs, then takes part again', () => {
  const c = new MiniCluster({ n: 4, blocks: 40, window: 2 });
  c.nodes[3]!.down = true;
  c.start();
  assert.ok(c.height(0) >= 30, `the others go on (height ${c.height(0)})`);
  c.nodes[3]!.down = false;
  c.step(3, { type: 'pendingWork', pending: true });
  c.advance(1000);
  assert.ok(c.nodes[3]!.syncs.length > 0, 'it learns it is behind and asks the driver to sync');
  for (let h = 1; h <= c.height(0); h++) {
    const b = c.nodes[0]!.chain[h]!;
    c.step(3, { type: 'syncedCommit', height: h, hash: b.hash, parentHash: c.nodes[0]!.chain[h - 1]!.hash, certificate: b.certificate! });
    c.nodes[3]!.chain.push(b);
  }
  c.run();
  assert.is(c.nodes[3]!.replica.status().committedHeight, c.height(0));
  c.nodes[0]!.down = true;
  c.opts.blocks = 80;
  const before = c.height(1);
  c.advance(60_000);
  assert.ok(c.height(1) > before, 'with node 0 gone, node 3 is needed for a quorum: it votes again');
  assert.equal(c.nodes[3]!.chain.map((b) => b.hash), c.nodes[1]!.chain.slice(0, c.height(3) + 1).map((b) => b.hash));
});

test('validator sets: a joining validator stays silent until its first height, a leaving one after its last', () => {
  const c = new MiniCluster({ n: 5, blocks: 12, validatorsAt: (h) => (h < 4 ? [0, 1, 2, 3] : [1, 2, 3, 4]) });
  c.start();
  c.advance(20_000);
  for (const n of c.nodes) assert.ok(n.chain.length - 1 >= 10, `node ${n.index} follows the chain (height ${n.chain.length - 1})`);
  for (const n of c.nodes) assert.equal(n.chain.map((b) => b.hash), c.nodes[1]!.chain.slice(0, n.chain.length).map((b) => b.hash));
  for (const n of c.nodes) assert.equal(n.drops.filter((d) => d.fault), [], `node ${n.index} saw no faults`);
  const signersAt = (h: number) => c.nodes[1]!.chain[h]!.certificate!.signers;
  assert.ok(signersAt(3).every((s) => s <= 3) && signersAt(5).every((s) => s >= 1), 'each block is signed by its own set');
  assert.ok(c.nodes[4]!.sent.some((m) => m.type === 'prepare'), 'the new validator votes');
});

test('certificates prove a hash, not a height: a renumbered one only asks for a sync; a false committed claim is refused', () => {
  const c = new MiniCluster({ n: 4, blocks: 2 });
  c.start();
  const [, b1, b2] = c.nodes[0]!.chain;
  assert.ok(b1 && b2, 'two certified blocks to lie with');
  const r = fresh(3);
  r.step({ type: 'start' }, 0);
  const lie = msg(r, 1, { type: 'certificate', certificate: { ...b1.certificate!, number: 2 } });
  assert.equal(lie.dropped, [], 'the aggregate is genuine');
  assert.equal(lie.commit, []);
  assert.ok(lie.sync && lie.sync.targetHeight >= 1, 'it is only a reason to fetch blocks, whose headers the driver checks');
  // The genuine block 1, executed at height 1: now its certificate's height is known.
  const pp = c.nodes[0]!.sent.find((m) => m.type === 'pre-prepare' && m.height === 1) as PrePrepare;
  msg(r, 0, pp);
  r.step({ type: 'validated', height: 1, hash: pp.hash, ok: true }, 0);
  const real = msg(r, 1, { type: 'certificate', certificate: b1.certificate! });
  assert.equal(real.commit.map((x) => [x.height, x.hash]), [[1, b1.hash]]);
  // A VIEW-CHANGE claiming block 2 was committed at height 1 (its certificate renumbered).
  const vc: ViewChange = { type: 'view-change', view: 1, replica: 2, committedHeight: 1, committedHash: b2.hash, committedCert: { ...b2.certificate!, number: 1 }, prepared: [], sig: new Uint8Array(0) };
  vc.sig = keyring.cryptoFor(2).sign(viewChangeSigningBytes(CHAIN, vc));
  assert.equal(msg(r, 2, vc).dropped.map((d) => d.reason), ['invalid-view-change']);
});

test('BLS: the commit certificates the replicas produce verify with consensus/chain/certificate.ts', () => {
  const c = new MiniCluster({ n: 4, crypto: 'bls', blocks: 3 });
  c.start();
  assert.ok(c.height(0) >= 3);
  for (const b of c.nodes[2]!.chain.slice(1)) {
    const cert = b.certificate!;
    assert.equal(verifyCertificate(cert, b.hash, c.validators), { ok: true });
    assert.equal(cert.signers, [...cert.signers].sort((x, y) => x - y));
    assert.is(cert.aggregateSignature.length, 2 + 96 * 2);
    assert.is(verifyCertificate({ ...cert, blockHash: GENESIS }, GENESIS, c.validators).ok, false, 'and it is bound to its block');
  }
});

test.run();
