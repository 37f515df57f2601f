// The PBFT replica as a pure state machine: step(event, now) -> Ready. No I/O, no clock, no
// randomness; signatures only through the injected VoteCrypto. The protocol is described in
// README.md next to this file; each rule below names the part of it that it implements.
import { to0x } from '../crypto/encoding.ts';
import {
  chainDigest,
  commitSigningBytes,
  contentDigest,
  decodeMessage,
  encodeMessage,
  newViewSigningBytes,
  prepareSigningBytes,
  stripPayloads,
  viewChangeSigningBytes,
} from './messages.ts';
import type {
  BuildRequest,
  CertificateMsg,
  Commit,
  CommitCertificate,
  DropReason,
  Hash,
  Limits,
  Message,
  NewView,
  PersistedState,
  PersistRecord,
  Precommit,
  Prepare,
  PrePrepare,
  PreparedCert,
  Ready,
  ReplicaConfig,
  ReplicaEvent,
  ReplicaStatus,
  Reproposal,
  TimerId,
  ValidateRequest,
  ViewChange,
  ViewChangeCause,
} from './types.ts';
import { DEFAULT_LIMITS, emptyReady } from './types.ts';
import { checkCommitCert, checkNewView, checkViewChange, kthLargest, leaderOf, maxFaulty, quorumSize, selectReproposals, type CheckContext, type CheckedNewView } from './view-change.ts';
import { unsignedVote, VoteTable } from './votes.ts';

/** A block as its content: two payloads under one hash are two entries (one of them is fake). */
interface BlockInfo {
  key: string;
  height: number;
  hash: Hash;
  parentHash: Hash;
  digest: Hash;
  payload: Uint8Array;
  validation: 'none' | 'requested' | 'ok' | 'bad';
  /** the driver holds speculative state for it (validation asked, or it built it) */
  sent: boolean;
}

/** Everything the replica knows about one height above its committed one. */
interface Slot {
  height: number;
  blocks: Map<Hash, BlockInfo>;
  /** the pre-prepare (or forced re-proposal) accepted in the current view: at most one per view */
  /** the accepted proposal of the current view; `from` is set when a PRE-PREPARE (from the view's leader) brought it */
  pp: { view: number; hash: Hash; digest: Hash; from?: number } | null;
  /** our own pre-prepare, kept to send again */
  ppMsg: PrePrepare | null;
  /** PREPAREs and PRECOMMITs of the current view */
  prepares: VoteTable;
  precommits: VoteTable;
  localPrepared: boolean;
  /** COMMITs (view-independent) */
  commits: VoteTable;
  decided: Hash | null;
  decidedView: number | null;
  certificate: CommitCertificate | null;
  /**
   * Certificates from peers (CERTIFICATE, VIEW-CHANGE, NEW-VIEW): chain.md's commit message
   * binds the hash but not the height, so a certificate's number is believed only once the
   * driver has validated a block with that hash at that height.
   */
  claimed: Map<Hash, CommitCertificate>;
  sentCommit: boolean;
  /** last time this replica did something for this height (for retransmission) */
  lastActivity: number;
}

interface InstalledNewView {
  view: number;
  msg: NewView;
  cStar: number;
  /** the highest re-proposed height (cStar when none) */
  top: number;
  byHeight: Map<number, Reproposal>;
}

const MAX_BLOCKS_PER_SLOT = 8;
const MAX_CLAIMED_PER_SLOT = 4;
const MAX_CHECKED_VIEW_CHANGES = 256;
/** committed hashes remembered, to check the committed heights that VIEW-CHANGEs claim */
const COMMITTED_HASHES_KEPT = 1024;

function contentKey(hash: Hash, digest: Hash): string {
  return hash + digest.slice(2);
}

export class Replica {
  private readonly me: number;
  private readonly W: number;
  private readonly limits: Limits;
  private readonly chainTag: Uint8Array;
  private readonly ctx: CheckContext;
  private readonly baseTimeoutMs: number;
  private readonly maxDoublings: number;
  private readonly retransmitMs: number;

  private now = 0;
  private out: Ready = emptyReady();
  /** bumped on every state change: progress() runs its rules until nothing changes */
  private gen = 0;
  private halted: string | null = null;

  private committedHeight: number;
  private committedHash: Hash;
  private committedCert: CommitCertificate | null;
  private readonly recentCerts = new Map<number, CommitCertificate>();
  private readonly committedHashes = new Map<number, Hash>();

  private view = 0;
  private changing = false;
  private failedViews = 0;
  private nv: InstalledNewView | null = null;

  private readonly slots = new Map<number, Slot>();
  // What this replica has signed above its committed height (mirrors its persisted records).
  private readonly myPrepare = new Map<number, { view: number; hash: Hash; digest: Hash }>();
  private readonly myPrecommit = new Map<number, { view: number; hash: Hash }>();
  private readonly myDecided = new Map<number, Hash>();
  /** the highest-view prepared certificate held at each height (reported in VIEW-CHANGEs) */
  private readonly preparedCerts = new Map<number, PreparedCert>();

  private readonly latestVC = new Map<number, ViewChange>();
  private readonly peerView = new Map<number, number>();
  private readonly peerHeight = new Map<number, number>();
  private myVC: ViewChange | null = null;
  private lastVCSentAt = -Infinity;
  private readonly checkedVCs = new Map<string, string | null>();

  private building: BuildRequest | null = null;
  private proposeNext: number;
  private pendingWork = false;

  private deadlines = new Map<TimerId, number>();
  private forceTimers = new Set<TimerId>();
  private syncTarget = 0;
  private syncQuietUntil = 0;
  private readonly lastReply = new Map<string, { key: number; at: number }>();
  private deferred = new Map<number, Message[]>();
  private replayNeeded = false;
  private readonly dropCounts = new Map<string, number>();
  /** a view above 0 resumed from persisted records, reported once in the first Ready */
  private resumedView: number | null = null;
  private readonly setCache = new Map<number, { list: readonly number[]; key: string }>();

  constructor(
    private readonly config: ReplicaConfig,
    persisted: PersistedState,
  ) {
    this.me = config.index;
    this.W = config.window ?? 4;
    if (!Number.isInteger(this.W) || this.W < 1) throw new Error('window must be a positive integer');
    this.limits = { ...DEFAULT_LIMITS, ...config.limits };
    if (this.W > this.limits.maxPrepared) throw new Error('window exceeds maxPrepared');
    this.chainTag = chainDigest(config.chain);
    this.baseTimeoutMs = config.baseTimeoutMs;
    this.maxDoublings = config.maxTimeoutDoublings ?? 6;
    this.retransmitMs = config.retransmitMs ?? Math.max(1, Math.floor(config.baseTimeoutMs / 2));
    this.ctx = { crypto: config.crypto, chain: this.chainTag, genesisHash: config.genesisHash, setAt: (h) => this.setAt(h) };
    this.committedHeight = persisted.committedHeight;
    this.committedHash = persisted.committedHash;
    this.committedCert = persisted.committedCertificate;
    if ((this.committedCert === null) !== (this.committedHeight === 0)) throw new Error('the committed tip needs its certificate (none at genesis)');
    if (this.committedCert) this.recentCerts.set(this.committedHeight, this.committedCert);
    this.committedHashes.set(this.committedHeight, this.committedHash);
    this.proposeNext = this.committedHeight + 1;
    this.restore(persisted.records);
    if (this.view > 0) this.resumedView = this.view;
  }

  // ===========================================================================================
  // Public surface

