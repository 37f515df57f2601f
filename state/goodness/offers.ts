// Spending (goodness.md "Spending"): exchanges publish offers paid from a sponsor's pool, the
// sponsor approves them, users redeem them with points (burned earliest expiry first, the
// value reserved in the pool), and the exchange fulfils or cancels each redemption.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { defineHandler, id, nat, ok, pos, readBody, refused, safeProduct, type HandlerContext } from './handler.ts';
import { LotBook } from './lot-pages.ts';
import {
  accountKey,
  deedKey,
  offerKey,
  poolFulfilledKey,
  poolKey,
  redemptionKey,
  schemeKey,
  type AccountRecord,
  type DeedRecord,
  type OfferRecord,
  type PoolRecord,
  type RedemptionRecord,
  type SchemeRecord,
} from './records.ts';

type Refusal = { code: number; log: string };

function frozenAccount(ctx: HandlerContext, id: string, what: string): Refusal | null {
  const acc = ctx.state.get(accountKey(id)) as AccountRecord | undefined;
  return acc?.status === 'frozen' ? { code: Code.FROZEN, log: `${what} ${id} is frozen` } : null;
}

export const offerPublish = defineHandler<{ offer: string; pool: string; pricePoints: number; unitValue: number; stock: number }>({
  type: 'offer.publish',
  senders: ['exchange'],
  parseBody: (body) =>
    readBody(body, ['offer', 'pool', 'pricePoints', 'unitValue', 'stock'], (b) => ({
      offer: id(b, 'offer'),
      pool: id(b, 'pool'),
      pricePoints: pos(b, 'pricePoints'),
      unitValue: nat(b, 'unitValue'),
      stock: nat(b, 'stock'),
    })),
  execute(ctx, b) {
    const state = ctx.state;
    const exchange = ctx.tx.from;
    if (state.get(offerKey(b.offer))) return refused(Code.ALREADY_EXISTS, `offer ${b.offer} already exists`);
    const pool = state.get(poolKey(b.pool)) as PoolRecord | undefined;
    if (!pool) return refused(Code.NOT_FOUND, `no pool ${b.pool}`);
    if (pool.frozen) return refused(Code.FROZEN, `pool ${b.pool} is frozen`);
    const scheme = state.get(schemeKey(pool.scheme)) as SchemeRecord;
    if (scheme.frozen) return refused(Code.FROZEN, `scheme ${pool.scheme} is frozen`);
    if (pool.clearing === exchange) return refused(Code.ROLE_CONFLICT, 'the clearing provider of a pool is not an exchange paid from it');
    const offer: OfferRecord = { approved: false, exchange, frozen: false, offer: b.offer, pool: b.pool, pricePoints: b.pricePoints, scheme: pool.scheme, stock: b.stock, unitValue: b.unitValue };
    state.put(offerKey(b.offer), offer);
    if (!pool.exchanges.includes(exchange)) state.put(poolKey(b.pool), { ...pool, exchanges: [...pool.exchanges, exchange].sort() });
    return ok([event('offer.publish', { exchange, offer: b.offer, pool: b.pool })]);
  },
});

export const offerApprove = defineHandler<{ offer: string }>({
  type: 'offer.approve',
  senders: ['sponsor'],
  parseBody: (body) => readBody(body, ['offer'], (b) => ({ offer: id(b, 'offer') })),
  execute(ctx, b) {
    const offer = ctx.state.get(offerKey(b.offer)) as OfferRecord | undefined;
    if (!offer) return refused(Code.NOT_FOUND, `no offer ${b.offer}`);
    const pool = ctx.state.get(poolKey(offer.pool)) as PoolRecord;
    if (pool.sponsor !== ctx.tx.from) return refused(Code.NOT_PERMITTED, `offer ${b.offer} is paid from pool ${offer.pool} of sponsor ${pool.sponsor}`);
    if (offer.frozen) return refused(Code.FROZEN, `offer ${b.offer} is frozen`);
    if (pool.frozen) return refused(Code.FROZEN, `pool ${offer.pool} is frozen`);
    if (offer.approved) return refused(Code.BAD_STATE, `offer ${b.offer} is already approved`);
    ctx.state.put(offerKey(b.offer), { ...offer, approved: true });
    return ok([event('offer.approve', { offer: b.offer, sponsor: ctx.tx.from })]);
  },
});

