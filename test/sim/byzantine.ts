// Byzantine behaviours as swappable functions (after CometBFT's byzantine_test.go). A Byzantine
// node runs the real core; its behaviour rewrites what the core sends and adds messages of its
// own on a tick. It signs only with its own key: it can replay what it saw, not forge others.
import { to0x } from '../../consensus/crypto/encoding.ts';
import {
  commitSigningBytes,
  contentDigest,
  decodeMessage,
  encodeMessage,
  prepareSigningBytes,
  viewChangeSigningBytes,
} from '../../consensus/pbft/messages.ts';
import type { CommitCertificate, Hash, Message, PrePrepare, ViewChange } from '../../consensus/pbft/types.ts';
import type { VoteCrypto } from '../../consensus/pbft/vote-crypto.ts';
import { blockHash, decodePayload, encodePayload } from './executor.ts';
import type { Prng } from './prng.ts';

export interface Packet {
  to: number;
  bytes: Uint8Array;
}

export interface ByzContext {
  index: number;
  /** every other node */
  peers: number[];
  prng: Prng;
  crypto: VoteCrypto;
  /** a key no validator holds */
  forger: VoteCrypto;
  chainTag: Uint8Array;
  view(): number;
  committedHeight(): number;
  tip(): { height: number; hash: Hash; certificate: CommitCertificate | null };
  /** messages this node received or sent, newest last (bounded) */
  seen: Uint8Array[];
}

export interface Behaviour {
  name: BehaviourName;
  /** rewrite one message the core sends to `to` */
  outgoing?(ctx: ByzContext, to: number[], msg: Message, bytes: Uint8Array): Packet[];
  /** extra messages, every tick */
  tick?(ctx: ByzContext): Packet[];
  /** its blocks fail execution everywhere else */
  invalidBlocks?: boolean;
}

export type BehaviourName = 'equivocate' | 'conflicting-votes' | 'forge' | 'replay' | 'garbage' | 'view-change-spam' | 'invalid-blocks' | 'silent' | 'partial-leader' | 'lies';

export const BEHAVIOURS: BehaviourName[] = ['equivocate', 'conflicting-votes', 'forge', 'replay', 'garbage', 'view-change-spam', 'invalid-blocks', 'silent', 'partial-leader', 'lies'];

function all(to: number[], bytes: Uint8Array): Packet[] {
  return to.map((t) => ({ to: t, bytes }));
}

function randomHash(prng: Prng): Hash {
  return to0x(prng.bytes(32));
}

function halves(prng: Prng, to: number[]): [number[], number[]] {
  const s = prng.shuffle(to);
  const k = Math.ceil(s.length / 2);
  return [s.slice(0, k), s.slice(k)];
}

/** Signs a vote of the same kind as `msg` for another hash (a real signature, with its own key). */
function conflictingVote(ctx: ByzContext, msg: Message, hash: Hash, digest?: Hash): Message | null {
  switch (msg.type) {
    case 'prepare': {
      const d = digest ?? randomHash(ctx.prng);
      return { type: 'prepare', view: msg.view, height: msg.height, hash, digest: d, sig: ctx.crypto.sign(prepareSigningBytes(ctx.chainTag, msg.view, msg.height, hash, d)) };
    }
    case 'precommit':
      return { type: 'precommit', view: msg.view, height: msg.height, hash };
    case 'commit':
      return { type: 'commit', height: msg.height, hash, sig: ctx.crypto.sign(commitSigningBytes(hash)) };
    default:
      return null;
  }
}

/** An equivocating leader: a second valid block for each height, one to each half of the peers, and votes for both. */
function equivocate(): Behaviour {
  const alt = new Map<string, { pp: PrePrepare; side: Set<number> }>();
  return {
    name: 'equivocate',
    outgoing(ctx, to, msg, bytes) {
      if (msg.type === 'pre-prepare') {
        const p = decodePayload(msg.payload);
        if (!p) return all(to, bytes);
        // The second block extends the second block below it when there is one, so the split persists.
        const below = alt.get(`${msg.view}/${msg.height - 1}`);
        const parentHash = below ? below.pp.hash : msg.parentHash;
        const payload = encodePayload({ ...p, nonce: p.nonce + 1 });
        const hash = blockHash(parentHash, msg.height, payload);
        const digest = contentDigest(parentHash, payload);
        const pp: PrePrepare = { type: 'pre-prepare', view: msg.view, height: msg.height, hash, parentHash, payload, sig: ctx.crypto.sign(prepareSigningBytes(ctx.chainTag, msg.view, msg.height, hash, digest)) };
        const [a, b] = halves(ctx.prng, to);
        alt.set(`${msg.view}/${msg.height}`, { pp, side: new Set(b) });
        if (alt.size > 64) alt.delete(alt.keys().next().value!);
        return [...all(a, bytes), ...all(b, encodeMessage(pp))];
      }
      if (msg.type === 'prepare' || msg.type === 'precommit') {
        const e = alt.get(`${msg.view}/${msg.height}`);
        if (!e) return all(to, bytes);
        const other = conflictingVote(ctx, msg, e.pp.hash, contentDigest(e.pp.parentHash, e.pp.payload))!;
        return to.map((t) => ({ to: t, bytes: e.side.has(t) ? encodeMessage(other) : bytes }));
      }
      return all(to, bytes);
    },
  };
}

