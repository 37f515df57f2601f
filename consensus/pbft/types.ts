// The PBFT replica's boundary: what the driver feeds it (events), what it asks of the driver
// (Ready), what it persists, and the messages replicas exchange. Hashes are `0x` + 64 lowercase
// hex everywhere, as in the chain store; raw bytes only inside message encodings.
import type { CommitCertificate } from '../chain/types.ts';
import type { VoteCrypto } from './vote-crypto.ts';

export type { CommitCertificate };

/** `0x` + 64 lowercase hex */
export type Hash = string;

// ---------------------------------------------------------------------------------------------
// Messages

/** A proposal; its signature is the leader's PREPARE (same signing bytes), so it counts as one. */
export interface PrePrepare {
  type: 'pre-prepare';
  view: number;
  height: number;
  hash: Hash;
  parentHash: Hash;
  payload: Uint8Array;
  sig: Uint8Array;
}

/** "I executed block `hash` at (view, height) and it is valid." `digest` binds parent and payload. */
export interface Prepare {
  type: 'prepare';
  view: number;
  height: number;
  hash: Hash;
  digest: Hash;
  sig: Uint8Array;
}

/**
 * "I hold a prepared certificate for `hash` at (view, height)." Classic PBFT's COMMIT. Unsigned:
 * the channel authenticates its sender, and no one ever shows it to a third party (README.md).
 */
export interface Precommit {
  type: 'precommit';
  view: number;
  height: number;
  hash: Hash;
}

/**
 * "Block `hash` is decided." Signed over chain.md's view-independent commit message, so a quorum
 * of these aggregates into the block's certificate. Sent only once the block is decided (a quorum
 * of PRECOMMITs in one view): see README.md for why this is a third round.
 */
export interface Commit {
  type: 'commit';
  height: number;
  hash: Hash;
  sig: Uint8Array;
}

/** A quorum of PREPAREs (the pre-prepare counted as the leader's) for one block in one view. */
export interface PreparedCert {
  view: number;
  height: number;
  hash: Hash;
  parentHash: Hash;
  digest: Hash;
  /** ascending validator indexes */
  signers: number[];
  aggregate: Uint8Array;
  /** the block's payload; present in a VIEW-CHANGE sent directly, stripped inside a NEW-VIEW */
  payload: Uint8Array | null;
}

export interface ViewChange {
  type: 'view-change';
  /** the view the sender moves to */
  view: number;
  replica: number;
  committedHeight: number;
  committedHash: Hash;
  /** null exactly when committedHeight is 0 (genesis has no certificate) */
  committedCert: CommitCertificate | null;
  /** the sender's highest-view prepared certificate at each height above committedHeight, ascending */
  prepared: PreparedCert[];
  sig: Uint8Array;
}

export interface Reproposal {
  height: number;
  hash: Hash;
  parentHash: Hash;
  payload: Uint8Array;
}

export interface NewView {
  type: 'new-view';
  view: number;
  /** a quorum of VIEW-CHANGEs for `view`, payloads stripped, ascending by replica */
  viewChanges: ViewChange[];
  /** what the VIEW-CHANGEs force, recomputed and checked by every receiver */
  reproposals: Reproposal[];
  /** the leader of `view`'s signature; a NEW-VIEW may be forwarded by anyone */
  sig: Uint8Array;
}

/** A commit certificate, sent to a peer that shows it is behind. */
export interface CertificateMsg {
  type: 'certificate';
  certificate: CommitCertificate;
}

export type Message = PrePrepare | Prepare | Precommit | Commit | ViewChange | NewView | CertificateMsg;

// ---------------------------------------------------------------------------------------------
// Persisted records: written by the driver before it sends the messages of the same Ready.

export type PersistRecord =
  | { kind: 'view'; view: number; changing: boolean }
  | { kind: 'new-view'; view: number; bytes: Uint8Array }
  | { kind: 'prepare'; height: number; view: number; hash: Hash; digest: Hash }
  | { kind: 'precommit'; height: number; view: number; hash: Hash }
  | { kind: 'prepared'; height: number; cert: PreparedCert }
  | { kind: 'decided'; height: number; hash: Hash };

/** What a restarted replica is built from: its persisted records plus the chain store's tip. */
export interface PersistedState {
  committedHeight: number;
  committedHash: Hash;
  /** the tip's certificate (null at genesis) */
  committedCertificate: CommitCertificate | null;
  records: PersistRecord[];
}

// ---------------------------------------------------------------------------------------------
// Configuration

export interface Limits {
  maxPayloadBytes: number;
  maxMessageBytes: number;
  maxSignatureBytes: number;
  maxSigners: number;
  maxViewChanges: number;
  maxPrepared: number;
  /** messages buffered per peer for a view or height not reached yet */
  maxDeferredPerPeer: number;
  /** a vote or proposal for a view further ahead than this is dropped and counted (not a fault) */
  maxViewAhead: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxPayloadBytes: 1 << 20,
  maxMessageBytes: 32 << 20,
  maxSignatureBytes: 128,
  maxSigners: 1024,
  maxViewChanges: 1024,
  maxPrepared: 64,
  maxDeferredPerPeer: 32,
  maxViewAhead: 10_000,
};