/** Everything a redemption involves must be unfrozen: offer, pool, scheme, exchange, sponsor. */
function frozenParty(ctx: HandlerContext, offer: OfferRecord, pool: PoolRecord): Refusal | null {
  if (offer.frozen) return { code: Code.FROZEN, log: `offer ${offer.offer} is frozen` };
  if (pool.frozen) return { code: Code.FROZEN, log: `pool ${pool.pool} is frozen` };
  const scheme = ctx.state.get(schemeKey(pool.scheme)) as SchemeRecord;
  if (scheme.frozen) return { code: Code.FROZEN, log: `scheme ${pool.scheme} is frozen` };
  return frozenAccount(ctx, offer.exchange, 'exchange') ?? frozenAccount(ctx, pool.sponsor, 'sponsor');
}

export const offerRedeem = defineHandler<{ redemption: string; offer: string; quantity: number }>({
  type: 'offer.redeem',
  senders: ['user'],
  parseBody: (body) => readBody(body, ['redemption', 'offer', 'quantity'], (b) => ({ redemption: id(b, 'redemption'), offer: id(b, 'offer'), quantity: pos(b, 'quantity') })),
  execute(ctx, b) {
    const state = ctx.state;
    const now = ctx.block.timestamp;
    if (state.get(redemptionKey(b.redemption)) !== undefined) return refused(Code.ALREADY_EXISTS, `redemption ${b.redemption} already exists`);
    const offer = state.get(offerKey(b.offer)) as OfferRecord | undefined;
    if (!offer) return refused(Code.NOT_FOUND, `no offer ${b.offer}`);
    const pool = state.get(poolKey(offer.pool)) as PoolRecord;
    const frozen = frozenParty(ctx, offer, pool);
    if (frozen) return refused(frozen.code, frozen.log);
    if (!offer.approved) return refused(Code.BAD_STATE, `offer ${b.offer} is not approved by its sponsor`);
    if (offer.stock < b.quantity) return refused(Code.OUT_OF_STOCK, `offer ${b.offer} has ${offer.stock} left, ${b.quantity} asked`);
    const points = safeProduct(offer.pricePoints, b.quantity);
    const user = ctx.sender!;
    // Burns in the book only: nothing is written unless every check below passes.
    const book = new LotBook(state, user);
    const burned = points === null ? null : book.burn(offer.scheme, points, now);
    if (points === null || burned === null) {
      return refused(Code.INSUFFICIENT_POINTS, `${points ?? 'more than 2^53'} points of scheme ${offer.scheme} needed, ${book.livePoints(offer.scheme, now)} live`);
    }
    const value = safeProduct(offer.unitValue, b.quantity);
    const available = pool.confirmed - pool.reserved - pool.settled;
    if (value === null || value > available) return refused(Code.OVER_BUDGET, `pool ${pool.pool} has ${available} available, ${value ?? 'more than 2^53'} needed`);

    const scheme = state.get(schemeKey(offer.scheme)) as SchemeRecord;
    // Members in JCS order (canonical.ts).
    const redemption: RedemptionRecord = {
      batch: null,
      burned,
      createdAt: now,
      exchange: offer.exchange,
      offer: b.offer,
      points,
      pool: pool.pool,
      quantity: b.quantity,
      redemption: b.redemption,
      scheme: offer.scheme,
      sponsor: pool.sponsor,
      status: 'pending',
      user: user.id,
      value,
    };
    state.put(redemptionKey(b.redemption), redemption);
    state.put(accountKey(user.id), book.write(state));
    state.put(offerKey(b.offer), { ...offer, stock: offer.stock - b.quantity });
    state.put(poolKey(pool.pool), { ...pool, reserved: pool.reserved + value });
    state.put(schemeKey(offer.scheme), { ...scheme, redeemed: scheme.redeemed + points, live: scheme.live - points });
    return ok([event('offer.redeem', { offer: b.offer, points: String(points), redemption: b.redemption, user: user.id, value: String(value) })]);
  },
});