/** Votes for its block to half the peers and for a random block to the other half. */
function conflictingVotes(): Behaviour {
  return {
    name: 'conflicting-votes',
    outgoing(ctx, to, msg, bytes) {
      const other = conflictingVote(ctx, msg, randomHash(ctx.prng));
      if (!other) return all(to, bytes);
      const [a, b] = halves(ctx.prng, to);
      return [...all(a, bytes), ...all(b, encodeMessage(other))];
    },
  };
}

/** Votes signed with a key no validator holds, forged certificates and view changes. */
function forge(): Behaviour {
  return {
    name: 'forge',
    outgoing(ctx, to, msg, bytes) {
      if (!ctx.prng.chance(0.5)) return all(to, bytes);
      const forged = withForgedSignature(ctx, msg);
      return forged ? all(to, encodeMessage(forged)) : all(to, bytes);
    },
    tick(ctx) {
      const h = ctx.committedHeight() + 1 + ctx.prng.int(3);
      const signers = ctx.peers.slice(0, Math.max(1, ctx.peers.length - 1)).sort((a, b) => a - b);
      const cert: CommitCertificate = { number: h, blockHash: randomHash(ctx.prng), view: ctx.view(), signers, aggregateSignature: to0x(ctx.prng.bytes(32)) };
      const tip = ctx.tip();
      const vc: ViewChange = {
        type: 'view-change',
        view: ctx.view() + 1,
        replica: ctx.index,
        committedHeight: tip.height,
        committedHash: tip.hash,
        committedCert: tip.certificate,
        prepared: [{ view: ctx.view(), height: tip.height + 1, hash: randomHash(ctx.prng), parentHash: tip.hash, digest: contentDigest(tip.hash, new Uint8Array(1)), signers, aggregate: ctx.prng.bytes(32), payload: new Uint8Array(1) }],
        sig: new Uint8Array(0),
      };
      vc.sig = ctx.crypto.sign(viewChangeSigningBytes(ctx.chainTag, vc));
      const target = ctx.prng.pick(ctx.peers);
      return [
        { to: target, bytes: encodeMessage({ type: 'certificate', certificate: cert }) },
        { to: target, bytes: encodeMessage(vc) },
      ];
    },
  };
}

function withForgedSignature(ctx: ByzContext, msg: Message): Message | null {
  switch (msg.type) {
    case 'pre-prepare':
      return { ...msg, sig: ctx.forger.sign(prepareSigningBytes(ctx.chainTag, msg.view, msg.height, msg.hash, contentDigest(msg.parentHash, msg.payload))) };
    case 'prepare':
      return { ...msg, sig: ctx.forger.sign(prepareSigningBytes(ctx.chainTag, msg.view, msg.height, msg.hash, msg.digest)) };
    case 'commit':
      return { ...msg, sig: ctx.forger.sign(commitSigningBytes(msg.hash)) };
    case 'view-change':
      return { ...msg, sig: ctx.forger.sign(viewChangeSigningBytes(ctx.chainTag, msg)) };
    default:
      return null;
  }
}

/** Sends again old messages it saw (its own and others'), as its own. */
function replay(): Behaviour {
  return {
    name: 'replay',
    tick(ctx) {
      const out: Packet[] = [];
      for (let i = 0; i < 3 && ctx.seen.length > 0; i++) out.push({ to: ctx.prng.pick(ctx.peers), bytes: ctx.prng.pick(ctx.seen) });
      return out;
    },
  };
}

/** Random bytes, and real messages truncated, extended or with bits flipped. */
function garbage(): Behaviour {
  return {
    name: 'garbage',
    outgoing(ctx, to, _msg, bytes) {
      if (!ctx.prng.chance(0.3)) return all(to, bytes);
      const bad = Uint8Array.from(bytes);
      const k = ctx.prng.int(3);
      if (k === 0) return all(to, bad.slice(0, ctx.prng.int(bad.length)));
      if (k === 1) return all(to, Uint8Array.from([...bad, ...ctx.prng.bytes(1 + ctx.prng.int(8))]));
      bad[ctx.prng.int(bad.length)]! ^= 1 << ctx.prng.int(8);
      return all(to, bad);
    },
    tick(ctx) {
      return [{ to: ctx.prng.pick(ctx.peers), bytes: ctx.prng.bytes(ctx.prng.int(300)) }];
    },
  };
}

