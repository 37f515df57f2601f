// What the ledger keeps, and under which keys. Keys are strings with a short kind prefix; values
// are JSON (stored as UTF-8 JCS). Records are immutable once read: a handler that changes one
// writes a new object, so a refused transaction cannot leave half-changed state behind.
import type { Role } from './roles.ts';

export type AccountStatus = 'active' | 'frozen';

/** A lot of issued points (goodness.md "Earning"); none exist until deeds are implemented. */
export interface Lot {
  scheme: string;
  points: number;
  deed: string;
  expiresAt: number;
}

export interface AccountRecord {
  id: string;
  roles: Role[];
  status: AccountStatus;
  /** live points */
  points: number;
  lots: Lot[];
  /** organisations only: the name governance registered */
  name?: string;
}

/** The stored {height, appHash} of the last executed block. */
export const META_KEY = '_meta';
/** The governors, sorted: governance counts votes against this list. */
export const GOVERNORS_KEY = 'governors';

export function accountKey(id: string): string {
  return 'a/' + id;
}

/** Replay record of (from, nonce): its value is the transaction's `expires`. */
export function nonceKey(from: string, nonce: string): string {
  return 'n/' + from + '/' + nonce;
}

export const NONCE_PREFIX = 'n/';
