// Governance (goodness.md "Governance"): governors propose and vote on organisations, their
// roles, governors and validator changes. An action takes effect when more than half of the
// current governors approve; proposing counts as the proposer's approval. A proposal is checked
// when proposed (a refusal is the proposer's receipt) and again when it passes, since the state
// may have moved on: an action that no longer applies closes its proposal as failed.
import { peerIdFromString } from '@libp2p/peer-id';
import type { Event } from '../../consensus/chain/types.ts';
import { BLS_PUBLIC_KEY_BYTES, BLS_SIGNATURE_BYTES, blsPopVerify } from '../../consensus/crypto/bls.ts';
import { from0x } from '../../consensus/crypto/encoding.ts';
import { Code } from '../codes.ts';
import { event, type ValidatorUpdate } from '../machine.ts';
import { appendAudit } from './audit.ts';
import {
  account,
  BodyError,
  bool,
  defineHandler,
  id,
  nat,
  ok,
  readBody,
  refused,
  text,
  type HandlerContext,
  type Outcome,
} from './handler.ts';
import { MAX_ORG_NAME_LENGTH } from './genesis.ts';
import { accountKey, accountRecord, GOVERNORS_KEY, proposalKey, VALIDATORS_KEY, type AccountRecord, type ProposalRecord, type ValidatorSetRecord } from './records.ts';
import { canonicalRoles, isRole, ORG_ROLES, roleConflict, type Role } from './roles.ts';
import type { StateView } from './state.ts';

export type GovAction =
  | { type: 'org.register'; org: string; name: string; roles: Role[] }
  | { type: 'org.revoke'; org: string; roles: Role[] }
  | { type: 'validator.add'; peerId: string; blsPublicKey: string; pop: string }
  | { type: 'validator.remove'; index: number }
  | { type: 'governor.add'; account: string }
  | { type: 'governor.remove'; account: string };

const ACTION_MEMBERS: Record<GovAction['type'], string[]> = {
  'org.register': ['type', 'org', 'name', 'roles'],
  'org.revoke': ['type', 'org', 'roles'],
  'validator.add': ['type', 'peerId', 'blsPublicKey', 'pop'],
  'validator.remove': ['type', 'index'],
  'governor.add': ['type', 'account'],
  'governor.remove': ['type', 'account'],
};

function orgRoles(value: unknown): Role[] {
  if (!Array.isArray(value) || value.length === 0) throw new BodyError('action.roles is a non-empty list of organisation roles');
  for (const r of value) {
    if (!isRole(r) || !ORG_ROLES.includes(r)) throw new BodyError(`action.roles: ${JSON.stringify(r)} is not an organisation role (${ORG_ROLES.join(', ')})`);
  }
  if (new Set(value).size !== value.length) throw new BodyError('action.roles lists a role twice');
  return canonicalRoles(value as Role[]);
}

function peerId(value: unknown): string {
  if (typeof value !== 'string' || value.length > 128) throw new BodyError('action.peerId is a libp2p peer id');
  let type: string;
  try {
    type = peerIdFromString(value).type;
  } catch {
    throw new BodyError('action.peerId is not a libp2p peer id');
  }
  if (type !== 'Ed25519') throw new BodyError('action.peerId is an Ed25519 peer id');
  return value;
}

function hexOf(value: unknown, bytes: number, name: string): string {
  if (typeof value !== 'string' || !from0x(value, bytes)) throw new BodyError(`action.${name} is ${bytes} bytes of 0x lowercase hex`);
  return value;
}

export function parseAction(value: unknown): GovAction {
  try {
    return readAction(value);
  } catch (e) {
    // The member readers speak of `body.x`; here x is a member of the action.
    if (e instanceof BodyError) throw new BodyError(e.log.replace(/^body\./, 'action.'));
    throw e;
  }
}

