// Accounts (goodness.md "Accounts and consent"): `account.open` opens the sender's good
// account, once. Consent comes later in this module.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { defineHandler, expectMembers, ok, refused } from './handler.ts';
import { accountKey, type AccountRecord } from './records.ts';

export const accountOpen = defineHandler<Record<string, never>>({
  type: 'account.open',
  senders: 'anyone',
  parseBody: (body) => expectMembers(body, []) ?? {},
  execute(ctx) {
    const id = ctx.tx.from;
    // An organisation or governor already has its account from governance.
    if (ctx.sender) return refused(Code.ALREADY_EXISTS, `account ${id} already exists`);
    const account: AccountRecord = { id, roles: ['user'], status: 'active', points: 0, lots: [] };
    ctx.state.put(accountKey(id), account);
    return ok([event('account.open', { account: id })]);
  },
});
