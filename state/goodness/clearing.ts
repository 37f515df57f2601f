// Clearing (goodness.md "Clearing"): the clearing provider closes the fulfilled redemptions of
// its pools into a batch with one line per (sponsor, exchange) pair, settles it with payment
// references, and the counterparties confirm or dispute. A closed batch record is written once
// and never again (invariant 7); what happens to it afterwards is kept beside it.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { defineHandler, id, ids, ok, readBody, refused, texts } from './handler.ts';
import {
  batchKey,
  batchProgressKey,
  poolFulfilledKey,
  poolKey,
  redemptionKey,
  type BatchLine,
  type BatchProgress,
  type BatchRecord,
  type PoolRecord,
  type RedemptionRecord,
} from './records.ts';

export const clearingClose = defineHandler<{ batch: string; pools: string[] }>({
  type: 'clearing.close',
  senders: ['clearing'],
  parseBody: (body) => readBody(body, ['batch', 'pools'], (b) => ({ batch: id(b, 'batch'), pools: ids(b, 'pools') })),
  execute(ctx, b) {
    const state = ctx.state;
    const clearing = ctx.tx.from;
    if (state.get(batchKey(b.batch))) return refused(Code.ALREADY_EXISTS, `batch ${b.batch} already exists`);
    const pools: PoolRecord[] = [];
    for (const poolId of [...b.pools].sort()) {
      const pool = state.get(poolKey(poolId)) as PoolRecord | undefined;
      if (!pool) return refused(Code.NOT_FOUND, `no pool ${poolId}`);
      if (pool.clearing !== clearing) return refused(Code.NOT_PERMITTED, `pool ${poolId} is not cleared by ${clearing}`);
      if (pool.frozen) return refused(Code.FROZEN, `pool ${poolId} is frozen`);
      pools.push(pool);
    }
    const lines = new Map<string, BatchLine>();
    const redemptions: string[] = [];
    const poolAmounts: { pool: string; amount: number }[] = [];
    let total = 0;
    for (const pool of pools) {
      let amount = 0;
      for (let i = pool.batched; i < pool.fulfilled; i++) {
        const rid = state.get(poolFulfilledKey(pool.pool, i)) as string;
        const r = state.get(redemptionKey(rid)) as RedemptionRecord;
        const pair = r.sponsor + '/' + r.exchange;
        const line = lines.get(pair) ?? { sponsor: r.sponsor, exchange: r.exchange, amount: 0, redemptions: 0 };
        lines.set(pair, { ...line, amount: line.amount + r.value, redemptions: line.redemptions + 1 });
        amount += r.value;
        redemptions.push(rid);
        state.put(redemptionKey(rid), { ...r, batch: b.batch });
      }
      if (pool.fulfilled > pool.batched) {
        poolAmounts.push({ pool: pool.pool, amount });
        total += amount;
        state.put(poolKey(pool.pool), { ...pool, batched: pool.fulfilled });
      }
    }
    if (redemptions.length === 0) return refused(Code.BAD_STATE, `no fulfilled redemption of ${b.pools.join(', ')} waits for clearing`);
    const sortedLines = [...lines.values()].sort((x, y) => (x.sponsor < y.sponsor ? -1 : x.sponsor > y.sponsor ? 1 : x.exchange < y.exchange ? -1 : x.exchange > y.exchange ? 1 : 0));
    const batch: BatchRecord = { batch: b.batch, clearing, pools: pools.map((p) => p.pool), lines: sortedLines, poolAmounts, redemptions, total, closedAt: ctx.block.timestamp };
    const progress: BatchProgress = { batch: b.batch, status: 'closed', paymentRefs: [], settledAt: null, confirmedBy: [], disputedBy: [] };
    state.put(batchKey(b.batch), batch);
    state.put(batchProgressKey(b.batch), progress);
    return ok([event('clearing.close', { batch: b.batch, lines: String(sortedLines.length), redemptions: String(redemptions.length), total: String(total) })]);
  },
});