  step(event: ReplicaEvent, now: number): Ready {
    this.now = now;
    this.out = emptyReady();
    if (this.halted) {
      this.out.fatal = this.halted;
      return this.out;
    }
    if (this.resumedView !== null) {
      this.out.viewChanges.push({ from: 0, to: this.resumedView, cause: 'restart' });
      this.resumedView = null;
    }
    const before = new Map(this.deadlines);
    this.forceTimers.clear();
    switch (event.type) {
      case 'start':
        if (this.changing) this.sendViewChange();
        if (this.syncTarget > this.committedHeight) this.out.sync = { targetHeight: this.syncTarget };
        break;
      case 'message':
        this.onBytes(event.from, event.bytes);
        break;
      case 'timer':
        this.onTimer(event.id);
        break;
      case 'proposalBuilt':
        this.onProposalBuilt(event);
        break;
      case 'validated':
        this.onValidated(event.height, event.hash, event.ok);
        break;
      case 'syncedCommit':
        this.onSyncedCommit(event.height, event.hash, event.parentHash, event.certificate);
        break;
      case 'pendingWork':
        if (this.pendingWork !== event.pending) this.touch();
        this.pendingWork = event.pending;
        break;
      case 'syncDone':
        this.onSyncDone();
        break;
    }
    this.settle();
    this.updateTimers();
    for (const [id, at] of this.deadlines) if (before.get(id) !== at || this.forceTimers.has(id)) this.out.timers.push({ id, at });
    for (const id of before.keys()) if (!this.deadlines.has(id)) this.out.cancelTimers.push(id);
    if (this.halted) this.out.fatal = this.halted;
    return this.out;
  }

  status(): ReplicaStatus {
    const set = this.setAt(this.committedHeight + 1);
    return {
      view: this.view,
      changingView: this.changing,
      leader: set ? leaderOf(set, this.view) : null,
      committedHeight: this.committedHeight,
      committedHash: this.committedHash,
      failedViews: this.failedViews,
      timeoutMs: this.timeoutMs(),
    };
  }

  /** Drops so far, by "peer/reason" (for metrics). */
  dropCounters(): ReadonlyMap<string, number> {
    return this.dropCounts;
  }

  // ===========================================================================================
  // Restart: rebuild from persisted records (README: "What is persisted")

  private restore(records: PersistRecord[]): void {
    let viewRec: { view: number; changing: boolean } | null = null;
    let nvRec: { view: number; bytes: Uint8Array } | null = null;
    const c = this.committedHeight;
    for (const r of records) {
      switch (r.kind) {
        case 'view':
          if (!viewRec || r.view > viewRec.view) viewRec = r;
          break;
        case 'new-view':
          if (!nvRec || r.view > nvRec.view) nvRec = r;
          break;
        case 'prepare': {
          const cur = this.myPrepare.get(r.height);
          if (r.height > c && (!cur || r.view > cur.view)) this.myPrepare.set(r.height, { view: r.view, hash: r.hash, digest: r.digest });
          break;
        }
        case 'precommit': {
          const cur = this.myPrecommit.get(r.height);
          if (r.height > c && (!cur || r.view > cur.view)) this.myPrecommit.set(r.height, { view: r.view, hash: r.hash });
          break;
        }
        case 'prepared': {
          const cur = this.preparedCerts.get(r.height);
          if (r.height > c && r.cert.payload && (!cur || r.cert.view > cur.view)) this.preparedCerts.set(r.height, r.cert);
          break;
        }
        case 'decided':
          if (r.height > c) this.myDecided.set(r.height, r.hash);
          break;
      }
    }
    this.view = viewRec?.view ?? 0;
    this.changing = viewRec?.changing ?? false;
    // A vote is persisted after the view it belongs to; this only guards against a lost view record.
    let maxVoteView = 0;
    for (const v of this.myPrepare.values()) maxVoteView = Math.max(maxVoteView, v.view);
    for (const v of this.myPrecommit.values()) maxVoteView = Math.max(maxVoteView, v.view);
    if (maxVoteView > this.view) {
      this.view = maxVoteView;
      this.changing = false;
    }
    if (!this.changing && nvRec && nvRec.view === this.view) {
      const d = decodeMessage(nvRec.bytes, { ...this.limits, maxMessageBytes: Infinity });
      if (d.ok && d.msg.type === 'new-view') this.installNewView(d.msg, selectReproposals(d.msg.viewChanges).cStar);
    }
    for (const [h, cert] of this.preparedCerts) {
      const slot = this.slotIfInWindow(h);
      if (!slot) continue;
      this.addBlock(slot, { height: h, hash: cert.hash, parentHash: cert.parentHash, digest: cert.digest, payload: cert.payload! });
      if (!this.changing && cert.view === this.view && (!slot.pp || (slot.pp.hash === cert.hash && slot.pp.digest === cert.digest))) {
        slot.pp = { view: this.view, hash: cert.hash, digest: cert.digest };
        slot.localPrepared = true;
      }
    }
    for (const [h, hash] of this.myDecided) {
      const slot = this.slotIfInWindow(h);
      if (slot) slot.decided = hash;
      // Decided but its payload lost with the crash: peers that committed it can send it.
      if (slot && this.withHash(slot, hash).length === 0) this.syncTarget = Math.max(this.syncTarget, h);
    }
    if (this.nv) for (let h = this.committedHeight + 1; h <= this.committedHeight + this.W; h++) if (this.nv.byHeight.has(h)) this.slot(h);
    let top = Math.max(this.committedHeight, this.nv?.top ?? 0);
    for (const [h, v] of this.myPrepare) if (v.view === this.view) top = Math.max(top, h);
    this.proposeNext = top + 1;
  }

  // ===========================================================================================
  // Validator sets

  private setAt(height: number): readonly number[] | null {
    const hit = this.setCache.get(height);
    if (hit) return hit.list;
    const raw = this.config.validatorsAt(height);
    if (!raw || raw.length === 0) return null;
    const list = [...raw].sort((a, b) => a - b);
    this.setCache.set(height, { list, key: list.join(',') });
    if (this.setCache.size > 4 * this.W + 64) {
      for (const h of this.setCache.keys()) if (h < this.committedHeight - 2 * this.W) this.setCache.delete(h);
    }
    return list;
  }

  private setKey(height: number): string | null {
    return this.setAt(height) ? this.setCache.get(height)!.key : null;
  }

  /** Pipelining never crosses a validator-set change: every height up to h has the set of committed + 1. */
  private uniformSetUpTo(h: number): boolean {
    const first = this.setKey(this.committedHeight + 1);
    if (!first) return false;
    for (let j = this.committedHeight + 2; j <= h; j++) if (this.setKey(j) !== first) return false;
    return true;
  }

  private timeoutMs(): number {
    return this.baseTimeoutMs * 2 ** Math.min(this.failedViews, this.maxDoublings);
  }

  // ===========================================================================================
  // Slots and blocks

  private slotIfInWindow(h: number): Slot | null {
    if (h <= this.committedHeight || h > this.committedHeight + this.W) return null;
    return this.slot(h);
  }

  private slot(h: number): Slot {
    let s = this.slots.get(h);
    if (!s) {
      s = {
        height: h,
        blocks: new Map(),
        pp: null,
        ppMsg: null,
        prepares: new VoteTable(),
        precommits: new VoteTable(),
        localPrepared: false,
        commits: new VoteTable(),
        decided: null,
        decidedView: null,
        certificate: null,
        claimed: new Map(),
        sentCommit: false,
        lastActivity: this.now,
      };
      this.slots.set(h, s);
      const rp = this.nv && !this.changing ? this.nv.byHeight.get(h) : undefined;
      if (rp) this.installReproposal(s, rp);
    }
    return s;
  }

  private addBlock(slot: Slot, b: Omit<BlockInfo, 'validation' | 'sent' | 'key'>, validation: BlockInfo['validation'] = 'none', sent = false): BlockInfo {
    const key = contentKey(b.hash, b.digest);
    let cur = slot.blocks.get(key);
    if (!cur) {
      if (slot.blocks.size >= MAX_BLOCKS_PER_SLOT) this.evictBlock(slot);
      cur = { ...b, key, validation, sent };
      slot.blocks.set(key, cur);
      this.touch();
    } else if (validation === 'ok' && cur.validation !== 'ok') {
      cur.validation = 'ok';
      cur.sent = cur.sent || sent;
      this.touch();
    }
    return cur;
  }

  /** The entries under one hash (normally one; more only when a Byzantine leader sent a fake payload). */
  private withHash(slot: Slot, hash: Hash): BlockInfo[] {
    const out: BlockInfo[] = [];
    for (const b of slot.blocks.values()) if (b.hash === hash) out.push(b);
    return out;
  }