function readAction(value: unknown): GovAction {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BodyError('body.action is an object {type, ...}');
  const a = value as Record<string, unknown>;
  const type = a.type as GovAction['type'];
  const members = typeof type === 'string' ? ACTION_MEMBERS[type] : undefined;
  if (!members || !Object.hasOwn(ACTION_MEMBERS, type)) {
    throw new BodyError(`action.type is one of ${Object.keys(ACTION_MEMBERS).join(', ')}`);
  }
  for (const m of members) if (!(m in a)) throw new BodyError(`action.${m} is missing`);
  const extra = Object.keys(a).filter((k) => !members.includes(k));
  if (extra.length > 0) throw new BodyError(`action has unknown members ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  switch (type) {
    case 'org.register':
      return { type, org: account(a, 'org'), name: text(a, 'name', MAX_ORG_NAME_LENGTH), roles: orgRoles(a.roles) };
    case 'org.revoke':
      return { type, org: account(a, 'org'), roles: orgRoles(a.roles) };
    case 'validator.add':
      return { type, peerId: peerId(a.peerId), blsPublicKey: hexOf(a.blsPublicKey, BLS_PUBLIC_KEY_BYTES, 'blsPublicKey'), pop: hexOf(a.pop, BLS_SIGNATURE_BYTES, 'pop') };
    case 'validator.remove':
      return { type, index: nat(a, 'index') };
    case 'governor.add':
    case 'governor.remove':
      return { type, account: account(a, 'account') };
  }
}

type Refusal = { code: number; log: string };

function governors(state: StateView): string[] {
  return state.get(GOVERNORS_KEY) as string[];
}

function validatorSet(state: StateView): ValidatorSetRecord {
  return state.get(VALIDATORS_KEY) as ValidatorSetRecord;
}

/** Whether the action can be applied to the state as it is; null when it can. */
export function checkAction(state: StateView, action: GovAction): Refusal | null {
  switch (action.type) {
    case 'org.register': {
      const acc = state.get(accountKey(action.org)) as AccountRecord | undefined;
      if (acc?.roles.includes('user')) return { code: Code.ROLE_CONFLICT, log: `${action.org} is a user's good account; an organisation needs its own account` };
      const have = acc?.roles ?? [];
      if (action.roles.every((r) => have.includes(r))) return { code: Code.ALREADY_EXISTS, log: `${action.org} already holds ${action.roles.join(', ')}` };
      const conflict = roleConflict(canonicalRoles([...have, ...action.roles]));
      if (conflict) return { code: Code.ROLE_CONFLICT, log: `${action.org}: ${conflict}` };
      return null;
    }
    case 'org.revoke': {
      const acc = state.get(accountKey(action.org)) as AccountRecord | undefined;
      if (!acc) return { code: Code.NOT_FOUND, log: `no organisation ${action.org}` };
      const missing = action.roles.filter((r) => !acc.roles.includes(r));
      if (missing.length > 0) return { code: Code.NOT_FOUND, log: `${action.org} does not hold ${missing.join(', ')}` };
      return null;
    }
    case 'validator.add': {
      const set = validatorSet(state);
      if (set.validators.some((v) => v.peerId === action.peerId)) return { code: Code.ALREADY_EXISTS, log: `peer ${action.peerId} is already a validator` };
      if (set.validators.some((v) => v.blsPublicKey === action.blsPublicKey)) return { code: Code.ALREADY_EXISTS, log: 'that BLS key is already a validator' };
      return null;
    }
    case 'validator.remove': {
      const set = validatorSet(state);
      if (!set.validators.some((v) => v.index === action.index)) return { code: Code.NOT_FOUND, log: `no validator with index ${action.index}` };
      if (set.validators.length === 1) return { code: Code.BAD_STATE, log: 'the last validator cannot be removed' };
      return null;
    }
    case 'governor.add': {
      if (governors(state).includes(action.account)) return { code: Code.ALREADY_EXISTS, log: `${action.account} is already a governor` };
      const acc = state.get(accountKey(action.account)) as AccountRecord | undefined;
      if (acc?.roles.includes('supervisor')) return { code: Code.ROLE_CONFLICT, log: 'a supervisor holds no other role' };
      if (acc?.roles.includes('user')) return { code: Code.ROLE_CONFLICT, log: `${action.account} is a user's good account; a governor needs its own account` };
      return null;
    }
    case 'governor.remove': {
      const list = governors(state);
      if (!list.includes(action.account)) return { code: Code.NOT_FOUND, log: `${action.account} is not a governor` };
      if (list.length === 1) return { code: Code.BAD_STATE, log: 'the last governor cannot be removed' };
      return null;
    }
  }
}

