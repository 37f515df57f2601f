// Earning (goodness.md "Earning"): a distributor submits a user's deed under a scheme with the
// user's consent; its points are cut to the daily cap and the budget, and issued at once or
// by the issuer; the supervisor may reverse a deed, clawing back what is unspent.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { appendAudit } from './audit.ts';
import { account, defineHandler, hash, id, nat, ok, pos, readBody, refused, safeProduct, text, type HandlerContext } from './handler.ts';
import { accountWithLots, LotBook, withNewLotInRecord } from './lot-pages.ts';
import {
  accountKey,
  consentKey,
  DAY_MS,
  deedKey,
  evidenceKey,
  schemeKey,
  utcDay,
  type AccountRecord,
  type ConsentRecord,
  type DeedRecord,
  type SchemeRecord,
} from './records.ts';

interface SubmitBody {
  deed: string;
  user: string;
  scheme: string;
  quantity: number;
  occurredAt: number;
  evidenceHash: string;
  consent: string;
}

const SUBMIT_MEMBERS = ['deed', 'user', 'scheme', 'quantity', 'occurredAt', 'evidenceHash', 'consent'];

/** Why `consent` does not let `distributor` submit `user`'s deed under `scheme` at these times; null when it does. */
function consentProblem(consent: ConsentRecord | undefined, b: SubmitBody, distributor: string, now: number): string | null {
  if (!consent) return `no consent ${b.consent}`;
  if (consent.user !== b.user) return `consent ${b.consent} is not ${b.user}'s`;
  if (consent.distributor !== distributor) return `consent ${b.consent} does not cover distributor ${distributor}`;
  if (consent.scheme !== b.scheme) return `consent ${b.consent} does not cover scheme ${b.scheme}`;
  if (consent.status !== 'active') return `consent ${b.consent} was revoked`;
  if (b.occurredAt < consent.grantedAt || b.occurredAt >= consent.expiresAt) return `consent ${b.consent} was not valid at occurredAt ${b.occurredAt}`;
  if (now >= consent.expiresAt) return `consent ${b.consent} expired at ${consent.expiresAt}`;
  return null;
}

/** Issues a deed's points as a lot on the user's account, writing the lot's page (the caller writes the account, deed and scheme). */
function issueLot(ctx: HandlerContext, user: AccountRecord, deed: string, scheme: SchemeRecord, points: number): { user: AccountRecord; expiresAt: number } {
  const expiresAt = ctx.block.timestamp + scheme.lotValidityDays * DAY_MS;
  ctx.lots.track(expiresAt, user.id);
  const book = new LotBook(ctx.state, user);
  book.credit(deed, expiresAt, points, scheme.scheme);
  return { user: book.write(ctx.state), expiresAt };
}

