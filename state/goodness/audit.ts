// The audit log (goodness.md `audit/log?from=<height>`): every governance and supervision
// action, in order. Entries are `l/<seq>` with the count under `log`, so appending is two
// writes and a read from a height is a binary search.
import type { HandlerContext } from './handler.ts';
import { AUDIT_COUNT_KEY, auditKey, type AuditEntry } from './records.ts';
import type { StateView } from './state.ts';

/** The most entries one audit/log answer holds; a caller pages on with a later `from`. */
export const AUDIT_PAGE = 1000;

export function appendAudit(ctx: HandlerContext, detail: Record<string, unknown>): void {
  const seq = (ctx.state.get(AUDIT_COUNT_KEY) as number | undefined) ?? 0;
  const entry: AuditEntry = { detail, from: ctx.tx.from, height: ctx.block.height, seq, time: ctx.block.timestamp, tx: ctx.hash, type: ctx.tx.type };
  ctx.state.put(auditKey(seq), entry);
  ctx.state.put(AUDIT_COUNT_KEY, seq + 1);
}

/** Entries of blocks at `from` or later, oldest first, at most AUDIT_PAGE of them. */
export function auditFrom(state: StateView, from: number): AuditEntry[] {
  const count = (state.get(AUDIT_COUNT_KEY) as number | undefined) ?? 0;
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((state.get(auditKey(mid)) as AuditEntry).height < from) lo = mid + 1;
    else hi = mid;
  }
  const out: AuditEntry[] = [];
  for (let i = lo; i < count && out.length < AUDIT_PAGE; i++) out.push(state.get(auditKey(i)) as AuditEntry);
  return out;
}