export const clearingSettle = defineHandler<{ batch: string; paymentRefs: string[] }>({
  type: 'clearing.settle',
  senders: ['clearing'],
  parseBody: (body) => readBody(body, ['batch', 'paymentRefs'], (b) => ({ batch: id(b, 'batch'), paymentRefs: texts(b, 'paymentRefs') })),
  execute(ctx, b) {
    const state = ctx.state;
    const batch = state.get(batchKey(b.batch)) as BatchRecord | undefined;
    if (!batch) return refused(Code.NOT_FOUND, `no batch ${b.batch}`);
    if (batch.clearing !== ctx.tx.from) return refused(Code.NOT_PERMITTED, `batch ${b.batch} is cleared by ${batch.clearing}`);
    const progress = state.get(batchProgressKey(b.batch)) as BatchProgress;
    if (progress.status !== 'closed') return refused(Code.BAD_STATE, `batch ${b.batch} is ${progress.status}, not closed`);
    if (b.paymentRefs.length !== batch.lines.length) return refused(Code.BAD_BODY, `batch ${b.batch} has ${batch.lines.length} lines: one payment reference per line`);
    const pools = batch.poolAmounts.map(({ pool }) => state.get(poolKey(pool)) as PoolRecord);
    const frozen = pools.find((p) => p.frozen);
    if (frozen) return refused(Code.FROZEN, `pool ${frozen.pool} is frozen`);
    batch.poolAmounts.forEach(({ amount }, i) => {
      const pool = pools[i]!;
      state.put(poolKey(pool.pool), { ...pool, reserved: pool.reserved - amount, settled: pool.settled + amount });
    });
    state.put(batchProgressKey(b.batch), { ...progress, status: 'settled', paymentRefs: b.paymentRefs, settledAt: ctx.block.timestamp });
    return ok([event('clearing.settle', { batch: b.batch, total: String(batch.total) })]);
  },
});

export function counterparties(batch: BatchRecord): Set<string> {
  const out = new Set<string>();
  for (const l of batch.lines) {
    out.add(l.sponsor);
    out.add(l.exchange);
  }
  return out;
}

function answer(type: 'clearing.confirm' | 'clearing.dispute') {
  return defineHandler<{ batch: string }>({
    type,
    senders: ['sponsor', 'exchange'],
    parseBody: (body) => readBody(body, ['batch'], (b) => ({ batch: id(b, 'batch') })),
    execute(ctx, b) {
      const batch = ctx.state.get(batchKey(b.batch)) as BatchRecord | undefined;
      if (!batch) return refused(Code.NOT_FOUND, `no batch ${b.batch}`);
      const parties = counterparties(batch);
      const who = ctx.tx.from;
      if (!parties.has(who)) return refused(Code.NOT_PERMITTED, `${who} is not a counterparty of batch ${b.batch}`);
      const progress = ctx.state.get(batchProgressKey(b.batch)) as BatchProgress;
      if (progress.confirmedBy.includes(who) || progress.disputedBy.includes(who)) return refused(Code.BAD_STATE, `${who} already answered for batch ${b.batch}`);
      let next: BatchProgress;
      if (type === 'clearing.confirm') {
        if (progress.status !== 'settled') return refused(Code.BAD_STATE, `batch ${b.batch} is ${progress.status}, not settled`);
        const confirmedBy = [...progress.confirmedBy, who].sort();
        next = { ...progress, confirmedBy, status: confirmedBy.length === parties.size ? 'confirmed' : 'settled' };
      } else {
        if (progress.status !== 'closed' && progress.status !== 'settled') return refused(Code.BAD_STATE, `batch ${b.batch} is ${progress.status}`);
        next = { ...progress, disputedBy: [...progress.disputedBy, who].sort(), status: 'disputed' };
      }
      ctx.state.put(batchProgressKey(b.batch), next);
      return ok([event(type, { batch: b.batch, by: who, status: next.status })]);
    },
  });
}

export const clearingConfirm = answer('clearing.confirm');
export const clearingDispute = answer('clearing.dispute');