  /** The block with this hash that the driver executed: its header is checked, so is its height. */
  private validated(slot: Slot | undefined, hash: Hash): BlockInfo | null {
    if (!slot) return null;
    for (const b of slot.blocks.values()) if (b.hash === hash && b.validation === 'ok') return b;
    return null;
  }

  private isProtected(slot: Slot, b: BlockInfo): boolean {
    const cert = this.preparedCerts.get(slot.height);
    return (slot.pp?.hash === b.hash && slot.pp.digest === b.digest) || slot.decided === b.hash || slot.certificate?.blockHash === b.hash || slot.claimed.has(b.hash) || (cert?.hash === b.hash && cert.digest === b.digest);
  }

  private evictBlock(slot: Slot): void {
    for (const b of slot.blocks.values()) {
      if (!this.isProtected(slot, b)) {
        this.removeBlock(slot, b);
        return;
      }
    }
  }

  /**
   * Forgets a block; once no entry under its hash is left, every known descendant goes too and
   * the driver drops their speculative state.
   */
  private removeBlock(slot: Slot, b: BlockInfo): void {
    if (!slot.blocks.delete(b.key)) return;
    this.touch();
    if (this.withHash(slot, b.hash).length > 0) return;
    if (b.sent) this.out.abandon.push({ height: b.height, hash: b.hash });
    const child = this.slots.get(b.height + 1);
    if (child) for (const c of [...child.blocks.values()]) if (c.parentHash === b.hash) this.removeBlock(child, c);
  }

  private installReproposal(slot: Slot, rp: Reproposal): void {
    const digest = contentDigest(rp.parentHash, rp.payload);
    this.addBlock(slot, { height: rp.height, hash: rp.hash, parentHash: rp.parentHash, digest, payload: rp.payload });
    slot.pp = { view: this.view, hash: rp.hash, digest };
    const cert = this.preparedCerts.get(rp.height);
    if (cert && cert.view === this.view && cert.hash === rp.hash && cert.digest === digest) slot.localPrepared = true;
    this.touch();
  }

  private touch(): void {
    this.gen++;
  }

  // ===========================================================================================
  // Sending, dropping, persisting

  private persist(r: PersistRecord): void {
    this.out.persist.push(r);
  }

  /** A replica outside the set of its next height only listens (added validators before they start, removed ones after). */
  private canSpeak(): boolean {
    return this.setAt(this.committedHeight + 1)?.includes(this.me) ?? false;
  }

  private isMember(h: number): boolean {
    return this.setAt(h)?.includes(this.me) ?? false;
  }

  private send(to: number | 'all', msg: Message): void {
    if (!this.canSpeak()) return;
    this.out.send.push({ to, msg, bytes: encodeMessage(msg) });
  }

  private broadcast(msg: Message): void {
    this.send('all', msg);
  }

  private drop(from: number, reason: DropReason, fault: boolean, detail?: string): void {
    this.out.dropped.push(detail === undefined ? { from, reason, fault } : { from, reason, fault, detail });
    const key = `${from}/${reason}`;
    this.dropCounts.set(key, (this.dropCounts.get(key) ?? 0) + 1);
  }

  private fatal(reason: string): void {
    if (!this.halted) this.halted = reason;
  }

  /** Limits answers to one peer: once per retransmit interval for one key, at once for a new key. */
  private replyAllowed(peer: number, kind: string, key: number): boolean {
    const k = `${peer}/${kind}`;
    const last = this.lastReply.get(k);
    if (last && last.key === key && this.now - last.at < this.retransmitMs) return false;
    this.lastReply.set(k, { key, at: this.now });
    return true;
  }

  /** Catch-up (README): a peer showed it is behind height h; give it the certificate it needs. */
  private replyBehind(peer: number, h: number): void {
    const cert = this.recentCerts.get(h) ?? this.committedCert;
    if (!cert || !this.replyAllowed(peer, 'cert', cert.number)) return;
    const msg: CertificateMsg = { type: 'certificate', certificate: cert };
    this.send(peer, msg);
  }

  /** A peer is in an older view: the NEW-VIEW of ours lets it enter this one. */
  private replyNewView(peer: number): void {
    if (this.changing || !this.nv || !this.replyAllowed(peer, 'nv', this.view)) return;
    this.send(peer, this.nv.msg);
  }

  private defer(from: number, msg: Message): void {
    const list = this.deferred.get(from) ?? [];
    const key = deferKey(msg);
    const i = list.findIndex((m) => deferKey(m) === key);
    if (i >= 0) list.splice(i, 1);
    list.push(msg);
    if (list.length > this.limits.maxDeferredPerPeer) {
      list.shift();
      this.drop(from, 'buffer-full', false);
    }
    this.deferred.set(from, list);
  }

  // ===========================================================================================
  // Receiving

  private onBytes(from: number, bytes: Uint8Array): void {
    if (from === this.me) return;
    const d = decodeMessage(bytes, this.limits);
    if (!d.ok) return this.drop(from, 'malformed', true, d.error);
    this.dispatch(from, d.msg);
  }

  private isValidator(from: number, height: number | null): boolean {
    if (this.setAt(this.committedHeight + 1)?.includes(from)) return true;
    return height !== null && (this.setAt(height)?.includes(from) ?? false);
  }

  private dispatch(from: number, msg: Message): void {
    // CERTIFICATE and NEW-VIEW prove themselves: any validator may relay them, even one of a
    // set this replica has not reached yet (a new validator answering a lagging one).
    const selfProving = msg.type === 'certificate' || msg.type === 'new-view';
    const height = msg.type === 'view-change' ? msg.committedHeight + 1 : selfProving ? null : msg.height;
    if (selfProving ? from < 0 : !this.isValidator(from, height)) return this.drop(from, 'not-validator', true);
    switch (msg.type) {
      case 'pre-prepare':
        return this.onPrePrepare(from, msg);
      case 'prepare':
        return this.onPrepare(from, msg);
      case 'precommit':
        return this.onPrecommit(from, msg);
      case 'commit':
        return this.onCommit(from, msg);
      case 'view-change':
        return this.onViewChange(from, msg);
      case 'new-view':
        return this.onNewView(from, msg);
      case 'certificate':
        return this.onCertificate(from, msg);
    }
  }

  private noteView(from: number, view: number): void {
    if (view > (this.peerView.get(from) ?? -1)) this.peerView.set(from, view);
  }

  private noteHeight(from: number, height: number): void {
    if (height > (this.peerHeight.get(from) ?? 0)) this.peerHeight.set(from, height);
  }

  /**
   * The checks every view-bound message (PRE-PREPARE, PREPARE, PRECOMMIT) goes through: too old
   * (answered with what the sender lacks), too far ahead (dropped), not yet (deferred), or now.
   */
  private admit(from: number, msg: PrePrepare | Prepare | Precommit): boolean {
    this.noteView(from, msg.view);
    if (msg.view > this.view + this.limits.maxViewAhead) {
      // Views grow for the life of a chain: a replica far behind (a new validator, one that only
      // listened) sees honest peers there. Counted, not a fault; their NEW-VIEW brings it along.
      this.drop(from, 'far-future', false, `view ${msg.view}`);
      return false;
    }
    this.noteHeight(from, msg.height);
    if (msg.height <= this.committedHeight) {
      this.replyBehind(from, msg.height);
      return false;
    }
    if (msg.view < this.view) {
      this.replyNewView(from);
      return false;
    }
    if (msg.view > this.view || this.changing) {
      if (msg.view <= this.view + 1) this.defer(from, msg);
      return false;
    }
    if (msg.height > this.committedHeight + this.W) {
      if (msg.height <= this.committedHeight + 2 * this.W) this.defer(from, msg);
      return false;
    }
    const set = this.setAt(msg.height);
    if (!set) {
      this.defer(from, msg);
      return false;
    }
    if (!set.includes(from)) {
      this.drop(from, 'not-validator', true);
      return false;
    }
    return true;
  }

