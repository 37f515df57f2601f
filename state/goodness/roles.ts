// The roles of goodness.md's role table, in the table's order (the order roles are listed in).
export const ROLES = ['governor', 'issuer', 'distributor', 'sponsor', 'exchange', 'clearing', 'supervisor', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** Roles governance gives organisations (governors are named apart; users open their own accounts). */
export const ORG_ROLES: readonly Role[] = ['issuer', 'distributor', 'sponsor', 'exchange', 'clearing', 'supervisor'];

const ROLE_ORDER = new Map<string, number>(ROLES.map((r, i) => [r, i]));

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && ROLE_ORDER.has(value);
}

/** Distinct roles in table order, so that an account's roles read (and hash) the same everywhere. */
export function canonicalRoles(roles: Iterable<Role>): Role[] {
  return [...new Set(roles)].sort((a, b) => ROLE_ORDER.get(a)! - ROLE_ORDER.get(b)!);
}

/**
 * Account-level role separation (goodness.md): a supervisor holds no other role. The other two
 * rules are per scheme and per pool and are checked where schemes and pools are handled.
 * Returns why the set is not allowed, or null.
 */
export function roleConflict(roles: readonly Role[]): string | null {
  if (roles.includes('supervisor') && roles.length > 1) return 'a supervisor holds no other role';
  return null;
}

/** Whether the account holds one of `roles`. */
export function holds(account: { roles: readonly Role[] } | undefined, ...roles: Role[]): boolean {
  return account !== undefined && account.roles.some((r) => roles.includes(r));
}
