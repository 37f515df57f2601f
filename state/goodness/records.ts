// What the ledger keeps, and under which keys. Keys are strings with a short kind prefix; values
// are JSON (stored as UTF-8 JCS). Records are immutable once read: a handler that changes one
// writes a new object, so a refused transaction cannot leave half-changed state behind.
// Records name their own id with the field name goodness.md uses for it (`scheme`, `deed`, ...),
// except accounts, which use `id` as the page does.
import type { Role } from './roles.ts';

export type AccountStatus = 'active' | 'frozen';

/** A lot of issued points (goodness.md "Earning"); an account holds at most one lot per deed. */
export interface Lot {
  deed: string;
  expiresAt: number;
  points: number;
  scheme: string;
}

/** Points a user earned under one scheme on one UTC day (invariant 6). */
export interface DailyCount {
  day: number;
  points: number;
}

/**
 * One page of an account's lots as the account's index names it (lot-pages.ts): its separator
 * (expiresAt and, only when the expiry alone does not separate it from the previous page, a deed
 * id) and the page's number (its key is lotPageKey(account, page)). A tuple, not an object: the
 * index is written with every change of the account, and a tuple is half the bytes.
 */
export type PageRef = [expiresAt: number, page: number, deed?: string];

export interface AccountRecord {
  id: string;
  roles: Role[];
  status: AccountStatus;
  /** live points: the sum of its lots */
  points: number;
  /**
   * Its lots while they fit one page (lot-pages.ts), sorted by (expiresAt, deed): redemptions and
   * expiry burn from the front; empty when they are in `pages`.
   */
  lots: Lot[];
  /** When the lots take more than one page: the index of their pages, stored under keys of their own. */
  pages?: PageRef[];
  /** organisations only: the name governance registered */
  name?: string;
  /** users with deeds: points counted against each scheme's daily cap, by scheme id */
  daily?: Record<string, DailyCount>;
}

export interface ConsentRecord {
  consent: string;
  distributor: string;
  expiresAt: number;
  grantedAt: number;
  revokedAt: number | null;
  scheme: string;
  status: 'active' | 'revoked';
  user: string;
}

export type SchemeStatus = 'draft' | 'approved' | 'suspended';

export interface SchemeRecord {
  scheme: string;
  issuer: string;
  name: string;
  unit: string;
  pointsPerUnit: number;
  dailyCap: number;
  /** minor currency units one point is worth */
  pointValue: number;
  lotValidityDays: number;
  claimWindowDays: number;
  autoIssue: boolean;
  status: SchemeStatus;
  frozen: boolean;
  /** sorted account ids */
  distributors: string[];
  /** points the confirmed funding pays for: sum over confirmations of amount / pointValue */
  budget: number;
  /** confirmed funding of the scheme's pools, minor units */
  funded: number;
  /** points of issued deeds (reversed ones included: they were issued) */
  issued: number;
  /** points of deeds waiting for deed.issue: held against the budget */
  pending: number;
  live: number;
  redeemed: number;
  expired: number;
  clawedBack: number;
  /** points of reversed deeds that had already been spent */
  shortfall: number;
}

export interface PoolRecord {
  pool: string;
  scheme: string;
  sponsor: string;
  /** promised, minor units */
  amount: number;
  confirmed: number;
  /** value of redemptions not yet settled (pending or fulfilled) */
  reserved: number;
  settled: number;
  /** the clearing provider that confirmed the pool's funds; only it may confirm more and clear */
  clearing: string | null;
  /** exchanges with offers paid from the pool, sorted (role separation) */
  exchanges: string[];
  paymentRefs: string[];
  frozen: boolean;
  /** fulfilled redemptions appended to the pool's `pf/` list, and how many of them are batched */
  fulfilled: number;
  batched: number;
}

export type DeedStatus = 'pending' | 'issued' | 'rejected' | 'reversed';

export interface DeedRecord {
  deed: string;
  user: string;
  scheme: string;
  distributor: string;
  consent: string;
  quantity: number;
  occurredAt: number;
  evidenceHash: string;
  /** points after the daily-cap and budget cuts */
  points: number;
  /** quantity × pointsPerUnit before the cuts */
  requested: number;
  status: DeedStatus;
  submittedAt: number;
  /** UTC day (block time / 86 400 000) the deed counts against the daily cap */
  day: number;
  issuedAt: number | null;
  /** set once issued: when its lot expires */
  expiresAt: number | null;
  /** points of its lot that expired unspent */
  expired: number;
  /** points taken back by deed.reverse (and by cancels of redemptions that had spent them) */
  clawedBack: number;
  reversedAt: number | null;
  reason: string | null;
}

export interface OfferRecord {
  offer: string;
  exchange: string;
  pool: string;
  scheme: string;
  pricePoints: number;
  unitValue: number;
  stock: number;
  approved: boolean;
  frozen: boolean;
}

/** A part of a lot that a redemption burned: what a cancel puts back. */
export interface BurnedPart {
  deed: string;
  expiresAt: number;
  points: number;
}

