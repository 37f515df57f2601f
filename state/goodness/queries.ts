// Answers to rpc.md `query` over the committed state (goodness.md "Queries"). A caller who may
// not see a path gets -32007, never a partial answer.
import { QueryError, type QueryAnswer } from '../machine.ts';
import { isAccountId } from '../tx.ts';
import { accountKey, type AccountRecord } from './records.ts';
import type { Role } from './roles.ts';
import type { StateView } from './state.ts';

/** Kinds of object whose transactions are not implemented yet: none can exist. */
const NOT_YET_KINDS = new Set(['scheme', 'pool', 'offer', 'deed', 'redemption', 'consent', 'batch']);
const ID_RE = /^[0-9A-Za-z_.-]{1,64}$/;

function hasRole(account: AccountRecord | undefined, roles: readonly Role[]): boolean {
  return account !== undefined && account.roles.some((r) => roles.includes(r));
}

export function answerQuery(path: string, caller: string | null, state: StateView, height: number): QueryAnswer {
  const parts = path.split('/');
  const callerAccount = caller ? (state.get(accountKey(caller)) as AccountRecord | undefined) : undefined;
  const isSupervisor = hasRole(callerAccount, ['supervisor']);

  if (parts[0] === 'account' && (parts.length === 2 || (parts.length === 3 && parts[2] === 'deeds'))) {
    const id = parts[1]!;
    if (!isAccountId(id)) throw new QueryError(-32602, 'an account id is 64 lowercase hex characters');
    const account = state.get(accountKey(id)) as AccountRecord | undefined;
    if (!account) throw new QueryError(-32004, `no account ${id}`);
    const isOwner = caller === id;
    if (parts.length === 3) {
      // Distributors and issuers see their own deeds of this account; none exist yet.
      if (!isOwner && !isSupervisor && !hasRole(callerAccount, ['distributor', 'issuer'])) {
        throw new QueryError(-32007, `only the owner, the distributors and issuers involved and the supervisor see ${path}`);
      }
      return { height, value: [] };
    }
    const value: Record<string, unknown> = { id: account.id, roles: account.roles, status: account.status, points: account.points };
    if (isOwner || isSupervisor) value.lots = account.lots;
    return { height, value };
  }

  if (parts.length === 2 && NOT_YET_KINDS.has(parts[0]!) && ID_RE.test(parts[1]!)) {
    throw new QueryError(-32004, `no ${parts[0]} ${parts[1]}`);
  }
  if (parts.length === 3 && parts[0] === 'audit' && parts[1] === 'scheme' && ID_RE.test(parts[2]!)) {
    throw new QueryError(-32004, `no scheme ${parts[2]}`);
  }
  const log = /^audit\/log(\?from=(0|[1-9][0-9]*))?$/.exec(path);
  if (log) {
    if (!isSupervisor) throw new QueryError(-32007, 'only the supervisor sees the audit log');
    // Governance and supervision actions are not implemented yet: the log is empty.
    return { height, value: [] };
  }
  throw new QueryError(-32602, `unknown query path ${JSON.stringify(path)}`);
}