  /** README "Normal case": when a replica accepts a pre-prepare. */
  private onPrePrepare(from: number, m: PrePrepare): void {
    if (!this.admit(from, m)) return;
    const h = m.height;
    if (leaderOf(this.setAt(h)!, m.view) !== from) return this.drop(from, 'wrong-leader', true);
    if (!this.uniformSetUpTo(h)) return this.defer(from, m);
    if (this.nv && h <= this.nv.top) {
      if (this.nv.byHeight.get(h)?.hash === m.hash) return;
      return this.drop(from, 'conflicts-new-view', true, `height ${h} is fixed by the new view`);
    }
    const slot = this.slot(h);
    const digest = contentDigest(m.parentHash, m.payload);
    if (slot.pp) {
      if (slot.pp.hash === m.hash && slot.pp.digest === digest) return;
      return this.drop(from, 'equivocation', true, `second pre-prepare at view ${m.view} height ${h}`);
    }
    const mine = this.myPrepare.get(h);
    if (mine && mine.view === m.view && (mine.hash !== m.hash || mine.digest !== digest)) return this.drop(from, 'equivocation', true, 'differs from the block this replica voted for before a restart');
    if (h - 1 === this.committedHeight) {
      // Not a fault: an honest leader's proposal on a block that lost, seen late by a replica
      // still in that old view (one that only listens does not change views) after it synced.
      if (m.parentHash !== this.committedHash) return this.drop(from, 'bad-parent', false, `height ${h} on ${m.parentHash}, committed tip is ${this.committedHash}`);
    } else {
      const prev = this.slots.get(h - 1)?.pp;
      if (!prev) return this.defer(from, m);
      if (prev.hash !== m.parentHash) return this.drop(from, 'bad-parent', true, `height ${h} on ${m.parentHash}, the pre-prepare at ${h - 1} is ${prev.hash} (view ${prev.view})`);
    }
    slot.pp = { view: m.view, hash: m.hash, digest, from };
    this.noteLeaderProposal(m.view, h);
    this.addBlock(slot, { height: h, hash: m.hash, parentHash: m.parentHash, digest, payload: m.payload });
    // The leader's pre-prepare is its PREPARE (same signing bytes). The channel says it came from
    // the leader, so it is accepted before its signature is checked: the signature is checked
    // with the other PREPAREs at quorum (one aggregate check, not one pairing more per block),
    // and a bad one then counts for nothing, like a bad PREPARE (README.md, "Normal case").
    const leaderVote = { key: m.hash + digest, hash: m.hash, digest, sig: m.sig, verified: false };
    if (slot.prepares.add(from, leaderVote) === 'conflict') slot.prepares.replace(from, leaderVote);
    this.replayNeeded = true;
    this.touch();
  }

  private onPrepare(from: number, m: Prepare): void {
    if (!this.admit(from, m)) return;
    const r = this.slot(m.height).prepares.add(from, { key: m.hash + m.digest, hash: m.hash, digest: m.digest, sig: m.sig, verified: false });
    if (r === 'conflict') this.drop(from, 'equivocation', true, `two prepares at view ${m.view} height ${m.height}`);
    else if (r === 'added') this.touch();
  }

  private onPrecommit(from: number, m: Precommit): void {
    if (!this.admit(from, m)) return;
    const r = this.slot(m.height).precommits.add(from, unsignedVote(m.hash));
    if (r === 'conflict') this.drop(from, 'equivocation', true, `two precommits at view ${m.view} height ${m.height}`);
    else if (r === 'added') this.touch();
  }

  private onCommit(from: number, m: Commit): void {
    this.noteHeight(from, m.height);
    if (m.height <= this.committedHeight) return this.replyBehind(from, m.height);
    if (m.height > this.committedHeight + this.W) {
      if (m.height <= this.committedHeight + 2 * this.W) this.defer(from, m);
      return;
    }
    const set = this.setAt(m.height);
    if (!set) return this.defer(from, m);
    if (!set.includes(from)) return this.drop(from, 'not-validator', true);
    const r = this.slot(m.height).commits.add(from, { key: m.hash, hash: m.hash, sig: m.sig, verified: false });
    if (r === 'conflict') this.drop(from, 'equivocation', true, `commits for two blocks at height ${m.height}`);
    else if (r === 'added') this.touch();
  }

  private onCertificate(from: number, m: CertificateMsg): void {
    const c = m.certificate;
    if (c.number <= this.committedHeight) return;
    if (!this.setAt(c.number)) {
      // Beyond the sets this node knows: it is behind; sync checks every certificate it applies.
      this.requestSync(c.number);
      return;
    }
    const bad = checkCommitCert(this.ctx, c);
    if (bad) return this.drop(from, 'invalid-certificate', true, bad);
    this.learnCertificate(c);
  }

  /**
   * The signature and certificate checks of a VIEW-CHANGE are cached by its signed bytes, which
   * leave the payloads out; so the payloads are checked against their digests here, every time
   * and outside the cache. Cached with them, one copy with a garbage payload from a faulty
   * sender made the same VIEW-CHANGE, payloads stripped inside an honest leader's NEW-VIEW,
   * look invalid, and the honest leader was blamed (simulator, byz-garbage-4 seed 7).
   */
  private checkViewChangeCached(vc: ViewChange): string | null {
    for (const p of vc.prepared) {
      if (p.payload && contentDigest(p.parentHash, p.payload) !== p.digest) return `prepared certificate at ${p.height}: payload does not match its digest`;
    }
    const key = to0x(viewChangeSigningBytes(this.chainTag, vc)) + to0x(vc.sig);
    if (this.checkedVCs.has(key)) return this.checkedVCs.get(key)!;
    const result = checkViewChange(this.ctx, stripPayloads(vc));
    if (this.checkedVCs.size >= MAX_CHECKED_VIEW_CHANGES) this.checkedVCs.delete(this.checkedVCs.keys().next().value!);
    this.checkedVCs.set(key, result);
    return result;
  }

  /** README "View change": storing VIEW-CHANGEs, answering the ones from replicas behind. */
  private onViewChange(from: number, m: ViewChange): void {
    if (m.replica !== from) return this.drop(from, 'invalid-view-change', true, 'sent for another replica');
    this.noteView(from, m.view);
    if (m.committedHeight < this.committedHeight) this.replyBehind(from, m.committedHeight + 1);
    if (m.view < this.view || (m.view === this.view && !this.changing)) return this.replyNewView(from);
    const cur = this.latestVC.get(from);
    if (cur && (cur.view > m.view || (cur.view === m.view && cur.committedHeight >= m.committedHeight))) return;
    if (m.prepared.some((p) => p.payload === null)) return this.drop(from, 'invalid-view-change', true, 'a prepared certificate without its block');
    if (this.checkClaim(m.committedHeight, m.committedHash) === 'mismatch') return this.drop(from, 'invalid-view-change', true, `claims another block committed at ${m.committedHeight}`);
    const bad = this.checkViewChangeCached(m);
    if (bad) return this.drop(from, 'invalid-view-change', true, bad);
    this.latestVC.set(from, m);
    this.touch();
    if (m.committedCert && m.committedHeight > this.committedHeight) this.learnCertificate(m.committedCert);
  }

  private onNewView(from: number, m: NewView): void {
    if (m.view < this.view || (m.view === this.view && !this.changing)) return;
    const res = checkNewView(this.ctx, m, (vc) => (this.checkClaim(vc.committedHeight, vc.committedHash) === 'mismatch' ? `claims another block committed at ${vc.committedHeight}` : this.checkViewChangeCached(vc)));
    if (!res.ok) {
      if (res.unknownSet !== undefined) {
        this.defer(from, m);
        this.requestSync(res.unknownSet - 1);
        return;
      }
      return this.drop(from, 'invalid-new-view', true, res.reason);
    }
    this.enterView(m, res.value);
  }

  // ===========================================================================================
  // Driver answers

