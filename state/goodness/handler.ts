// The shape every transaction type of goodness.md takes: who may send it, how its body is
// read, and what it does. The ledger does the rest (form, signature, chain, expiry, replay,
// sender's role and freeze) the same way for every type, so a new type is one module that
// exports a handler and one line in the table (tx-types.ts).
import type { Event } from '../../consensus/chain/types.ts';
import type { BlockContext } from '../machine.ts';
import type { TxFields } from '../tx.ts';
import type { AccountRecord } from './records.ts';
import type { Role } from './roles.ts';
import type { TxScope } from './state.ts';

export type Outcome = { ok: true; events: Event[] } | { ok: false; code: number; log: string };

export interface HandlerContext {
  readonly block: BlockContext;
  readonly hash: string;
  readonly tx: TxFields;
  /** the sender's account before this transaction, if it has one */
  readonly sender: AccountRecord | undefined;
  /** reads see the block so far; writes are kept only when the outcome is ok */
  readonly state: TxScope;
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

export function ok(events: Event[]): Outcome {
  return { ok: true, events };
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