export const deedSubmit = defineHandler<SubmitBody>({
  type: 'deed.submit',
  senders: ['distributor'],
  parseBody: (body) =>
    readBody(body, SUBMIT_MEMBERS, (b) => ({
      deed: id(b, 'deed'),
      user: account(b, 'user'),
      scheme: id(b, 'scheme'),
      quantity: pos(b, 'quantity'),
      occurredAt: nat(b, 'occurredAt'),
      evidenceHash: hash(b, 'evidenceHash'),
      consent: id(b, 'consent'),
    })),
  execute(ctx, b) {
    const state = ctx.state;
    const now = ctx.block.timestamp;
    const distributor = ctx.tx.from;
    // Each key is built once: a key string keeps its hash, so looking it up again costs no hashing.
    const deedAt = deedKey(b.deed);
    const schemeAt = schemeKey(b.scheme);
    const userAt = accountKey(b.user);
    if (state.get(deedAt) !== undefined) return refused(Code.ALREADY_EXISTS, `deed ${b.deed} already exists`);
    const scheme = state.get(schemeAt) as SchemeRecord | undefined;
    if (!scheme) return refused(Code.NOT_FOUND, `no scheme ${b.scheme}`);
    if (scheme.frozen) return refused(Code.FROZEN, `scheme ${b.scheme} is frozen`);
    if (scheme.status !== 'approved') return refused(Code.BAD_STATE, `scheme ${b.scheme} is ${scheme.status}, not approved`);
    if (!scheme.distributors.includes(distributor)) return refused(Code.NOT_PERMITTED, `${distributor} is not assigned to scheme ${b.scheme}`);
    const user = state.get(userAt) as AccountRecord | undefined;
    if (!user || !user.roles.includes('user')) return refused(Code.NOT_FOUND, `${b.user} has no good account`);
    if (user.status === 'frozen') return refused(Code.FROZEN, `account ${b.user} is frozen`);
    const problem = consentProblem(state.get(consentKey(b.consent)) as ConsentRecord | undefined, b, distributor, now);
    if (problem) return refused(Code.NO_CONSENT, problem);
    if (b.occurredAt > now) return refused(Code.OUT_OF_WINDOW, `occurredAt ${b.occurredAt} is after the block time ${now}`);
    if (b.occurredAt < now - scheme.claimWindowDays * DAY_MS) return refused(Code.OUT_OF_WINDOW, `occurredAt ${b.occurredAt} is outside the ${scheme.claimWindowDays}-day claim window`);
    const evidence = evidenceKey(b.scheme, b.evidenceHash);
    if (state.get(evidence) !== undefined) return refused(Code.DUPLICATE_EVIDENCE, `evidence ${b.evidenceHash} was already used under scheme ${b.scheme}`);

    const requested = safeProduct(b.quantity, scheme.pointsPerUnit) ?? Number.MAX_SAFE_INTEGER;
    const day = utcDay(now);
    const counted = user.daily?.[b.scheme];
    const used = counted !== undefined && counted.day === day ? counted.points : 0;
    const capLeft = scheme.dailyCap - used;
    if (capLeft <= 0) return refused(Code.OVER_CAP, `${b.user} reached the daily cap of ${scheme.dailyCap} points under scheme ${b.scheme}`);
    const budgetLeft = scheme.budget - scheme.issued - scheme.pending;
    if (budgetLeft <= 0) return refused(Code.OVER_BUDGET, `scheme ${b.scheme} has no budget left`);
    const points = Math.min(requested, capLeft, budgetLeft);

    let status: DeedRecord['status'] = 'pending';
    let issuedAt: number | null = null;
    let expiresAt: number | null = null;
    const daily = { ...user.daily };
    daily[b.scheme] = { day, points: used + points };
    let nextUser: AccountRecord;
    let nextScheme: SchemeRecord;
    if (scheme.autoIssue) {
      expiresAt = now + scheme.lotValidityDays * DAY_MS;
      ctx.lots.track(expiresAt, user.id);
      const inRecord = withNewLotInRecord(user, b.deed, expiresAt, points, b.scheme);
      if (inRecord) {
        // Members in JCS order (canonical.ts); one object literal, not accountWithLots's additions, on this hot path.
        const p = user.points + points;
        nextUser =
          user.name === undefined
            ? { daily, id: user.id, lots: inRecord, points: p, roles: user.roles, status: user.status }
            : { daily, id: user.id, lots: inRecord, name: user.name, points: p, roles: user.roles, status: user.status };
      } else {
        const book = new LotBook(state, user);
        book.credit(b.deed, expiresAt, points, b.scheme);
        nextUser = book.write(state, daily);
      }
      status = 'issued';
      issuedAt = now;
      nextScheme = { ...scheme, issued: scheme.issued + points, live: scheme.live + points };
    } else {
      nextUser = accountWithLots(user, user.lots, user.pages, user.points, daily);
      nextScheme = { ...scheme, pending: scheme.pending + points };
    }
    const deed: DeedRecord = {
      clawedBack: 0,
      consent: b.consent,
      day,
      deed: b.deed,
      distributor,
      evidenceHash: b.evidenceHash,
      expired: 0,
      expiresAt,
      issuedAt,
      occurredAt: b.occurredAt,
      points,
      quantity: b.quantity,
      reason: null,
      requested,
      reversedAt: null,
      scheme: b.scheme,
      status,
      submittedAt: now,
      user: b.user,
    };
    state.put(deedAt, deed);
    state.put(evidence, b.deed);
    state.put(userAt, nextUser);
    state.put(schemeAt, nextScheme);
    return ok([event('deed.submit', { deed: b.deed, points: String(points), requested: String(requested), scheme: b.scheme, status, user: b.user })]);
  },
});

/** The pending deed of a scheme the sender issues, with its scheme, or why not. */
function pendingDeedOfIssuer(ctx: HandlerContext, deedId: string): { deed: DeedRecord; scheme: SchemeRecord } | { code: number; log: string } {
  const deed = ctx.state.get(deedKey(deedId)) as DeedRecord | undefined;
  if (!deed) return { code: Code.NOT_FOUND, log: `no deed ${deedId}` };
  const scheme = ctx.state.get(schemeKey(deed.scheme)) as SchemeRecord;
  if (scheme.issuer !== ctx.tx.from) return { code: Code.NOT_PERMITTED, log: `deed ${deedId} is under scheme ${deed.scheme}, issued by ${scheme.issuer}` };
  if (scheme.frozen) return { code: Code.FROZEN, log: `scheme ${deed.scheme} is frozen` };
  if (deed.status !== 'pending') return { code: Code.BAD_STATE, log: `deed ${deedId} is ${deed.status}, not pending` };
  return { deed, scheme };
}