  private onValidated(height: number, hash: Hash, ok: boolean): void {
    const slot = this.slots.get(height);
    // At most one entry per hash is being executed at a time (tryValidate), so this is the one.
    const b = slot ? this.withHash(slot, hash).find((x) => x.validation === 'requested') : undefined;
    if (!slot || !b) return;
    b.validation = ok ? 'ok' : 'bad';
    if (!ok && slot.pp?.hash === hash && slot.pp.digest === b.digest && slot.pp.view === this.view && !this.changing) {
      const set = this.setAt(height);
      if (set) this.drop(leaderOf(set, this.view), 'invalid-proposal', true, `block ${hash} at height ${height}`);
    }
    this.touch();
  }

  private onProposalBuilt(e: Extract<ReplicaEvent, { type: 'proposalBuilt' }>): void {
    const b = this.building;
    const current = b !== null && e.view === b.view && e.height === b.height && e.parentHash === b.parentHash;
    const abandon = () => {
      if (e.block) this.out.abandon.push({ height: e.height, hash: e.block.hash });
    };
    if (!current) return abandon();
    this.building = null;
    this.touch();
    if (e.morePending !== undefined) this.pendingWork = e.morePending;
    if (!e.block) {
      if (e.morePending === undefined) this.pendingWork = false;
      return;
    }
    const h = e.height;
    const slot = this.slotIfInWindow(h);
    const mine = this.myPrepare.get(h);
    if (this.changing || e.view !== this.view || !slot || slot.pp || !this.parentUsable(h, e.parentHash) || (mine && mine.view === this.view)) return abandon();
    const digest = contentDigest(e.parentHash, e.block.payload);
    const sig = this.config.crypto.sign(prepareSigningBytes(this.chainTag, this.view, h, e.block.hash, digest));
    this.myPrepare.set(h, { view: this.view, hash: e.block.hash, digest });
    this.persist({ kind: 'prepare', height: h, view: this.view, hash: e.block.hash, digest });
    slot.pp = { view: this.view, hash: e.block.hash, digest };
    this.addBlock(slot, { height: h, hash: e.block.hash, parentHash: e.parentHash, digest, payload: e.block.payload }, 'ok', true);
    slot.prepares.add(this.me, { key: e.block.hash + digest, hash: e.block.hash, digest, sig, verified: true });
    const msg: PrePrepare = { type: 'pre-prepare', view: this.view, height: h, hash: e.block.hash, parentHash: e.parentHash, payload: e.block.payload, sig };
    slot.ppMsg = msg;
    slot.lastActivity = this.now;
    this.broadcast(msg);
    this.proposeNext = h + 1;
    this.replayNeeded = true;
  }

  /** The parent of a new proposal at h: the committed tip, or the validated pre-prepare below. */
  private parentUsable(h: number, parentHash: Hash): boolean {
    if (h - 1 === this.committedHeight) return parentHash === this.committedHash;
    const prev = this.slots.get(h - 1);
    return prev?.pp?.hash === parentHash && prev.pp.view === this.view && prev.blocks.get(contentKey(prev.pp.hash, prev.pp.digest))?.validation === 'ok';
  }

  private onSyncedCommit(height: number, hash: Hash, parentHash: Hash, certificate: CommitCertificate): void {
    if (height !== this.committedHeight + 1) return;
    if (parentHash !== this.committedHash) return this.fatal(`synced block ${height} does not extend the committed chain`);
    const slot = this.slots.get(height);
    if (slot?.decided && slot.decided !== hash) return this.fatal(`synced block ${height} differs from the decided one`);
    // The driver applied this block itself: its own speculative copy, if any, is not abandoned.
    if (slot) for (const b of this.withHash(slot, hash)) b.sent = false;
    this.advanceCommitted(height, hash, certificate);
  }

  // ===========================================================================================
  // Timers

  private onTimer(id: TimerId): void {
    const at = this.deadlines.get(id);
    if (at === undefined) return;
    if (this.now < at) {
      this.forceTimers.add(id);
      return;
    }
    this.deadlines.delete(id);
    // Expired in a view: its leader made no progress. Expired while changing view: no valid
    // NEW-VIEW came in time (the next leader is down or slow too).
    if (id === 'progress') this.startViewChange(this.view + 1, this.changing ? 'view-change-timeout' : 'timeout');
    else this.retransmit();
  }

  /** Work that a stuck view must answer for. A pending sync is the driver's, not the leader's. */
  private hasWork(): boolean {
    if (this.pendingWork) return true;
    for (const s of this.slots.values()) if (s.pp || s.decided || s.certificate) return true;
    return false;
  }

  /**
   * README "Timeouts": in a view, the progress timer runs while there is work and restarts at
   * each commit; while changing view it starts only once a quorum has asked for the same view
   * (PBFT's rule, so that one replica cannot run ahead alone), and on expiry moves one view on.
   */
  private updateTimers(): void {
    const work = this.hasWork();
    if (!this.canSpeak()) {
      // A listener never starts a view change; it follows NEW-VIEWs and certificates.
      this.deadlines.delete('progress');
    } else if (!this.changing) {
      if (work && !this.deadlines.has('progress')) this.deadlines.set('progress', this.now + this.timeoutMs());
      if (!work) this.deadlines.delete('progress');
    } else if (!this.deadlines.has('progress')) {
      const set = this.setAt(this.committedHeight + 1);
      if (set) {
        let support = 1;
        for (const [p, vc] of this.latestVC) if (p !== this.me && set.includes(p) && vc.view >= this.view) support++;
        if (support >= quorumSize(set.length)) this.deadlines.set('progress', this.now + this.timeoutMs());
      }
    }
    if (work || this.changing || this.syncTarget > this.committedHeight) {
      if (!this.deadlines.has('retransmit')) this.deadlines.set('retransmit', this.now + this.retransmitMs);
    } else this.deadlines.delete('retransmit');
  }

  /** Sends again what a stuck height needs from this replica; asks for sync when blocked on a missing block. */
  private retransmit(): void {
    if (this.changing) {
      // A VIEW-CHANGE may carry W payloads: sent again at a quarter of the timeout, not every tick.
      if (this.now - this.lastVCSentAt >= Math.max(this.retransmitMs, this.timeoutMs() / 4)) this.sendViewChange();
    } else {
      for (let h = this.committedHeight + 1; h <= this.committedHeight + this.W; h++) {
        const slot = this.slots.get(h);
        if (!slot || this.now - slot.lastActivity < this.retransmitMs) continue;
        slot.lastActivity = this.now;
        if (slot.ppMsg && slot.pp?.view === this.view && slot.ppMsg.view === this.view) this.broadcast(slot.ppMsg);
        const p = slot.prepares.get(this.me);
        if (p && !(slot.ppMsg && slot.ppMsg.hash === p.hash)) this.broadcast({ type: 'prepare', view: this.view, height: h, hash: p.hash, digest: p.digest!, sig: p.sig });
        const pc = slot.precommits.get(this.me);
        if (pc) this.broadcast({ type: 'precommit', view: this.view, height: h, hash: pc.hash });
      }
    }
    // COMMITs are view-independent: a replica changing view still helps finish decided blocks.
    for (let h = this.committedHeight + 1; h <= this.committedHeight + this.W; h++) {
      const slot = this.slots.get(h);
      if (!slot) continue;
      const c = slot.commits.get(this.me);
      if (c && slot.sentCommit) this.broadcast({ type: 'commit', height: h, hash: c.hash, sig: c.sig });
    }
    const next = this.slots.get(this.committedHeight + 1);
    const wanted = next?.certificate?.blockHash ?? next?.decided;
    if (wanted && !this.validated(next, wanted) && !this.withHash(next!, wanted).some((b) => b.validation !== 'bad')) this.requestSync(this.committedHeight + 1);
  }

  // ===========================================================================================
  // The rules, run to a fixpoint after each event

  private settle(): void {
    for (let round = 0; round < 16 && !this.halted; round++) {
      const before = this.gen;
      this.progress();
      if (this.replayNeeded) {
        this.replayNeeded = false;
        const all = this.deferred;
        this.deferred = new Map();
        for (const [from, list] of all) for (const msg of list) this.dispatch(from, msg);
      }
      if (this.gen === before && !this.replayNeeded) return;
    }
  }

