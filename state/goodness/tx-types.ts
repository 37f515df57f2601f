// Every transaction type of goodness.md and its handler. There is no transfer of points
// between accounts, by design: no such type exists, and an unknown type is refused.
import { accountOpen, consentGrant, consentRevoke } from './accounts.ts';
import { clearingClose, clearingConfirm, clearingDispute, clearingSettle } from './clearing.ts';
import { deedIssue, deedReject, deedReverse, deedSubmit } from './deeds.ts';
import { govPropose, govVote } from './governance.ts';
import type { TxHandler } from './handler.ts';
import { offerApprove, offerPublish, offerRedeem, redemptionCancel, redemptionFulfil } from './offers.ts';
import { poolCommit, poolConfirm, schemeApprove, schemeAssign, schemeDefine, schemeSuspend, schemeUnassign } from './schemes.ts';
import { superviseFreeze, superviseUnfreeze } from './supervision.ts';

const ALL: readonly TxHandler[] = [
  govPropose,
  govVote,
  accountOpen,
  consentGrant,
  consentRevoke,
  schemeDefine,
  schemeApprove,
  schemeSuspend,
  schemeAssign,
  schemeUnassign,
  poolCommit,
  poolConfirm,
  deedSubmit,
  deedIssue,
  deedReject,
  deedReverse,
  offerPublish,
  offerApprove,
  offerRedeem,
  redemptionFulfil,
  redemptionCancel,
  clearingClose,
  clearingSettle,
  clearingConfirm,
  clearingDispute,
  superviseFreeze,
  superviseUnfreeze,
];

export const HANDLERS: ReadonlyMap<string, TxHandler> = new Map(ALL.map((h) => [h.type, h]));

export const GOODNESS_TX_TYPES: readonly string[] = ALL.map((h) => h.type);

export function isKnownType(type: string): boolean {
  return HANDLERS.has(type);
}