/** Keeps asking for view changes, with valid, signed VIEW-CHANGEs, for views just ahead. */
function viewChangeSpam(): Behaviour {
  return {
    name: 'view-change-spam',
    tick(ctx) {
      const tip = ctx.tip();
      const out: Packet[] = [];
      for (let k = 1; k <= 3; k++) {
        const vc: ViewChange = { type: 'view-change', view: ctx.view() + k, replica: ctx.index, committedHeight: tip.height, committedHash: tip.hash, committedCert: tip.certificate, prepared: [], sig: new Uint8Array(0) };
        vc.sig = ctx.crypto.sign(viewChangeSigningBytes(ctx.chainTag, vc));
        out.push(...all(ctx.peers, encodeMessage(vc)));
      }
      return out;
    },
  };
}

function invalidBlocks(): Behaviour {
  return { name: 'invalid-blocks', invalidBlocks: true };
}

function silent(): Behaviour {
  return { name: 'silent', outgoing: () => [] };
}

/** As leader, sends each pre-prepare to a few peers only; votes normally. */
function partialLeader(): Behaviour {
  return {
    name: 'partial-leader',
    outgoing(ctx, to, msg, bytes) {
      if (msg.type !== 'pre-prepare') return all(to, bytes);
      return all(ctx.prng.shuffle(to).slice(0, Math.max(1, Math.floor(to.length / 2))), bytes);
    },
  };
}

/**
 * Claims that signatures do not cover: chain.md's commit message binds a block's hash, not its
 * height. So: real certificates sent again under other heights; VIEW-CHANGEs that claim a
 * committed height above its own (its tip's certificate renumbered); and, as leader,
 * pre-prepares that carry the hash of a real block over a payload that is not that block's.
 */
function lies(): Behaviour {
  const votedAt = new Map<number, Hash>();
  return {
    name: 'lies',
    outgoing(ctx, to, msg, bytes) {
      if (msg.type === 'prepare' || msg.type === 'precommit') votedAt.set(msg.height, msg.hash);
      if (msg.type !== 'pre-prepare') return all(to, bytes);
      const earlier = votedAt.get(msg.height);
      const hash = earlier && earlier !== msg.hash ? earlier : ctx.tip().hash;
      const digest = contentDigest(msg.parentHash, msg.payload);
      const lie: PrePrepare = { ...msg, hash, sig: ctx.crypto.sign(prepareSigningBytes(ctx.chainTag, msg.view, msg.height, hash, digest)) };
      const [a, b] = halves(ctx.prng, to);
      return [...all(a, bytes), ...all(b, encodeMessage(lie))];
    },
    tick(ctx) {
      const tip = ctx.tip();
      if (!tip.certificate) return [];
      const out: Packet[] = [];
      for (const k of [1, 2, ctx.prng.range(3, 40)]) {
        const cert: CommitCertificate = { ...tip.certificate, number: tip.height + k };
        out.push({ to: ctx.prng.pick(ctx.peers), bytes: encodeMessage({ type: 'certificate', certificate: cert }) });
      }
      const claimed = tip.height + 1;
      const vc: ViewChange = { type: 'view-change', view: ctx.view() + 1, replica: ctx.index, committedHeight: claimed, committedHash: tip.hash, committedCert: { ...tip.certificate, number: claimed }, prepared: [], sig: new Uint8Array(0) };
      vc.sig = ctx.crypto.sign(viewChangeSigningBytes(ctx.chainTag, vc));
      out.push(...all(ctx.peers, encodeMessage(vc)));
      return out;
    },
  };
}

export function makeBehaviour(name: BehaviourName): Behaviour {
  switch (name) {
    case 'lies':
      return lies();
    case 'equivocate':
      return equivocate();
    case 'conflicting-votes':
      return conflictingVotes();
    case 'forge':
      return forge();
    case 'replay':
      return replay();
    case 'garbage':
      return garbage();
    case 'view-change-spam':
      return viewChangeSpam();
    case 'invalid-blocks':
      return invalidBlocks();
    case 'silent':
      return silent();
    case 'partial-leader':
      return partialLeader();
  }
}

/** For the replay behaviour: only well-formed messages are worth keeping. */
export function isMessage(bytes: Uint8Array): boolean {
  return decodeMessage(bytes).ok;
}