  private progress(): void {
    for (let round = 0; round < 4 * this.W + 8 && !this.halted; round++) {
      const before = this.gen;
      for (let h = this.committedHeight + 1; h <= this.committedHeight + this.W; h++) {
        const slot = this.slots.get(h);
        if (!slot) continue;
        this.tryValidate(slot);
        this.tryPrepare(slot);
        this.tryLocalPrepared(slot);
        this.tryPrecommit(slot);
        this.tryDecide(slot);
        this.tryCommitVote(slot);
        this.tryCertify(slot);
      }
      this.tryCommitNext();
      this.tryPropose();
      this.tryFormNewView();
      this.checkJoin();
      this.checkBehind();
      if (this.gen === before) return;
    }
  }

  /** The driver executes a block only on a state it has: the committed tip or a validated parent. */
  private parentValidated(h: number, parentHash: Hash): boolean {
    if (h - 1 === this.committedHeight) return parentHash === this.committedHash;
    return this.validated(this.slots.get(h - 1), parentHash) !== null;
  }

  private tryValidate(slot: Slot): void {
    for (const b of slot.blocks.values()) {
      if (b.validation !== 'none') continue;
      const proposed = slot.pp?.view === this.view && slot.pp.hash === b.hash && slot.pp.digest === b.digest;
      const wanted = proposed || slot.decided === b.hash || slot.claimed.has(b.hash);
      if (!wanted || !this.parentValidated(slot.height, b.parentHash)) continue;
      // One execution per hash at a time; another entry under it is tried only if this one fails.
      if (this.withHash(slot, b.hash).some((x) => x.validation === 'requested' || x.validation === 'ok')) continue;
      b.validation = 'requested';
      b.sent = true;
      const request: ValidateRequest = { height: b.height, hash: b.hash, parentHash: b.parentHash, payload: b.payload };
      // Only a PRE-PREPARE vouches (onPrePrepare accepts one from the view's leader alone); a
      // NEW-VIEW's re-proposal or a restored one does not say its sender verified anything.
      if (proposed && slot.pp!.from !== undefined) request.proposedBy = slot.pp!.from;
      this.out.validate.push(request);
      this.touch();
    }
  }

  private currentBlock(slot: Slot): BlockInfo | null {
    if (this.changing || !slot.pp || slot.pp.view !== this.view) return null;
    return slot.blocks.get(contentKey(slot.pp.hash, slot.pp.digest)) ?? null;
  }

  /**
   * PREPARE once the block executed, and only on top of this replica's own PREPARE for its
   * parent in this view (or the committed tip): its votes in a view always form one chain.
   */
  private tryPrepare(slot: Slot): void {
    const b = this.currentBlock(slot);
    if (!b || b.validation !== 'ok' || slot.prepares.has(this.me) || !this.isMember(slot.height)) return;
    const h = slot.height;
    const mine = this.myPrepare.get(h);
    if (mine && mine.view === this.view && (mine.hash !== b.hash || mine.digest !== b.digest)) return;
    if (h - 1 === this.committedHeight) {
      if (b.parentHash !== this.committedHash) return;
    } else if (this.slots.get(h - 1)?.prepares.get(this.me)?.hash !== b.parentHash) return;
    const sig = this.config.crypto.sign(prepareSigningBytes(this.chainTag, this.view, h, b.hash, b.digest));
    if (!mine || mine.view !== this.view) {
      this.myPrepare.set(h, { view: this.view, hash: b.hash, digest: b.digest });
      this.persist({ kind: 'prepare', height: h, view: this.view, hash: b.hash, digest: b.digest });
    }
    slot.prepares.add(this.me, { key: b.hash + b.digest, hash: b.hash, digest: b.digest, sig, verified: true });
    slot.lastActivity = this.now;
    this.broadcast({ type: 'prepare', view: this.view, height: h, hash: b.hash, digest: b.digest, sig });
    this.touch();
  }

  /**
   * Prepared locally: a quorum of PREPAREs for the accepted block including our own, and the
   * parent prepared locally in this same view (or committed). The chain condition is what lets a
   * new view follow parent links safely (README "Why the re-proposals chain").
   */
  private tryLocalPrepared(slot: Slot): void {
    if (slot.localPrepared) return;
    const b = this.currentBlock(slot);
    if (!b || !slot.prepares.has(this.me)) return;
    const h = slot.height;
    if (h - 1 === this.committedHeight) {
      if (b.parentHash !== this.committedHash) return;
    } else {
      const prev = this.slots.get(h - 1);
      if (!prev?.localPrepared || prev.pp?.hash !== b.parentHash) return;
    }
    const set = this.setAt(h)!;
    const msg = prepareSigningBytes(this.chainTag, this.view, h, b.hash, b.digest);
    const signers = slot.prepares.verifiedQuorum(b.hash + b.digest, quorumSize(set.length), set, this.config.crypto, msg, (s) => this.drop(s, 'bad-signature', true, `prepare at ${h}`));
    if (!signers) return;
    const aggregate = this.config.crypto.aggregate(slot.prepares.signatures(signers));
    if (!aggregate) return;
    slot.localPrepared = true;
    const cert: PreparedCert = { view: this.view, height: h, hash: b.hash, parentHash: b.parentHash, digest: b.digest, signers, aggregate, payload: b.payload };
    const prev = this.preparedCerts.get(h);
    if (!prev || prev.view < this.view) {
      this.preparedCerts.set(h, cert);
      this.persist({ kind: 'prepared', height: h, cert });
      this.myVC = null;
    }
    this.touch();
  }

  private tryPrecommit(slot: Slot): void {
    if (!slot.localPrepared || slot.precommits.has(this.me) || !this.isMember(slot.height)) return;
    const b = this.currentBlock(slot);
    if (!b) return;
    const h = slot.height;
    const mine = this.myPrecommit.get(h);
    if (mine && mine.view === this.view && mine.hash !== b.hash) return;
    if (!mine || mine.view !== this.view) {
      this.myPrecommit.set(h, { view: this.view, hash: b.hash });
      this.persist({ kind: 'precommit', height: h, view: this.view, hash: b.hash });
    }
    slot.precommits.add(this.me, unsignedVote(b.hash));
    slot.lastActivity = this.now;
    this.broadcast({ type: 'precommit', view: this.view, height: h, hash: b.hash });
    this.touch();
  }

  /** Decided: a quorum of PRECOMMITs for one block in one view (classic PBFT's committed-local). */
  private tryDecide(slot: Slot): void {
    if (this.changing || slot.decided) return;
    const h = slot.height;
    const set = this.setAt(h)!;
    const q = quorumSize(set.length);
    for (const key of slot.precommits.keysWithAtLeast(q)) {
      if (slot.precommits.authenticatedQuorum(key, q, set)) {
        this.markDecided(h, key, this.view);
        return;
      }
    }
  }

  /** COMMIT (chain.md's signature) only for a decided block this replica executed itself. */
  private tryCommitVote(slot: Slot): void {
    if (!slot.decided || slot.sentCommit || !this.isMember(slot.height)) return;
    const b = this.validated(slot, slot.decided);
    if (!b) return;
    const h = slot.height;
    const sig = this.config.crypto.sign(commitSigningBytes(b.hash));
    if (this.myDecided.get(h) !== b.hash) {
      this.myDecided.set(h, b.hash);
      this.persist({ kind: 'decided', height: h, hash: b.hash });
    }
    const vote = { key: b.hash, hash: b.hash, sig, verified: true };
    if (slot.commits.add(this.me, vote) === 'conflict') slot.commits.replace(this.me, vote);
    slot.sentCommit = true;
    slot.lastActivity = this.now;
    this.broadcast({ type: 'commit', height: h, hash: b.hash, sig });
    this.touch();
  }

