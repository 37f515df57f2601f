// Answers to rpc.md `query` over the committed state (goodness.md "Queries"). Each path says
// who may see it; a caller who may not gets -32007, never a partial answer. `caller` is the
// account proven by the query's auth, or null for an anonymous caller (public figures only).
import { QueryError, type QueryAnswer } from '../machine.ts';
import { isAccountId } from '../tx.ts';
import { auditFrom } from './audit.ts';
import { counterparties } from './clearing.ts';
import { isObjectId } from './handler.ts';
import { lotsOf } from './lot-pages.ts';
import {
  accountKey,
  batchKey,
  batchProgressKey,
  consentKey,
  deedKey,
  offerKey,
  poolKey,
  redemptionKey,
  schemeKey,
  type AccountRecord,
  type BatchProgress,
  type BatchRecord,
  type ConsentRecord,
  type DeedRecord,
  type RedemptionRecord,
  type SchemeRecord,
} from './records.ts';
import { holds } from './roles.ts';
import type { StateView } from './state.ts';

const PUBLIC_KINDS: Record<string, (id: string) => string> = { scheme: schemeKey, pool: poolKey, offer: offerKey };

function notPermitted(path: string, who: string): QueryError {
  return new QueryError(-32007, `only ${who} may see ${path}`);
}

function notFound(kind: string, id: string): QueryError {
  return new QueryError(-32004, `no ${kind} ${id}`);
}

/** The figures of invariants 1-3 for one scheme. */
export function schemeAudit(s: SchemeRecord) {
  return {
    scheme: s.scheme,
    issued: s.issued,
    live: s.live,
    redeemed: s.redeemed,
    expired: s.expired,
    clawedBack: s.clawedBack,
    budget: s.budget,
    funded: s.funded,
    pointValue: s.pointValue,
    pending: s.pending,
    shortfall: s.shortfall,
  };
}

function issuerOf(state: StateView, scheme: string): string {
  return (state.get(schemeKey(scheme)) as SchemeRecord).issuer;
}

/** The committed state a query reads, with the ledger's index of deeds by user. */
export interface QueryState extends StateView {
  /** ids of the deeds naming `user`, oldest first */
  deedsOf(user: string): readonly string[];
}

export function answerQuery(path: string, caller: string | null, state: QueryState, height: number): QueryAnswer {
  const answer = (value: unknown): QueryAnswer => ({ height, value });
  const parts = path.split('/');
  const callerAccount = caller ? (state.get(accountKey(caller)) as AccountRecord | undefined) : undefined;
  const isSupervisor = holds(callerAccount, 'supervisor');
  const [kind, id] = parts;

  if (kind === 'account' && (parts.length === 2 || (parts.length === 3 && parts[2] === 'deeds'))) {
    if (!isAccountId(id)) throw new QueryError(-32602, 'an account id is 64 lowercase hex characters');
    const account = state.get(accountKey(id)) as AccountRecord | undefined;
    if (!account) throw notFound('account', id);
    const isOwner = caller === id;
    if (parts.length === 3) return answer(deedsOf(state, path, account, caller, isOwner || isSupervisor, callerAccount));
    const value: Record<string, unknown> = { id: account.id, roles: account.roles, status: account.status, points: account.points };
    if (isOwner || isSupervisor) value.lots = lotsOf(state, account);
    return answer(value);
  }

  if (parts.length === 2 && kind !== undefined && isObjectId(id)) {
    const publicKey = Object.hasOwn(PUBLIC_KINDS, kind) ? PUBLIC_KINDS[kind] : undefined;
    if (publicKey) {
      const record = state.get(publicKey(id));
      if (record === undefined) throw notFound(kind, id);
      return answer(record);
    }
    switch (kind) {
      case 'deed': {
        const d = state.get(deedKey(id)) as DeedRecord | undefined;
        if (!d) throw notFound(kind, id);
        if (!isSupervisor && caller !== d.user && caller !== d.distributor && caller !== issuerOf(state, d.scheme)) {
          throw notPermitted(path, 'its user, distributor and issuer, and the supervisor');
        }
        return answer(d);
      }
      case 'consent': {
        const c = state.get(consentKey(id)) as ConsentRecord | undefined;
        if (!c) throw notFound(kind, id);
        if (!isSupervisor && caller !== c.user && caller !== c.distributor) throw notPermitted(path, 'its user and distributor, and the supervisor');
        return answer(c);
      }
      case 'redemption': {
        const r = state.get(redemptionKey(id)) as RedemptionRecord | undefined;
        if (!r) throw notFound(kind, id);
        if (!isSupervisor && caller !== r.user && caller !== r.exchange && caller !== r.sponsor) {
          throw notPermitted(path, 'its user, exchange and sponsor, and the supervisor');
        }
        return answer(r);
      }
      case 'batch': {
        const b = state.get(batchKey(id)) as BatchRecord | undefined;
        if (!b) throw notFound(kind, id);
        if (!isSupervisor && caller !== b.clearing && !(caller !== null && counterparties(b).has(caller))) {
          throw notPermitted(path, 'its counterparties, its clearing provider and the supervisor');
        }
        const progress = state.get(batchProgressKey(id)) as BatchProgress;
        return answer({ ...b, ...progress });
      }
    }
  }

  if (parts.length === 3 && kind === 'audit' && id === 'scheme' && isObjectId(parts[2])) {
    const s = state.get(schemeKey(parts[2])) as SchemeRecord | undefined;
    if (!s) throw notFound('scheme', parts[2]);
    return answer(schemeAudit(s));
  }

  const log = /^audit\/log(\?from=(0|[1-9][0-9]{0,15}))?$/.exec(path);
  if (log) {
    if (!isSupervisor) throw notPermitted('the audit log', 'the supervisor');
    return answer(auditFrom(state, log[2] === undefined ? 0 : Number(log[2])));
  }
  throw new QueryError(-32602, `unknown query path ${JSON.stringify(path)}`);
}

/**
 * The deeds naming an account, oldest first: all of them for the owner and the supervisor; for
 * a distributor or issuer, those it submitted or whose scheme it issues.
 */
function deedsOf(state: QueryState, path: string, account: AccountRecord, caller: string | null, seesAll: boolean, callerAccount: AccountRecord | undefined): DeedRecord[] {
  if (!seesAll && !holds(callerAccount, 'distributor', 'issuer')) {
    throw notPermitted(path, 'the owner, the distributors and issuers involved, and the supervisor');
  }
  const out: DeedRecord[] = [];
  for (const id of state.deedsOf(account.id)) {
    const d = state.get(deedKey(id)) as DeedRecord;
    if (seesAll || d.distributor === caller || issuerOf(state, d.scheme) === caller) out.push(d);
  }
  // Oldest first; deeds of one block in id order, so that every node answers alike.
  return out.sort((a, b) => a.submittedAt - b.submittedAt || (a.deed < b.deed ? -1 : a.deed > b.deed ? 1 : 0));
}
