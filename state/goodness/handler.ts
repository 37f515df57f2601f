// The shape every transaction type of goodness.md takes: who may send it, how its body is
// read, and what it does. The ledger does the rest (form, signature, chain, expiry, replay,
// sender's role and freeze) the same way for every type, so a new type is one module that
// exports a handler and one line in the table (tx-types.ts).
import type { Event } from '../../consensus/chain/types.ts';
import type { BlockContext, ValidatorUpdate } from '../machine.ts';
import { isAccountId, type TxFields } from '../tx.ts';
import type { AccountRecord } from './records.ts';
import type { Role } from './roles.ts';
import type { TxScope } from './state.ts';

export type Outcome = { ok: true; events: Event[]; validatorUpdates?: ValidatorUpdate[] } | { ok: false; code: number; log: string };

/** Told about every lot a transaction creates, so that the ledger can expire it on time. */
export interface LotTracker {
  track(expiresAt: number, account: string): void;
}

export interface HandlerContext {
  readonly block: BlockContext;
  readonly hash: string;
  readonly tx: TxFields;
  /** the sender's account before this transaction, if it has one */
  readonly sender: AccountRecord | undefined;
  /** reads see the block so far; writes are kept only when the outcome is ok */
  readonly state: TxScope;
  readonly lots: LotTracker;
}

export interface TxHandler<Body = unknown> {
  readonly type: string;
  /** 'anyone', or the roles of which the sender must hold at least one */
  readonly senders: 'anyone' | readonly Role[];
  /** Reads the body or says why it is not one (refused with BAD_BODY). */
  parseBody(body: Record<string, unknown>): Body | BodyError;
  execute(ctx: HandlerContext, body: Body): Outcome;
}

export class BodyError {
  constructor(readonly log: string) {}
}

export function ok(events: Event[], validatorUpdates?: ValidatorUpdate[]): Outcome {
  return validatorUpdates ? { ok: true, events, validatorUpdates } : { ok: true, events };
}

export function refused(code: number, log: string): Outcome {
  return { ok: false, code, log };
}

/** Erases the body type so handlers of different bodies share one table. */
export function defineHandler<Body>(handler: TxHandler<Body>): TxHandler<unknown> {
  return handler as unknown as TxHandler<unknown>;
}

/** A body with exactly these members (goodness.md bodies have no optional members). */
export function expectMembers(body: Record<string, unknown>, members: readonly string[]): BodyError | null {
  const keys = Object.keys(body);
  for (const m of members) if (!(m in body)) return new BodyError(`body.${m} is missing`);
  if (keys.length !== members.length) {
    const extra = keys.filter((k) => !members.includes(k));
    return new BodyError(`body has unknown members ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  }
  return null;
}

// ---- reading bodies: each reader throws a BodyError that `readBody` turns into the refusal

const ID_RE = /^[0-9A-Za-z_.-]{1,64}$/;
const HASH_RE = /^0x[0-9a-f]{64}$/;
export const MAX_TEXT_LENGTH = 200;
export const MAX_LIST_LENGTH = 100;

/** An object id of goodness.md: 1-64 characters of [0-9A-Za-z_.-]. */
export function isObjectId(value: unknown): value is string {
  return typeof value === 'string' && ID_RE.test(value);
}

/**
 * Checks the members, then builds the body with `build`, whose readers throw BodyError on
 * the first bad member.
 */
export function readBody<B>(body: Record<string, unknown>, members: readonly string[], build: (body: Record<string, unknown>) => B): B | BodyError {
  const missing = expectMembers(body, members);
  if (missing) return missing;
  try {
    return build(body);
  } catch (e) {
    if (e instanceof BodyError) return e;
    throw e;
  }
}

export function id(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (!isObjectId(v)) throw new BodyError(`body.${name} is an id: 1-64 characters of [0-9A-Za-z_.-]`);
  return v;
}

export function account(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (!isAccountId(v)) throw new BodyError(`body.${name} is an account id: 64 lowercase hex characters`);
  return v;
}

/** A non-negative integer (numbers are already known to be safe integers: tx.md). */
export function nat(body: Record<string, unknown>, name: string): number {
  const v = body[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BodyError(`body.${name} is a non-negative integer`);
  return v;
}

/** A positive integer. */
export function pos(body: Record<string, unknown>, name: string): number {
  const v = body[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new BodyError(`body.${name} is a positive integer`);
  return v;
}

export function bool(body: Record<string, unknown>, name: string): boolean {
  const v = body[name];
  if (typeof v !== 'boolean') throw new BodyError(`body.${name} is true or false`);
  return v;
}

/** Non-empty text of at most `max` characters. */
export function text(body: Record<string, unknown>, name: string, max = MAX_TEXT_LENGTH): string {
  const v = body[name];
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) throw new BodyError(`body.${name} is a non-empty string of at most ${max} characters`);
  return v;
}

/** A hash: 0x and 64 lowercase hex characters (tx.md: hashes carry 0x). */
export function hash(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || !HASH_RE.test(v)) throw new BodyError(`body.${name} is a hash: 0x and 64 lowercase hex characters`);
  return v;
}

/** A non-empty list of distinct ids. */
export function ids(body: Record<string, unknown>, name: string): string[] {
  const v = body[name];
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST_LENGTH) throw new BodyError(`body.${name} is a list of 1 to ${MAX_LIST_LENGTH} ids`);
  for (const item of v) if (!isObjectId(item)) throw new BodyError(`body.${name} holds ids: 1-64 characters of [0-9A-Za-z_.-]`);
  if (new Set(v).size !== v.length) throw new BodyError(`body.${name} lists an id twice`);
  return v as string[];
}

/** A non-empty list of non-empty strings. */
export function texts(body: Record<string, unknown>, name: string, max = MAX_TEXT_LENGTH): string[] {
  const v = body[name];
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST_LENGTH) throw new BodyError(`body.${name} is a list of 1 to ${MAX_LIST_LENGTH} strings`);
  for (const item of v) {
    if (typeof item !== 'string' || item.trim() === '' || item.length > max) throw new BodyError(`body.${name} holds non-empty strings of at most ${max} characters`);
  }
  return v as string[];
}

/** a × b when it is a safe integer, else null (a sum or price too large to be exact). */
export function safeProduct(a: number, b: number): number | null {
  const p = a * b;
  return Number.isSafeInteger(p) ? p : null;
}