export interface ReplicaConfig {
  /** this replica's validator index */
  index: number;
  /** the chain id: binds view-bound votes to one chain */
  chain: string;
  /** hash of block 0 (a VIEW-CHANGE from a replica at height 0 names it) */
  genesisHash: Hash;
  /**
   * Validator indexes that sign block `height` (any order; the core sorts). Null when the driver
   * does not know it yet: the core then waits (pipelining never crosses an unknown set).
   */
  validatorsAt(height: number): readonly number[] | null;
  crypto: VoteCrypto;
  /** heights in flight above the committed height (W) */
  window?: number;
  /** view-change timeout before any doubling (ms) */
  baseTimeoutMs: number;
  /** the timeout doubles at most this many times while views fail */
  maxTimeoutDoublings?: number;
  /** how long a stuck step waits before its messages are sent again (ms) */
  retransmitMs?: number;
  limits?: Partial<Limits>;
}

// ---------------------------------------------------------------------------------------------
// Events

export type TimerId = 'progress' | 'retransmit';

export type ReplicaEvent =
  | { type: 'start' }
  /** bytes from validator `from` (the transport authenticates it); -1 for a peer that is not one */
  | { type: 'message'; from: number; bytes: Uint8Array }
  | { type: 'timer'; id: TimerId }
  /** the answer to Ready.build; `block` null when there is nothing to propose */
  | { type: 'proposalBuilt'; view: number; height: number; parentHash: Hash; block: { hash: Hash; payload: Uint8Array } | null; morePending?: boolean }
  /** the answer to a Ready.validate request */
  | { type: 'validated'; height: number; hash: Hash; ok: boolean }
  /** the driver applied a block fetched by sync (its header and certificate checked), at committedHeight + 1 */
  | { type: 'syncedCommit'; height: number; hash: Hash; parentHash: Hash; certificate: CommitCertificate }
  /** the driver stopped syncing: its peers had nothing more (a later sync request may be retried) */
  | { type: 'syncDone' }
  /** whether the pool holds transactions not yet in a block */
  | { type: 'pendingWork'; pending: boolean };

// ---------------------------------------------------------------------------------------------
// Ready: the effects of one step

export interface Outgoing {
  /** a validator index, or every other validator */
  to: number | 'all';
  msg: Message;
  bytes: Uint8Array;
}

export interface BuildRequest {
  view: number;
  height: number;
  parentHash: Hash;
}

export interface ValidateRequest {
  height: number;
  hash: Hash;
  parentHash: Hash;
  payload: Uint8Array;
  /**
   * The validator whose PRE-PREPARE of the current view asks for this block (the view's
   * leader, as the core checked): by proposing it, an honest leader vouches that it verified
   * the block's transactions. Absent when the block is wanted for another reason (decided,
   * claimed in a view change), which vouches for nothing here.
   */
  proposedBy?: number;
}

export interface CommitDecision {
  height: number;
  hash: Hash;
  certificate: CommitCertificate;
}

export type DropReason =
  | 'malformed'
  | 'not-validator'
  | 'bad-signature'
  | 'wrong-leader'
  | 'equivocation'
  | 'bad-parent'
  | 'conflicts-new-view'
  | 'invalid-proposal'
  | 'invalid-certificate'
  | 'invalid-view-change'
  | 'invalid-new-view'
  | 'far-future'
  | 'buffer-full';

export interface Drop {
  from: number;
  reason: DropReason;
  /** true when only a faulty peer sends this (score it down); false for overload */
  fault: boolean;
  detail?: string;
}

/**
 * Why the replica's view moved (README "View change"): its progress timer expired in a view with
 * work pending (the leader made no progress); its timer expired while changing view (no valid
 * NEW-VIEW came: the next leader is down too); f + 1 peers were seen in a higher view (joining);
 * a valid NEW-VIEW for a higher view than its own was entered; or a restart resumed a persisted
 * view above 0.
 */
export type ViewChangeCause = 'timeout' | 'view-change-timeout' | 'join' | 'new-view' | 'restart';

export const VIEW_CHANGE_CAUSES: readonly ViewChangeCause[] = ['timeout', 'view-change-timeout', 'join', 'new-view', 'restart'];

/** One move of the view number (a view entered through the NEW-VIEW of the view already being changed to is not a move). */
export interface ViewChangeReport {
  /** the view left; 0 for a restart (a fresh core starts in view 0) */
  from: number;
  to: number;
  cause: ViewChangeCause;
}

export interface Ready {
  /** write durably, all in one batch, BEFORE sending anything in `send` */
  persist: PersistRecord[];
  send: Outgoing[];
  /** build block `height` on `parentHash` and answer with proposalBuilt */
  build: BuildRequest | null;
  /** execute each block on its parent's (speculative or committed) state; answer with validated */
  validate: ValidateRequest[];
  /** commit these, in order, with their certificates; each was validated or built before */
  commit: CommitDecision[];
  /** the core will never commit these: drop their speculative state and their descendants' */
  abandon: { height: number; hash: Hash }[];
  /** (re)arm each timer to fire at `at` (ms, the clock `now` comes from) */
  timers: { id: TimerId; at: number }[];
  cancelTimers: TimerId[];
  /** fetch certified blocks from peers up to at least this height; report each as syncedCommit */
  sync: { targetHeight: number } | null;
  /** persisted records at heights <= this are dead: delete them once that height is durable */
  prune: number | null;
  dropped: Drop[];
  /** each move of the view in this step, in order (for metrics and logs; nothing to carry out) */
  viewChanges: ViewChangeReport[];
  /** the core found a contradiction it cannot resolve (more than f faults, or a local bug): stop */
  fatal: string | null;
}

export function emptyReady(): Ready {
  return { persist: [], send: [], build: null, validate: [], commit: [], abandon: [], timers: [], cancelTimers: [], sync: null, prune: null, dropped: [], viewChanges: [], fatal: null };
}

export interface ReplicaStatus {
  view: number;
  changingView: boolean;
  leader: number | null;
  committedHeight: number;
  committedHash: Hash;
  failedViews: number;
  timeoutMs: number;
}