/** Gives back a pending deed's points to the user's daily count, when it is still that day. */
function releaseDaily(user: AccountRecord, deed: DeedRecord): AccountRecord {
  const counted = user.daily?.[deed.scheme];
  if (!counted || counted.day !== deed.day) return user;
  return { ...user, daily: { ...user.daily, [deed.scheme]: { day: counted.day, points: counted.points - deed.points } } };
}

export const deedIssue = defineHandler<{ deed: string }>({
  type: 'deed.issue',
  senders: ['issuer'],
  parseBody: (body) => readBody(body, ['deed'], (b) => ({ deed: id(b, 'deed') })),
  execute(ctx, body) {
    const found = pendingDeedOfIssuer(ctx, body.deed);
    if ('code' in found) return refused(found.code, found.log);
    const { deed, scheme } = found;
    if (scheme.status !== 'approved') return refused(Code.BAD_STATE, `scheme ${scheme.scheme} is ${scheme.status}, not approved`);
    const user = ctx.state.get(accountKey(deed.user)) as AccountRecord;
    if (user.status === 'frozen') return refused(Code.FROZEN, `account ${deed.user} is frozen`);
    const issued = issueLot(ctx, user, deed.deed, scheme, deed.points);
    const now = ctx.block.timestamp;
    ctx.state.put(accountKey(deed.user), issued.user);
    ctx.state.put(deedKey(deed.deed), { ...deed, status: 'issued', issuedAt: now, expiresAt: issued.expiresAt });
    ctx.state.put(schemeKey(scheme.scheme), { ...scheme, pending: scheme.pending - deed.points, issued: scheme.issued + deed.points, live: scheme.live + deed.points });
    return ok([event('deed.issue', { deed: deed.deed, points: String(deed.points), user: deed.user })]);
  },
});

export const deedReject = defineHandler<{ deed: string }>({
  type: 'deed.reject',
  senders: ['issuer'],
  parseBody: (body) => readBody(body, ['deed'], (b) => ({ deed: id(b, 'deed') })),
  execute(ctx, body) {
    const found = pendingDeedOfIssuer(ctx, body.deed);
    if ('code' in found) return refused(found.code, found.log);
    const { deed, scheme } = found;
    const user = ctx.state.get(accountKey(deed.user)) as AccountRecord;
    ctx.state.put(accountKey(deed.user), releaseDaily(user, deed));
    ctx.state.put(deedKey(deed.deed), { ...deed, status: 'rejected' });
    ctx.state.put(schemeKey(scheme.scheme), { ...scheme, pending: scheme.pending - deed.points });
    return ok([event('deed.reject', { deed: deed.deed, user: deed.user })]);
  },
});

export const deedReverse = defineHandler<{ deed: string; reason: string }>({
  type: 'deed.reverse',
  senders: ['supervisor'],
  parseBody: (body) => readBody(body, ['deed', 'reason'], (b) => ({ deed: id(b, 'deed'), reason: text(b, 'reason', 500) })),
  execute(ctx, body) {
    const state = ctx.state;
    const deed = state.get(deedKey(body.deed)) as DeedRecord | undefined;
    if (!deed) return refused(Code.NOT_FOUND, `no deed ${body.deed}`);
    if (deed.status !== 'pending' && deed.status !== 'issued') return refused(Code.BAD_STATE, `deed ${body.deed} is ${deed.status}`);
    const scheme = state.get(schemeKey(deed.scheme)) as SchemeRecord;
    const user = state.get(accountKey(deed.user)) as AccountRecord;
    const now = ctx.block.timestamp;
    let clawedBack = 0;
    let shortfall = 0;
    if (deed.status === 'pending') {
      state.put(accountKey(deed.user), releaseDaily(user, deed));
      state.put(schemeKey(scheme.scheme), { ...scheme, pending: scheme.pending - deed.points });
    } else {
      const book = new LotBook(state, user);
      clawedBack = book.take(deed.deed, deed.expiresAt!)?.points ?? 0;
      // What is neither unspent nor expired was spent by redemptions: the scheme's shortfall.
      shortfall = deed.points - clawedBack - deed.expired;
      state.put(accountKey(deed.user), book.write(state));
      state.put(schemeKey(scheme.scheme), { ...scheme, live: scheme.live - clawedBack, clawedBack: scheme.clawedBack + clawedBack, shortfall: scheme.shortfall + shortfall });
    }
    state.put(deedKey(deed.deed), { ...deed, status: 'reversed', clawedBack, reversedAt: now, reason: body.reason });
    appendAudit(ctx, { deed: deed.deed, user: deed.user, scheme: deed.scheme, reason: body.reason, clawedBack, shortfall });
    return ok([event('deed.reverse', { clawedBack: String(clawedBack), deed: deed.deed, shortfall: String(shortfall), user: deed.user })]);
  },
});
