// Schemes and funding (goodness.md "Schemes and funding"): an issuer defines a scheme (a draft
// until the supervisor approves it) and assigns its distributors; sponsors commit funds to
// pools behind it, and a clearing provider confirms them, which grows the scheme's budget.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { appendAudit } from './audit.ts';
import { account, bool, BodyError, defineHandler, id, ok, pos, readBody, refused, text, type HandlerContext } from './handler.ts';
import { accountKey, poolKey, schemeKey, type AccountRecord, type PoolRecord, type SchemeRecord } from './records.ts';
import { holds } from './roles.ts';
import type { StateView } from './state.ts';

/** Longest lot validity and claim window: 100 years keeps every time a safe integer. */
export const MAX_DAYS = 36_500;

export function getScheme(state: StateView, scheme: string): SchemeRecord | undefined {
  return state.get(schemeKey(scheme)) as SchemeRecord | undefined;
}

export function getAccount(state: StateView, id: string): AccountRecord | undefined {
  return state.get(accountKey(id)) as AccountRecord | undefined;
}

type DefineBody = Pick<SchemeRecord, 'scheme' | 'name' | 'unit' | 'pointsPerUnit' | 'dailyCap' | 'pointValue' | 'lotValidityDays' | 'claimWindowDays' | 'autoIssue'>;

export const schemeDefine = defineHandler<DefineBody>({
  type: 'scheme.define',
  senders: ['issuer'],
  parseBody: (body) =>
    readBody(body, ['scheme', 'name', 'unit', 'pointsPerUnit', 'dailyCap', 'pointValue', 'lotValidityDays', 'claimWindowDays', 'autoIssue'], (b) => {
      const lotValidityDays = pos(b, 'lotValidityDays');
      const claimWindowDays = pos(b, 'claimWindowDays');
      for (const [name, v] of [['lotValidityDays', lotValidityDays], ['claimWindowDays', claimWindowDays]] as const) {
        if (v > MAX_DAYS) throw new BodyError(`body.${name} is at most ${MAX_DAYS}`);
      }
      return {
        scheme: id(b, 'scheme'),
        name: text(b, 'name'),
        unit: text(b, 'unit', 32),
        pointsPerUnit: pos(b, 'pointsPerUnit'),
        dailyCap: pos(b, 'dailyCap'),
        pointValue: pos(b, 'pointValue'),
        lotValidityDays,
        claimWindowDays,
        autoIssue: bool(b, 'autoIssue'),
      };
    }),
  execute(ctx, body) {
    if (getScheme(ctx.state, body.scheme)) return refused(Code.ALREADY_EXISTS, `scheme ${body.scheme} already exists`);
    // Members in JCS order (canonical.ts).
    const scheme: SchemeRecord = {
      autoIssue: body.autoIssue,
      budget: 0,
      claimWindowDays: body.claimWindowDays,
      clawedBack: 0,
      dailyCap: body.dailyCap,
      distributors: [],
      expired: 0,
      frozen: false,
      funded: 0,
      issued: 0,
      issuer: ctx.tx.from,
      live: 0,
      lotValidityDays: body.lotValidityDays,
      name: body.name,
      pending: 0,
      pointValue: body.pointValue,
      pointsPerUnit: body.pointsPerUnit,
      redeemed: 0,
      scheme: body.scheme,
      shortfall: 0,
      status: 'draft',
      unit: body.unit,
    };
    ctx.state.put(schemeKey(body.scheme), scheme);
    return ok([event('scheme.define', { issuer: ctx.tx.from, scheme: body.scheme })]);
  },
});