  /** A quorum of COMMITs for one block is its certificate, and proves it decided. */
  private tryCertify(slot: Slot): void {
    if (slot.certificate) return;
    const h = slot.height;
    for (const [hash, cert] of slot.claimed) {
      if (!this.validated(slot, hash)) continue;
      slot.certificate = cert;
      this.markDecided(h, hash, null);
      this.touch();
      return;
    }
    const set = this.setAt(h)!;
    const q = quorumSize(set.length);
    for (const key of slot.commits.keysWithAtLeast(q)) {
      const signers = slot.commits.verifiedQuorum(key, q, set, this.config.crypto, commitSigningBytes(key), (s) => this.drop(s, 'bad-signature', true, `commit at ${h}`));
      if (!signers) continue;
      const agg = this.config.crypto.aggregate(slot.commits.signatures(signers));
      if (!agg) continue;
      slot.certificate = { number: h, blockHash: key, view: slot.decidedView ?? this.view, signers, aggregateSignature: to0x(agg) };
      this.markDecided(h, key, null);
      this.touch();
      return;
    }
  }

  /**
   * Records a decision proven for this height: a quorum of PRECOMMITs or of COMMITs at it, or a
   * certificate for a block executed at it. A decided block decides its ancestors (README "Why
   * the re-proposals chain"); the walk follows only executed blocks, whose parent links the
   * driver has checked.
   */
  /** the highest height seen decided (a quorum of PRECOMMITs or COMMITs, or a certificate) */
  private highestDecided = 0;
  /** the highest height the current view's leader proposed, as [view, height] */
  private leaderProposed: [number, number] = [-1, 0];

  /**
   * A valid PRE-PREPARE for a new height from this view's leader: the leader is alive and
   * proposing, and what remains is the replicas' own work (gathering, executing, voting). Under
   * load a block's round took longer than the timeout (the leader executes it to build it, then
   * every replica executes it to validate it), and every height ended in a view change that
   * helped nothing. The progress timer now starts over here as well as when a quorum decides.
   * A faulty leader gains at most `window` restarts from proposals that never decide, since it
   * cannot propose above committed height + window.
   */
  private noteLeaderProposal(view: number, h: number): void {
    if (this.changing || view !== this.view) return;
    const [v, top] = this.leaderProposed;
    if (v === view && h <= top) return;
    this.leaderProposed = [view, h];
    this.deadlines.delete('progress');
  }

  private markDecided(h: number, hash: Hash, view: number | null): void {
    // A quorum decided a new height in this view: the view works, even if this replica is slow
    // to execute and commit (a leader under load, a busy host). Its progress timer starts over,
    // so that it does not leave alone for a view nobody else wants and sit out of consensus
    // until the next real view change. A quorum's votes cannot be forged, so a faulty leader
    // cannot hold the timer off this way.
    if (h > this.highestDecided) {
      this.highestDecided = h;
      if (!this.changing) this.deadlines.delete('progress');
    }
    let height = h;
    let want = hash;
    while (height > this.committedHeight) {
      const slot = this.slotIfInWindow(height);
      if (!slot) return;
      if (slot.decided && slot.decided !== want) return this.fatal(`two blocks decided at height ${height}: ${slot.decided} and ${want}`);
      if (slot.decided !== want) {
        slot.decided = want;
        if (height === h && view !== null) slot.decidedView = view;
        this.touch();
      }
      const b = this.validated(slot, want);
      if (!b) return;
      height--;
      want = b.parentHash;
    }
    if (height === this.committedHeight && want !== this.committedHash) this.fatal(`a decided block at ${height + 1} does not extend the committed chain`);
  }

  /** README "Commit": in height order, each certified, executed, and extending the tip. */
  private tryCommitNext(): void {
    while (!this.halted) {
      const h = this.committedHeight + 1;
      const slot = this.slots.get(h);
      const cert = slot?.certificate;
      if (!slot || !cert) return;
      const b = this.validated(slot, cert.blockHash);
      if (!b) {
        // Not at hand, or only a payload that fails (possibly a fake one): fetch the block. A
        // real one that fails here too is for the driver's sync to report (non-determinism).
        if (!this.withHash(slot, cert.blockHash).some((x) => x.validation !== 'bad')) this.requestSync(h);
        return;
      }
      if (b.parentHash !== this.committedHash) return this.fatal(`certified block at ${h} does not extend the committed chain`);
      this.out.commit.push({ height: h, hash: b.hash, certificate: cert });
      b.sent = false;
      this.advanceCommitted(h, b.hash, cert);
    }
  }

  /** README "Checkpoints": a certificate is the stable checkpoint; everything at or below it goes. */
  private advanceCommitted(h: number, hash: Hash, cert: CommitCertificate): void {
    const slot = this.slots.get(h);
    if (slot) for (const b of [...slot.blocks.values()]) if (b.hash !== hash) this.removeBlock(slot, b);
    this.slots.delete(h);
    this.committedHeight = h;
    this.committedHash = hash;
    this.committedCert = cert;
    this.recentCerts.set(h, cert);
    for (const k of this.recentCerts.keys()) if (k <= h - 4 * this.W) this.recentCerts.delete(k);
    this.committedHashes.set(h, hash);
    this.committedHashes.delete(h - COMMITTED_HASHES_KEPT);
    for (const map of [this.myPrepare, this.myPrecommit, this.myDecided, this.preparedCerts] as Map<number, unknown>[]) {
      for (const k of map.keys()) if (k <= h) map.delete(k);
    }
    for (const k of this.slots.keys()) if (k <= h) this.slots.delete(k);
    const next = this.slots.get(h + 1);
    if (next) for (const b of [...next.blocks.values()]) if (b.parentHash !== hash) this.removeBlock(next, b);
    this.out.prune = h;
    this.failedViews = 0;
    this.deadlines.delete('progress');
    this.myVC = null;
    this.proposeNext = Math.max(this.proposeNext, h + 1);
    if (this.syncTarget <= h) this.syncTarget = 0;
    this.replayNeeded = true;
    this.touch();
  }

  /** README "Pipelining": the leader keeps up to W heights in flight while there is work. */
  private tryPropose(): void {
    if (this.changing || this.building || !this.pendingWork) return;
    const h = Math.max(this.proposeNext, this.committedHeight + 1);
    if (h > this.committedHeight + this.W) return;
    const set = this.setAt(h);
    if (!set || leaderOf(set, this.view) !== this.me || !this.uniformSetUpTo(h)) return;
    if (this.nv && h <= this.nv.top) return;
    const slot = this.slot(h);
    if (slot.pp) {
      if (slot.pp.view === this.view) {
        this.proposeNext = h + 1;
        this.touch();
      }
      return;
    }
    const mine = this.myPrepare.get(h);
    if (mine && mine.view === this.view) return;
    const parentHash = h - 1 === this.committedHeight ? this.committedHash : this.slots.get(h - 1)?.pp?.hash;
    if (!parentHash || !this.parentUsable(h, parentHash)) return;
    this.building = { view: this.view, height: h, parentHash };
    this.out.build = { ...this.building };
    this.touch();
  }

  // ===========================================================================================
  // Certificates learnt from peers, and catch-up

  /**
   * A certificate from a peer (checked: a quorum signed its hash). Its number is only a claim
   * (chain.md's commit message does not cover the height), so it is kept aside until a block
   * with that hash is executed at that height (tryCertify), and otherwise asks for a sync, whose
   * driver checks the headers it fetches.
   */
  private learnCertificate(cert: CommitCertificate): void {
    const h = cert.number;
    if (h <= this.committedHeight) return;
    const slot = this.slotIfInWindow(h);
    if (slot && !slot.certificate && !slot.claimed.has(cert.blockHash) && slot.claimed.size < MAX_CLAIMED_PER_SLOT) {
      slot.claimed.set(cert.blockHash, cert);
      this.touch();
    }
    if (!slot || h > this.committedHeight + 1 || !this.validated(slot, cert.blockHash)) this.requestSync(h);
  }

  private requestSync(target: number): void {
    const t = Math.max(target, this.committedHeight + 1);
    if (t <= this.syncTarget || (this.now < this.syncQuietUntil && t <= this.syncTarget + this.W)) return;
    this.syncTarget = t;
    this.out.sync = { targetHeight: t };
    this.touch();
  }

  /** The driver found nothing more: the same target may be asked for again, after a pause. */
  private onSyncDone(): void {
    this.syncTarget = 0;
    this.syncQuietUntil = this.now + this.retransmitMs;
  }