function withRoles(state: StateView, id: string, change: (roles: Role[]) => Role[], name?: string): AccountRecord {
  const acc = (state.get(accountKey(id)) as AccountRecord | undefined) ?? { id, roles: [], status: 'active', points: 0, lots: [] };
  return accountRecord({ ...acc, roles: canonicalRoles(change(acc.roles)), name: name ?? acc.name });
}

/** Applies a checked action. */
function applyAction(ctx: HandlerContext, action: GovAction): { events: Event[]; validatorUpdates?: ValidatorUpdate[] } {
  const state = ctx.state;
  switch (action.type) {
    case 'org.register':
      state.put(accountKey(action.org), withRoles(state, action.org, (r) => [...r, ...action.roles], action.name));
      return { events: [event('org.register', { org: action.org, roles: action.roles.join(',') })] };
    case 'org.revoke':
      state.put(accountKey(action.org), withRoles(state, action.org, (r) => r.filter((x) => !action.roles.includes(x))));
      return { events: [event('org.revoke', { org: action.org, roles: action.roles.join(',') })] };
    case 'validator.add': {
      const set = validatorSet(state);
      const validator = { index: set.next, peerId: action.peerId, blsPublicKey: action.blsPublicKey, pop: action.pop };
      state.put(VALIDATORS_KEY, { next: set.next + 1, validators: [...set.validators, validator] });
      return { events: [event('validator.add', { index: String(validator.index), peerId: validator.peerId })], validatorUpdates: [{ type: 'add', validator }] };
    }
    case 'validator.remove': {
      const set = validatorSet(state);
      state.put(VALIDATORS_KEY, { next: set.next, validators: set.validators.filter((v) => v.index !== action.index) });
      return { events: [event('validator.remove', { index: String(action.index) })], validatorUpdates: [{ type: 'remove', index: action.index }] };
    }
    case 'governor.add':
      state.put(accountKey(action.account), withRoles(state, action.account, (r) => [...r, 'governor']));
      state.put(GOVERNORS_KEY, [...governors(state), action.account].sort());
      return { events: [event('governor.add', { account: action.account })] };
    case 'governor.remove':
      state.put(accountKey(action.account), withRoles(state, action.account, (r) => r.filter((x) => x !== 'governor')));
      state.put(GOVERNORS_KEY, governors(state).filter((g) => g !== action.account));
      return { events: [event('governor.remove', { account: action.account })] };
  }
}

/** Counts votes of current governors only: a governor removed meanwhile no longer counts. */
function tally(state: StateView, p: ProposalRecord): { approvals: number; rejections: number; governors: number } {
  const list = governors(state);
  return { approvals: p.approvals.filter((g) => list.includes(g)).length, rejections: p.rejections.filter((g) => list.includes(g)).length, governors: list.length };
}