function schemeStatusChange(type: 'scheme.approve' | 'scheme.suspend') {
  return defineHandler<{ scheme: string }>({
    type,
    senders: ['supervisor'],
    parseBody: (body) => readBody(body, ['scheme'], (b) => ({ scheme: id(b, 'scheme') })),
    execute(ctx, body) {
      const scheme = getScheme(ctx.state, body.scheme);
      if (!scheme) return refused(Code.NOT_FOUND, `no scheme ${body.scheme}`);
      if (scheme.frozen) return refused(Code.FROZEN, `scheme ${body.scheme} is frozen`);
      if (type === 'scheme.approve' && scheme.status === 'approved') return refused(Code.BAD_STATE, `scheme ${body.scheme} is already approved`);
      if (type === 'scheme.suspend' && scheme.status !== 'approved') return refused(Code.BAD_STATE, `scheme ${body.scheme} is ${scheme.status}, not approved`);
      const status = type === 'scheme.approve' ? 'approved' : 'suspended';
      ctx.state.put(schemeKey(body.scheme), { ...scheme, status });
      appendAudit(ctx, { scheme: body.scheme, status });
      return ok([event(type, { scheme: body.scheme })]);
    },
  });
}

export const schemeApprove = schemeStatusChange('scheme.approve');
export const schemeSuspend = schemeStatusChange('scheme.suspend');

/** The scheme the sender issues, or why not. */
function ownScheme(ctx: HandlerContext, schemeId: string): SchemeRecord | { code: number; log: string } {
  const scheme = getScheme(ctx.state, schemeId);
  if (!scheme) return { code: Code.NOT_FOUND, log: `no scheme ${schemeId}` };
  if (scheme.issuer !== ctx.tx.from) return { code: Code.NOT_PERMITTED, log: `scheme ${schemeId} is issued by ${scheme.issuer}` };
  if (scheme.frozen) return { code: Code.FROZEN, log: `scheme ${schemeId} is frozen` };
  return scheme;
}

function isRefusal(v: object): v is { code: number; log: string } {
  return 'code' in v;
}

export const schemeAssign = defineHandler<{ scheme: string; distributor: string }>({
  type: 'scheme.assign',
  senders: ['issuer'],
  parseBody: (body) => readBody(body, ['scheme', 'distributor'], (b) => ({ scheme: id(b, 'scheme'), distributor: account(b, 'distributor') })),
  execute(ctx, body) {
    const scheme = ownScheme(ctx, body.scheme);
    if (isRefusal(scheme)) return refused(scheme.code, scheme.log);
    if (body.distributor === scheme.issuer) return refused(Code.ROLE_CONFLICT, 'within one scheme the issuer is not a distributor');
    const distributor = getAccount(ctx.state, body.distributor);
    if (!holds(distributor, 'distributor')) return refused(Code.NOT_FOUND, `${body.distributor} is not a distributor`);
    if (distributor!.status === 'frozen') return refused(Code.FROZEN, `distributor ${body.distributor} is frozen`);
    if (scheme.distributors.includes(body.distributor)) return refused(Code.ALREADY_EXISTS, `${body.distributor} is already assigned to scheme ${body.scheme}`);
    ctx.state.put(schemeKey(body.scheme), { ...scheme, distributors: [...scheme.distributors, body.distributor].sort() });
    return ok([event('scheme.assign', { distributor: body.distributor, scheme: body.scheme })]);
  },
});

export const schemeUnassign = defineHandler<{ scheme: string; distributor: string }>({
  type: 'scheme.unassign',
  senders: ['issuer'],
  parseBody: (body) => readBody(body, ['scheme', 'distributor'], (b) => ({ scheme: id(b, 'scheme'), distributor: account(b, 'distributor') })),
  execute(ctx, body) {
    const scheme = ownScheme(ctx, body.scheme);
    if (isRefusal(scheme)) return refused(scheme.code, scheme.log);
    if (!scheme.distributors.includes(body.distributor)) return refused(Code.NOT_FOUND, `${body.distributor} is not assigned to scheme ${body.scheme}`);
    ctx.state.put(schemeKey(body.scheme), { ...scheme, distributors: scheme.distributors.filter((d) => d !== body.distributor) });
    return ok([event('scheme.unassign', { distributor: body.distributor, scheme: body.scheme })]);
  },
});

