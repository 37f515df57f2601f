// Every transaction type of goodness.md, and the handlers of those implemented so far. A type
// listed here without a handler is refused at admission as not implemented yet.
import { accountOpen } from './accounts.ts';
import type { TxHandler } from './handler.ts';

export const GOODNESS_TX_TYPES: readonly string[] = [
  'gov.propose',
  'gov.vote',
  'account.open',
  'consent.grant',
  'consent.revoke',
  'scheme.define',
  'scheme.approve',
  'scheme.suspend',
  'scheme.assign',
  'scheme.unassign',
  'pool.commit',
  'pool.confirm',
  'deed.submit',
  'deed.issue',
  'deed.reject',
  'deed.reverse',
  'offer.publish',
  'offer.approve',
  'offer.redeem',
  'redemption.fulfil',
  'redemption.cancel',
  'clearing.close',
  'clearing.settle',
  'clearing.confirm',
  'clearing.dispute',
  'supervise.freeze',
  'supervise.unfreeze',
];

const IMPLEMENTED: readonly TxHandler[] = [accountOpen];

export const HANDLERS: ReadonlyMap<string, TxHandler> = new Map(IMPLEMENTED.map((h) => [h.type, h]));

const KNOWN = new Set(GOODNESS_TX_TYPES);

export function isKnownType(type: string): boolean {
  return KNOWN.has(type);
}