/** Closes the proposal when the votes decide it; applies the action when it passes. */
function settle(ctx: HandlerContext, p: ProposalRecord, events: Event[]): Outcome {
  const t = tally(ctx.state, p);
  const time = ctx.block.timestamp;
  if (2 * t.approvals > t.governors) {
    const action = p.action as unknown as GovAction;
    const problem = checkAction(ctx.state, action);
    if (problem) {
      ctx.state.put(proposalKey(p.proposal), { ...p, status: 'failed', closedAt: time, reason: problem.log });
      appendAudit(ctx, { proposal: p.proposal, action: p.action, result: 'failed', reason: problem.log });
      return ok([...events, event('gov.failed', { proposal: p.proposal, reason: problem.log })]);
    }
    const applied = applyAction(ctx, action);
    ctx.state.put(proposalKey(p.proposal), { ...p, status: 'executed', closedAt: time });
    appendAudit(ctx, { proposal: p.proposal, action: p.action, result: 'executed' });
    return ok([...events, event('gov.executed', { action: action.type, proposal: p.proposal }), ...applied.events], applied.validatorUpdates);
  }
  if (2 * (t.governors - t.rejections) <= t.governors) {
    ctx.state.put(proposalKey(p.proposal), { ...p, status: 'rejected', closedAt: time });
    appendAudit(ctx, { proposal: p.proposal, action: p.action, result: 'rejected' });
    return ok([...events, event('gov.rejected', { proposal: p.proposal })]);
  }
  ctx.state.put(proposalKey(p.proposal), p);
  appendAudit(ctx, { proposal: p.proposal, action: p.action, result: 'open', approvals: t.approvals, rejections: t.rejections, governors: t.governors });
  return ok(events);
}

export const govPropose = defineHandler<{ proposal: string; action: GovAction }>({
  type: 'gov.propose',
  senders: ['governor'],
  parseBody: (body) => readBody(body, ['proposal', 'action'], (b) => ({ proposal: id(b, 'proposal'), action: parseAction(b.action) })),
  execute(ctx, body) {
    if (ctx.state.get(proposalKey(body.proposal))) return refused(Code.ALREADY_EXISTS, `proposal ${body.proposal} already exists`);
    const problem = checkAction(ctx.state, body.action);
    if (problem) return refused(problem.code, problem.log);
    if (body.action.type === 'validator.add') {
      // A key without a valid proof of possession would allow a rogue-key attack on aggregates.
      if (!blsPopVerify(from0x(body.action.blsPublicKey)!, from0x(body.action.pop)!)) {
        return refused(Code.BAD_POP, 'action.pop is not a valid proof of possession of action.blsPublicKey');
      }
    }
    const p: ProposalRecord = {
      proposal: body.proposal,
      proposer: ctx.tx.from,
      action: body.action as unknown as Record<string, unknown>,
      approvals: [ctx.tx.from],
      rejections: [],
      status: 'open',
      proposedAt: ctx.block.timestamp,
      closedAt: null,
      reason: null,
    };
    return settle(ctx, p, [event('gov.propose', { action: body.action.type, proposal: p.proposal, proposer: ctx.tx.from })]);
  },
});

export const govVote = defineHandler<{ proposal: string; approve: boolean }>({
  type: 'gov.vote',
  senders: ['governor'],
  parseBody: (body) => readBody(body, ['proposal', 'approve'], (b) => ({ proposal: id(b, 'proposal'), approve: bool(b, 'approve') })),
  execute(ctx, body) {
    const p = ctx.state.get(proposalKey(body.proposal)) as ProposalRecord | undefined;
    if (!p) return refused(Code.NOT_FOUND, `no proposal ${body.proposal}`);
    if (p.status !== 'open') return refused(Code.BAD_STATE, `proposal ${body.proposal} is ${p.status}`);
    const voter = ctx.tx.from;
    if (p.approvals.includes(voter) || p.rejections.includes(voter)) return refused(Code.ALREADY_VOTED, `${voter} already voted on proposal ${body.proposal}`);
    const next: ProposalRecord = body.approve ? { ...p, approvals: [...p.approvals, voter].sort() } : { ...p, rejections: [...p.rejections, voter].sort() };
    return settle(ctx, next, [event('gov.vote', { approve: String(body.approve), proposal: p.proposal, voter })]);
  },
});
