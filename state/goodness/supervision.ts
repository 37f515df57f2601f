// Supervision (goodness.md "Supervision"): the supervisor freezes and unfreezes an account,
// organisation, scheme, pool or offer. A target is named as a query path names it
// (`account/<id>`, `org/<id>`, `scheme/<id>`, `pool/<id>`, `offer/<id>`), or by its bare id when
// that names exactly one thing (an account id always names an account). deed.reverse is in
// deeds.ts. Every action goes to the audit log.
import { event } from '../machine.ts';
import { Code } from '../codes.ts';
import { isAccountId } from '../tx.ts';
import { appendAudit } from './audit.ts';
import { defineHandler, isObjectId, ok, readBody, refused, text } from './handler.ts';
import { accountKey, offerKey, poolKey, schemeKey, type AccountRecord } from './records.ts';
import type { StateView } from './state.ts';

type TargetKind = 'account' | 'scheme' | 'pool' | 'offer';
const KEY_OF: Record<TargetKind, (id: string) => string> = { account: accountKey, scheme: schemeKey, pool: poolKey, offer: offerKey };

type Resolved = { kind: TargetKind; id: string; key: string; record: Record<string, unknown> } | { code: number; log: string };

export function resolveTarget(state: StateView, target: string): Resolved {
  const slash = target.indexOf('/');
  let candidates: [TargetKind, string][];
  if (slash >= 0) {
    const prefix = target.slice(0, slash);
    const id = target.slice(slash + 1);
    const kind = (prefix === 'org' ? 'account' : prefix) as TargetKind;
    if (!Object.hasOwn(KEY_OF, kind)) return { code: Code.BAD_BODY, log: `target kind ${JSON.stringify(prefix)} is not one of account, org, scheme, pool, offer` };
    if (kind === 'account' ? !isAccountId(id) : !isObjectId(id)) return { code: Code.BAD_BODY, log: `${JSON.stringify(id)} is not a ${prefix} id` };
    candidates = [[kind, id]];
  } else if (isAccountId(target)) {
    candidates = [['account', target]];
  } else if (isObjectId(target)) {
    candidates = (['scheme', 'pool', 'offer'] as const).map((k) => [k, target]);
  } else {
    return { code: Code.BAD_BODY, log: 'body.target is an account, org, scheme, pool or offer: kind/id or a bare id' };
  }
  const found = candidates.filter(([k, id]) => state.get(KEY_OF[k](id)) !== undefined);
  if (found.length === 0) return { code: Code.NOT_FOUND, log: `no ${candidates.map(([k]) => k).join(' or ')} ${candidates[0]![1]}` };
  if (found.length > 1) return { code: Code.BAD_BODY, log: `${target} names a ${found.map(([k]) => k).join(' and a ')}: say which, e.g. ${found[0]![0]}/${target}` };
  const [kind, id] = found[0]!;
  const key = KEY_OF[kind](id);
  return { kind, id, key, record: state.get(key) as Record<string, unknown> };
}

function isFrozen(kind: TargetKind, record: Record<string, unknown>): boolean {
  return kind === 'account' ? (record as unknown as AccountRecord).status === 'frozen' : record.frozen === true;
}

function freezeChange(type: 'supervise.freeze' | 'supervise.unfreeze') {
  const freeze = type === 'supervise.freeze';
  return defineHandler<{ target: string; reason: string }>({
    type,
    senders: ['supervisor'],
    parseBody: (body) => readBody(body, ['target', 'reason'], (b) => ({ target: text(b, 'target', 140), reason: text(b, 'reason', 500) })),
    execute(ctx, b) {
      const t = resolveTarget(ctx.state, b.target);
      if ('code' in t) return refused(t.code, t.log);
      if (t.kind === 'account' && t.id === ctx.tx.from) return refused(Code.NOT_PERMITTED, 'a supervisor does not freeze or unfreeze its own account');
      if (isFrozen(t.kind, t.record) === freeze) return refused(Code.BAD_STATE, `${t.kind} ${t.id} is ${freeze ? 'already frozen' : 'not frozen'}`);
      const next = t.kind === 'account' ? { ...t.record, status: freeze ? 'frozen' : 'active' } : { ...t.record, frozen: freeze };
      ctx.state.put(t.key, next);
      appendAudit(ctx, { target: `${t.kind}/${t.id}`, reason: b.reason });
      return ok([event(type, { reason: b.reason, target: `${t.kind}/${t.id}` })]);
    },
  });
}

export const superviseFreeze = freezeChange('supervise.freeze');
export const superviseUnfreeze = freezeChange('supervise.unfreeze');
