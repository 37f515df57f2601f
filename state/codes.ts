// Result codes of the state machines: the `code` of a receipt, and the `data.code` of an
// admission refusal (-32001). 0 is success. One table, so a code means one thing everywhere.
export const Code = {
  OK: 0,
  // form of the transaction (tx.md)
  MALFORMED: 1,
  NOT_CANONICAL: 2,
  BAD_SIGNATURE: 3,
  WRONG_CHAIN: 4,
  EXPIRED: 5,
  EXPIRES_TOO_FAR: 6,
  UNKNOWN_TYPE: 7,
  NONCE_USED: 8,
  BAD_BODY: 9,
  // the ledger's refusals (goodness.md)
  NOT_PERMITTED: 10,
  FROZEN: 11,
  NOT_FOUND: 12,
  ALREADY_EXISTS: 13,
  NO_CONSENT: 14,
  OVER_CAP: 15,
  OVER_BUDGET: 16,
  INSUFFICIENT_POINTS: 17,
  OUT_OF_STOCK: 18,
  BAD_STATE: 19,
  ROLE_CONFLICT: 20,
  OUT_OF_WINDOW: 21,
  DUPLICATE_EVIDENCE: 22,
  ALREADY_VOTED: 23,
  /** validator.add with a BLS key whose proof of possession does not verify */
  BAD_POP: 24,
} as const;

export type CodeName = keyof typeof Code;