export type RedemptionStatus = 'pending' | 'fulfilled' | 'cancelled';

export interface RedemptionRecord {
  redemption: string;
  user: string;
  offer: string;
  exchange: string;
  pool: string;
  sponsor: string;
  scheme: string;
  quantity: number;
  points: number;
  /** unitValue × quantity, reserved in the pool */
  value: number;
  burned: BurnedPart[];
  status: RedemptionStatus;
  createdAt: number;
  batch: string | null;
}

export interface BatchLine {
  sponsor: string;
  exchange: string;
  amount: number;
  redemptions: number;
}

/** A closed batch: written once by clearing.close and never again (invariant 7). */
export interface BatchRecord {
  batch: string;
  clearing: string;
  pools: string[];
  /** one per (sponsor, exchange), sorted by sponsor then exchange */
  lines: BatchLine[];
  /** per pool, what settling moves from reserved to settled */
  poolAmounts: { pool: string; amount: number }[];
  redemptions: string[];
  total: number;
  closedAt: number;
}

export type BatchStatus = 'closed' | 'settled' | 'confirmed' | 'disputed';

/** What happens to a batch after it is closed. */
export interface BatchProgress {
  batch: string;
  status: BatchStatus;
  paymentRefs: string[];
  settledAt: number | null;
  confirmedBy: string[];
  disputedBy: string[];
}

export type ProposalStatus = 'open' | 'executed' | 'rejected' | 'failed';

export interface ProposalRecord {
  proposal: string;
  proposer: string;
  action: Record<string, unknown>;
  /** sorted account ids */
  approvals: string[];
  rejections: string[];
  status: ProposalStatus;
  proposedAt: number;
  closedAt: number | null;
  /** why a passed action could not be applied */
  reason: string | null;
}

export interface ValidatorSetRecord {
  /** the index the next validator.add takes: indexes are never reused */
  next: number;
  validators: { index: number; peerId: string; blsPublicKey: string; pop: string }[];
}

/** One governance or supervision action (audit/log). */
export interface AuditEntry {
  seq: number;
  height: number;
  time: number;
  tx: string;
  from: string;
  type: string;
  detail: Record<string, unknown>;
}

/** The stored {height, appHash} of the last executed block. */
export const META_KEY = '_meta';
/** The governors, sorted: governance counts votes against this list. */
export const GOVERNORS_KEY = 'governors';
export const VALIDATORS_KEY = 'validators';
/** How many audit entries exist (they are `l/<seq>`). */
export const AUDIT_COUNT_KEY = 'log';

export const accountKey = (id: string): string => 'a/' + id;
/**
 * Replay record of (from, nonce): its value is the transaction's `expires`. The nonce comes
 * first: nonces differ in their first characters, so a block's keys sort fast.
 */
export const nonceKey = (from: string, nonce: string): string => 'n/' + nonce + '/' + from;
export const NONCE_PREFIX = 'n/';
export const ACCOUNT_PREFIX = 'a/';
export const proposalKey = (id: string): string => 'p/' + id;
export const consentKey = (id: string): string => 'k/' + id;
export const schemeKey = (id: string): string => 's/' + id;
export const poolKey = (id: string): string => 'f/' + id;
export const deedKey = (id: string): string => 'd/' + id;
export const evidenceKey = (scheme: string, evidenceHash: string): string => 'e/' + scheme + '/' + evidenceHash;
export const DEED_PREFIX = 'd/';
export const offerKey = (id: string): string => 'o/' + id;
export const redemptionKey = (id: string): string => 'r/' + id;
/** The i-th fulfilled redemption of a pool (0-based): value is the redemption id. */
export const poolFulfilledKey = (pool: string, i: number): string => 'pf/' + pool + '/' + i;
export const batchKey = (id: string): string => 'b/' + id;
export const batchProgressKey = (id: string): string => 'bs/' + id;
export const auditKey = (seq: number): string => 'l/' + seq;
/** A page of an account's lots (lot-pages.ts): its value is the page's lots, sorted by (expiresAt, deed). */
export const lotPageKey = (account: string, page: number): string => 'lp/' + account + '/' + page;
export const LOT_PAGE_PREFIX = 'lp/';

export const DAY_MS = 86_400_000;

export function utcDay(time: number): number {
  return Math.floor(time / DAY_MS);
}

/**
 * An account record with its members in JCS order (canonical.ts serialises such records with
 * JSON.stringify). Use it wherever an account gains a member; spreading an existing record
 * keeps its order.
 */
export function accountRecord(a: AccountRecord): AccountRecord {
  const out = {} as AccountRecord;
  if (a.daily !== undefined) out.daily = a.daily;
  out.id = a.id;
  out.lots = a.lots;
  if (a.name !== undefined) out.name = a.name;
  if (a.pages !== undefined) out.pages = a.pages;
  out.points = a.points;
  out.roles = a.roles;
  out.status = a.status;
  return out;
}