export const poolCommit = defineHandler<{ pool: string; scheme: string; amount: number }>({
  type: 'pool.commit',
  senders: ['sponsor'],
  parseBody: (body) => readBody(body, ['pool', 'scheme', 'amount'], (b) => ({ pool: id(b, 'pool'), scheme: id(b, 'scheme'), amount: pos(b, 'amount') })),
  execute(ctx, body) {
    if (ctx.state.get(poolKey(body.pool))) return refused(Code.ALREADY_EXISTS, `pool ${body.pool} already exists`);
    const scheme = getScheme(ctx.state, body.scheme);
    if (!scheme) return refused(Code.NOT_FOUND, `no scheme ${body.scheme}`);
    if (scheme.frozen) return refused(Code.FROZEN, `scheme ${body.scheme} is frozen`);
    // Members in JCS order (canonical.ts).
    const pool: PoolRecord = {
      amount: body.amount,
      batched: 0,
      clearing: null,
      confirmed: 0,
      exchanges: [],
      frozen: false,
      fulfilled: 0,
      paymentRefs: [],
      pool: body.pool,
      reserved: 0,
      scheme: body.scheme,
      settled: 0,
      sponsor: ctx.tx.from,
    };
    ctx.state.put(poolKey(body.pool), pool);
    return ok([event('pool.commit', { amount: String(body.amount), pool: body.pool, scheme: body.scheme, sponsor: ctx.tx.from })]);
  },
});

export const poolConfirm = defineHandler<{ pool: string; amount: number; paymentRef: string }>({
  type: 'pool.confirm',
  senders: ['clearing'],
  parseBody: (body) => readBody(body, ['pool', 'amount', 'paymentRef'], (b) => ({ pool: id(b, 'pool'), amount: pos(b, 'amount'), paymentRef: text(b, 'paymentRef') })),
  execute(ctx, body) {
    const state = ctx.state;
    const clearing = ctx.tx.from;
    const pool = state.get(poolKey(body.pool)) as PoolRecord | undefined;
    if (!pool) return refused(Code.NOT_FOUND, `no pool ${body.pool}`);
    if (pool.frozen) return refused(Code.FROZEN, `pool ${body.pool} is frozen`);
    if (pool.clearing !== null && pool.clearing !== clearing) return refused(Code.NOT_PERMITTED, `pool ${body.pool} is cleared by ${pool.clearing}`);
    if (pool.sponsor === clearing) return refused(Code.ROLE_CONFLICT, 'the clearing provider of a pool is not its sponsor');
    if (pool.exchanges.includes(clearing)) return refused(Code.ROLE_CONFLICT, 'the clearing provider of a pool is not an exchange paid from it');
    const sponsor = getAccount(state, pool.sponsor);
    if (sponsor?.status === 'frozen') return refused(Code.FROZEN, `sponsor ${pool.sponsor} is frozen`);
    const scheme = getScheme(state, pool.scheme)!;
    if (scheme.frozen) return refused(Code.FROZEN, `scheme ${pool.scheme} is frozen`);
    if (pool.confirmed + body.amount > pool.amount) {
      return refused(Code.BAD_STATE, `confirming ${body.amount} would exceed the ${pool.amount} committed to pool ${body.pool} (${pool.confirmed} confirmed)`);
    }
    const points = Math.floor(body.amount / scheme.pointValue);
    state.put(poolKey(body.pool), { ...pool, confirmed: pool.confirmed + body.amount, clearing, paymentRefs: [...pool.paymentRefs, body.paymentRef] });
    state.put(schemeKey(pool.scheme), { ...scheme, budget: scheme.budget + points, funded: scheme.funded + body.amount });
    return ok([event('pool.confirm', { amount: String(body.amount), budgetPoints: String(points), paymentRef: body.paymentRef, pool: body.pool })]);
  },
});
