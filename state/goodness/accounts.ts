// Accounts and consent (goodness.md "Accounts and consent"): `account.open` opens the sender's
// good account, once; a user grants a distributor consent to submit its deeds under one scheme
// until a time, and may revoke it.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { account, defineHandler, expectMembers, id, nat, ok, readBody, refused } from './handler.ts';
import { accountKey, accountRecord, consentKey, schemeKey, type AccountRecord, type ConsentRecord, type SchemeRecord } from './records.ts';
import { holds } from './roles.ts';

export const accountOpen = defineHandler<Record<string, never>>({
  type: 'account.open',
  senders: 'anyone',
  parseBody: (body) => expectMembers(body, []) ?? {},
  execute(ctx) {
    const id = ctx.tx.from;
    // An organisation or governor already has its account from governance.
    if (ctx.sender) return refused(Code.ALREADY_EXISTS, `account ${id} already exists`);
    const account = accountRecord({ id, roles: ['user'], status: 'active', points: 0, lots: [] });
    ctx.state.put(accountKey(id), account);
    return ok([event('account.open', { account: id })]);
  },
});

export const consentGrant = defineHandler<{ consent: string; distributor: string; scheme: string; expiresAt: number }>({
  type: 'consent.grant',
  senders: ['user'],
  parseBody: (body) =>
    readBody(body, ['consent', 'distributor', 'scheme', 'expiresAt'], (b) => ({
      consent: id(b, 'consent'),
      distributor: account(b, 'distributor'),
      scheme: id(b, 'scheme'),
      expiresAt: nat(b, 'expiresAt'),
    })),
  execute(ctx, body) {
    const state = ctx.state;
    const now = ctx.block.timestamp;
    if (state.get(consentKey(body.consent))) return refused(Code.ALREADY_EXISTS, `consent ${body.consent} already exists`);
    const distributor = state.get(accountKey(body.distributor)) as AccountRecord | undefined;
    if (!holds(distributor, 'distributor')) return refused(Code.NOT_FOUND, `${body.distributor} is not a distributor`);
    if (distributor!.status === 'frozen') return refused(Code.FROZEN, `distributor ${body.distributor} is frozen`);
    const scheme = state.get(schemeKey(body.scheme)) as SchemeRecord | undefined;
    if (!scheme) return refused(Code.NOT_FOUND, `no scheme ${body.scheme}`);
    if (scheme.frozen) return refused(Code.FROZEN, `scheme ${body.scheme} is frozen`);
    if (body.expiresAt <= now) return refused(Code.OUT_OF_WINDOW, `expiresAt ${body.expiresAt} is not after the block time ${now}`);
    const consent: ConsentRecord = {
      consent: body.consent,
      distributor: body.distributor,
      expiresAt: body.expiresAt,
      grantedAt: now,
      revokedAt: null,
      scheme: body.scheme,
      status: 'active',
      user: ctx.tx.from,
    };
    state.put(consentKey(body.consent), consent);
    return ok([event('consent.grant', { consent: body.consent, distributor: body.distributor, scheme: body.scheme, user: ctx.tx.from })]);
  },
});

export const consentRevoke = defineHandler<{ consent: string }>({
  type: 'consent.revoke',
  senders: ['user'],
  parseBody: (body) => readBody(body, ['consent'], (b) => ({ consent: id(b, 'consent') })),
  execute(ctx, body) {
    const consent = ctx.state.get(consentKey(body.consent)) as ConsentRecord | undefined;
    if (!consent) return refused(Code.NOT_FOUND, `no consent ${body.consent}`);
    if (consent.user !== ctx.tx.from) return refused(Code.NOT_PERMITTED, `consent ${body.consent} is not the sender's`);
    if (consent.status !== 'active') return refused(Code.BAD_STATE, `consent ${body.consent} is already revoked`);
    ctx.state.put(consentKey(body.consent), { ...consent, status: 'revoked', revokedAt: ctx.block.timestamp });
    return ok([event('consent.revoke', { consent: body.consent, user: ctx.tx.from })]);
  },
});
