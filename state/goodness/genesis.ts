// The genesis `app` section of the goodness ledger, checked strictly: a chain that starts from a
// malformed or role-conflicting genesis would carry the mistake forever.
//   {"governors": [accountId, ...], "orgs": [{"org": accountId, "name": "...", "roles": [...]}]}
import { isAccountId } from '../tx.ts';
import type { ValidatorRegistration } from '../../consensus/chain/types.ts';
import { accountKey, accountRecord, GOVERNORS_KEY, VALIDATORS_KEY, type AccountRecord, type ValidatorSetRecord } from './records.ts';
import { canonicalRoles, isRole, ORG_ROLES, roleConflict, type Role } from './roles.ts';

export const MAX_ORG_NAME_LENGTH = 200;

export interface GenesisOrg {
  org: string;
  name: string;
  roles: Role[];
}

export interface GoodnessGenesis {
  governors: string[];
  orgs: GenesisOrg[];
}

export class GenesisError extends Error {
  constructor(message: string) {
    super(`goodness genesis: ${message}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function exactKeys(value: Record<string, unknown>, keys: string[], where: string): void {
  const actual = Object.keys(value);
  for (const k of keys) if (!(k in value)) throw new GenesisError(`${where} is missing "${k}"`);
  const extra = actual.filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new GenesisError(`${where} has unknown members ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
}

export function parseGoodnessGenesis(app: unknown): GoodnessGenesis {
  if (!isPlainObject(app)) throw new GenesisError('the app section is an object {governors, orgs}');
  exactKeys(app, ['governors', 'orgs'], 'the app section');
  const { governors, orgs } = app;
  if (!Array.isArray(governors) || governors.length === 0) throw new GenesisError('governors is a non-empty list of account ids');
  const governorSet = new Set<string>();
  for (const g of governors) {
    if (!isAccountId(g)) throw new GenesisError(`governor ${JSON.stringify(g)} is not an account id (64 lowercase hex characters)`);
    if (governorSet.has(g)) throw new GenesisError(`governor ${g} is listed twice`);
    governorSet.add(g);
  }
  if (!Array.isArray(orgs)) throw new GenesisError('orgs is a list of {org, name, roles}');
  const seen = new Set<string>();
  const parsedOrgs: GenesisOrg[] = orgs.map((o, i) => {
    const where = `orgs[${i}]`;
    if (!isPlainObject(o)) throw new GenesisError(`${where} is an object {org, name, roles}`);
    exactKeys(o, ['org', 'name', 'roles'], where);
    if (!isAccountId(o.org)) throw new GenesisError(`${where}.org is not an account id (64 lowercase hex characters)`);
    if (seen.has(o.org)) throw new GenesisError(`organisation ${o.org} is listed twice`);
    seen.add(o.org);
    if (typeof o.name !== 'string' || o.name.trim() === '' || o.name.length > MAX_ORG_NAME_LENGTH) {
      throw new GenesisError(`${where}.name is a non-empty string of at most ${MAX_ORG_NAME_LENGTH} characters`);
    }
    if (!Array.isArray(o.roles) || o.roles.length === 0) throw new GenesisError(`${where}.roles is a non-empty list`);
    for (const r of o.roles) {
      if (!isRole(r) || !ORG_ROLES.includes(r)) {
        throw new GenesisError(`${where}.roles: ${JSON.stringify(r)} is not an organisation role (${ORG_ROLES.join(', ')})`);
      }
    }
    if (new Set(o.roles).size !== o.roles.length) throw new GenesisError(`${where}.roles lists a role twice`);
    const roles = canonicalRoles(o.roles as Role[]);
    const conflict = roleConflict(governorSet.has(o.org) ? canonicalRoles(['governor', ...roles]) : roles);
    if (conflict) throw new GenesisError(`${where} (${o.org}): ${conflict}`);
    return { org: o.org, name: o.name, roles };
  });
  return { governors: [...governors] as string[], orgs: parsedOrgs };
}

/**
 * The state genesis implies, as (key, value) pairs: one account per governor and organisation
 * (an account that is both gets both roles), the sorted governor list, and the validator set
 * (validator.add gives the next unused index, so the ledger must know the genesis indexes).
 */
export function genesisState(genesis: GoodnessGenesis, validators: readonly ValidatorRegistration[] = []): Map<string, unknown> {
  const accounts = new Map<string, AccountRecord>();
  const accountOf = (id: string): AccountRecord => {
    let a = accounts.get(id);
    if (!a) {
      a = { id, roles: [], status: 'active', points: 0, lots: [] };
      accounts.set(id, a);
    }
    return a;
  };
  for (const g of genesis.governors) accountOf(g).roles.push('governor');
  for (const o of genesis.orgs) {
    const a = accountOf(o.org);
    a.roles = canonicalRoles([...a.roles, ...o.roles]);
    a.name = o.name;
  }
  const state = new Map<string, unknown>();
  state.set(GOVERNORS_KEY, [...genesis.governors].sort());
  const sorted = [...validators].sort((a, b) => a.index - b.index);
  const validatorSet: ValidatorSetRecord = {
    next: sorted.length === 0 ? 0 : sorted.at(-1)!.index + 1,
    validators: sorted.map(({ index, peerId, blsPublicKey, pop }) => ({ index, peerId, blsPublicKey, pop })),
  };
  state.set(VALIDATORS_KEY, validatorSet);
  for (const a of accounts.values()) state.set(accountKey(a.id), accountRecord(a));
  return state;
}