/** The pending redemption of one of the sender's offers, with its offer and pool, or why not. */
function pendingRedemption(ctx: HandlerContext, id: string): { r: RedemptionRecord; offer: OfferRecord; pool: PoolRecord } | Refusal {
  const r = ctx.state.get(redemptionKey(id)) as RedemptionRecord | undefined;
  if (!r) return { code: Code.NOT_FOUND, log: `no redemption ${id}` };
  if (r.exchange !== ctx.tx.from) return { code: Code.NOT_PERMITTED, log: `redemption ${id} is for exchange ${r.exchange}` };
  const offer = ctx.state.get(offerKey(r.offer)) as OfferRecord;
  const pool = ctx.state.get(poolKey(r.pool)) as PoolRecord;
  const frozen = frozenParty(ctx, offer, pool) ?? frozenAccount(ctx, r.user, 'account');
  if (frozen) return frozen;
  if (r.status !== 'pending') return { code: Code.BAD_STATE, log: `redemption ${id} is ${r.status}, not pending` };
  return { r, offer, pool };
}

export const redemptionFulfil = defineHandler<{ redemption: string }>({
  type: 'redemption.fulfil',
  senders: ['exchange'],
  parseBody: (body) => readBody(body, ['redemption'], (b) => ({ redemption: id(b, 'redemption') })),
  execute(ctx, b) {
    const found = pendingRedemption(ctx, b.redemption);
    if ('code' in found) return refused(found.code, found.log);
    const { r, pool } = found;
    ctx.state.put(redemptionKey(r.redemption), { ...r, status: 'fulfilled' });
    ctx.state.put(poolFulfilledKey(pool.pool, pool.fulfilled), r.redemption);
    ctx.state.put(poolKey(pool.pool), { ...pool, fulfilled: pool.fulfilled + 1 });
    return ok([event('redemption.fulfil', { exchange: r.exchange, redemption: r.redemption })]);
  },
});

export const redemptionCancel = defineHandler<{ redemption: string }>({
  type: 'redemption.cancel',
  senders: ['exchange'],
  parseBody: (body) => readBody(body, ['redemption'], (b) => ({ redemption: id(b, 'redemption') })),
  execute(ctx, b) {
    const found = pendingRedemption(ctx, b.redemption);
    if ('code' in found) return refused(found.code, found.log);
    const { r, offer, pool } = found;
    const state = ctx.state;
    const now = ctx.block.timestamp;
    const book = new LotBook(state, state.get(accountKey(r.user)) as AccountRecord);
    const scheme = state.get(schemeKey(r.scheme)) as SchemeRecord;
    let { live, expired, clawedBack, shortfall } = scheme;
    // Each burned part goes back where its deed now stands: to the user's lot with its original
    // expiry, to expired if that has passed meanwhile, or to clawed back if the deed was reversed.
    for (const part of r.burned) {
      const deed = state.get(deedKey(part.deed)) as DeedRecord;
      if (deed.status === 'reversed') {
        state.put(deedKey(part.deed), { ...deed, clawedBack: deed.clawedBack + part.points });
        clawedBack += part.points;
        shortfall -= part.points;
      } else if (part.expiresAt <= now) {
        state.put(deedKey(part.deed), { ...deed, expired: deed.expired + part.points });
        expired += part.points;
      } else {
        book.credit(part.deed, part.expiresAt, part.points, r.scheme);
        ctx.lots.track(part.expiresAt, r.user);
        live += part.points;
      }
    }
    state.put(accountKey(r.user), book.write(state));
    state.put(schemeKey(r.scheme), { ...scheme, redeemed: scheme.redeemed - r.points, live, expired, clawedBack, shortfall });
    state.put(offerKey(offer.offer), { ...offer, stock: offer.stock + r.quantity });
    state.put(poolKey(pool.pool), { ...pool, reserved: pool.reserved - r.value });
    state.put(redemptionKey(r.redemption), { ...r, status: 'cancelled' });
    return ok([event('redemption.cancel', { exchange: r.exchange, points: String(r.points), redemption: r.redemption })]);
  },
});