  /**
   * Whether a committed height claimed by a VIEW-CHANGE agrees with this replica's chain: the
   * claim's certificate proves its hash decided, not at which height, so a Byzantine replica
   * could claim a higher one. 'unknown' above this replica's own committed height.
   */
  private checkClaim(height: number, hash: Hash): 'ok' | 'mismatch' | 'unknown' {
    if (height > this.committedHeight) return 'unknown';
    const mine = this.committedHashes.get(height);
    if (mine === undefined) return height < this.committedHeight - COMMITTED_HASHES_KEPT + 1 ? 'ok' : 'unknown';
    return mine === hash ? 'ok' : 'mismatch';
  }

  /** f + 1 peers voting beyond what this replica can buffer: at least one honest one is ahead. */
  private checkBehind(): void {
    const set = this.setAt(this.committedHeight + 1);
    if (!set) return;
    const limit = this.committedHeight + 2 * this.W;
    const ahead: number[] = [];
    for (const [p, h] of this.peerHeight) if (p !== this.me && set.includes(p) && h > limit) ahead.push(h);
    const k = kthLargest(ahead, maxFaulty(set.length) + 1);
    if (k !== null) this.requestSync(k - this.W);
  }

  // ===========================================================================================
  // View change

  private myViewChange(): ViewChange {
    if (this.myVC && this.myVC.view === this.view && this.myVC.committedHeight === this.committedHeight) return this.myVC;
    const prepared = [...this.preparedCerts.values()].filter((p) => p.height > this.committedHeight && p.view < this.view).sort((a, b) => a.height - b.height).slice(0, this.limits.maxPrepared);
    const vc: ViewChange = {
      type: 'view-change',
      view: this.view,
      replica: this.me,
      committedHeight: this.committedHeight,
      committedHash: this.committedHash,
      committedCert: this.committedHeight === 0 ? null : this.committedCert,
      prepared,
      sig: new Uint8Array(0),
    };
    vc.sig = this.config.crypto.sign(viewChangeSigningBytes(this.chainTag, vc));
    this.myVC = vc;
    return vc;
  }

  private sendViewChange(): void {
    this.lastVCSentAt = this.now;
    this.broadcast(this.myViewChange());
  }

  /** Forget the votes of the view being left; blocks, decisions and certificates stay. */
  private resetViewBound(): void {
    for (const s of this.slots.values()) {
      s.pp = null;
      s.ppMsg = null;
      s.prepares = new VoteTable();
      s.precommits = new VoteTable();
      s.localPrepared = false;
    }
  }

  private startViewChange(target: number, cause: ViewChangeCause): void {
    if (target <= this.view) return;
    this.out.viewChanges.push({ from: this.view, to: target, cause });
    this.view = target;
    this.changing = true;
    this.nv = null;
    this.failedViews++;
    this.building = null;
    this.resetViewBound();
    this.persist({ kind: 'view', view: target, changing: true });
    this.myVC = null;
    this.sendViewChange();
    this.deadlines.delete('progress');
    for (const [p, vc] of this.latestVC) if (vc.view < target) this.latestVC.delete(p);
    this.replayNeeded = true;
    this.touch();
  }

  /**
   * Joining: f + 1 peers seen in views above ours (from any message: honest replicas only send
   * in the view they are in) include an honest one, so move to the highest view that f + 1 of
   * them have reached. Fewer cannot drag anyone along.
   */
  private checkJoin(): void {
    const set = this.setAt(this.committedHeight + 1);
    if (!set || !set.includes(this.me)) return;
    const views: number[] = [];
    for (const p of set) {
      if (p === this.me) continue;
      const v = Math.max(this.peerView.get(p) ?? -1, this.latestVC.get(p)?.view ?? -1);
      if (v > this.view) views.push(v);
    }
    const w = kthLargest(views, maxFaulty(set.length) + 1);
    if (w !== null && w > this.view) this.startViewChange(w, 'join');
  }

  private tryFormNewView(): void {
    if (!this.changing) return;
    const mine = this.myViewChange();
    // Only view changes whose committed claim this replica could check: a higher claim is
    // fetched by sync first (learnCertificate asked for it), and a false one never counts.
    const all = [mine, ...[...this.latestVC.values()].filter((vc) => vc.view === this.view && vc.replica !== this.me && this.checkClaim(vc.committedHeight, vc.committedHash) === 'ok')];
    const set = this.setAt(selectReproposals(all).cStar + 1);
    if (!set || leaderOf(set, this.view) !== this.me) return;
    const members = all.filter((vc) => set.includes(vc.replica)).sort((a, b) => a.replica - b.replica);
    if (members.length < quorumSize(set.length)) return;
    const sel = selectReproposals(members);
    const set2 = this.setAt(sel.cStar + 1);
    if (!set2 || set2.join() !== set.join()) return;
    const reproposals: Reproposal[] = [];
    for (const p of sel.picks) {
      const withPayload = members.flatMap((vc) => vc.prepared).find((q) => q.height === p.height && q.hash === p.hash && q.digest === p.digest && q.payload);
      if (!withPayload) return;
      reproposals.push({ height: p.height, hash: p.hash, parentHash: p.parentHash, payload: withPayload.payload! });
    }
    const nv: NewView = { type: 'new-view', view: this.view, viewChanges: members.map(stripPayloads), reproposals, sig: new Uint8Array(0) };
    nv.sig = this.config.crypto.sign(newViewSigningBytes(this.chainTag, nv));
    this.broadcast(nv);
    this.enterView(nv, { ...sel, set, leader: this.me, reproposals });
  }

  private installNewView(msg: NewView, cStar: number): void {
    const byHeight = new Map(msg.reproposals.map((rp) => [rp.height, rp] as const));
    this.nv = { view: msg.view, msg, cStar, top: cStar + msg.reproposals.length, byHeight };
  }

  /** Entering a view through its NEW-VIEW: the re-proposals become that view's pre-prepares. */
  private enterView(msg: NewView, checked: CheckedNewView): void {
    // Entering the view this replica was changing to completes that change; a higher one is a move.
    if (msg.view > this.view) this.out.viewChanges.push({ from: this.view, to: msg.view, cause: 'new-view' });
    this.view = msg.view;
    this.changing = false;
    this.persist({ kind: 'new-view', view: msg.view, bytes: encodeMessage(msg) });
    this.persist({ kind: 'view', view: msg.view, changing: false });
    this.installNewView(msg, checked.cStar);
    this.resetViewBound();
    const nv = this.nv!;
    for (const [h, slot] of [...this.slots]) {
      if (h <= this.committedHeight) continue;
      const rp = nv.byHeight.get(h);
      const rpKey = rp ? contentKey(rp.hash, contentDigest(rp.parentHash, rp.payload)) : null;
      // Blocks at heights the new view does not fix are never going to be decided (README).
      if (h > checked.cStar) for (const b of [...slot.blocks.values()]) if (b.key !== rpKey && slot.decided !== b.hash && slot.certificate?.blockHash !== b.hash && !slot.claimed.has(b.hash)) this.removeBlock(slot, b);
      if (rp) this.installReproposal(slot, rp);
    }
    for (let h = this.committedHeight + 1; h <= this.committedHeight + this.W; h++) if (nv.byHeight.has(h)) this.slot(h);
    if (checked.certStar && checked.cStar > this.committedHeight) this.learnCertificate(checked.certStar);
    this.building = null;
    this.proposeNext = Math.max(nv.top, this.committedHeight) + 1;
    for (const [p, vc] of this.latestVC) if (vc.view <= this.view) this.latestVC.delete(p);
    this.deadlines.delete('progress');
    this.myVC = null;
    this.replayNeeded = true;
    this.touch();
  }
}

function deferKey(m: Message): string {
  switch (m.type) {
    case 'pre-prepare':
    case 'prepare':
    case 'precommit':
      return `${m.type}/${m.view}/${m.height}`;
    case 'commit':
      return `commit/${m.height}`;
    case 'new-view':
      return `new-view/${m.view}`;
    case 'view-change':
      return `view-change`;
    case 'certificate':
      return `certificate/${m.certificate.number}`;
  }
}
