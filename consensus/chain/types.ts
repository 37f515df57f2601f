// The consensus objects of spec/chain.md, in the JSON shapes that are hashed and served.
// Hashes and keys are `0x` lowercase hex strings, as on the wire.

export interface Validator {
  index: number;
  peerId: string;
  /** 48-byte compressed G1 key, 0x hex */
  blsPublicKey: string;
}

/** A validator as genesis and `validator.add` register it: with its proof of possession. */
export interface ValidatorRegistration extends Validator {
  /** 96-byte G2 signature over the public key with the POP tag, 0x hex */
  pop: string;
}

export interface Header {
  chain: string;
  number: number;
  parentHash: string;
  /** block time in ms */
  timestamp: number;
  /** validator index of the proposer */
  proposer: number;
  txCount: number;
  txRoot: string;
  receiptRoot: string;
  appHash: string;
  validatorsHash: string;
  nextValidatorsHash: string;
}

export interface CommitCertificate {
  number: number;
  blockHash: string;
  view: number;
  /** validator indexes, ascending */
  signers: number[];
  /** 96-byte aggregate G2 signature, 0x hex */
  aggregateSignature: string;
}

export interface Event {
  type: string;
  attributes: Record<string, string>;
}

/** The consensus core of a receipt: what receiptRoot commits to. */
export interface ReceiptCore {
  txHash: string;
  status: 'ok' | 'rejected';
  code: number;
  log: string;
  events: Event[];
}

export interface ConsensusParams {
  /** a block is cut when it holds this many transactions */
  maxBlockTxs: number;
  /** ... or this many bytes of transactions */
  maxBlockBytes: number;
  /** ... or this long after its first pending transaction arrived (ms) */
  blockTimeMs: number;
  /** base view-change timeout (ms); the PBFT engine grows it while views fail */
  viewTimeoutMs: number;
  /**
   * heights PBFT keeps in flight at once; validator changes made by block h apply from
   * h + window + 1 (consensus/validator-schedule.ts), so every node must agree on it
   */
  window: number;
}

export interface Genesis {
  chain: string;
  genesisTime: number;
  validators: ValidatorRegistration[];
  consensus: ConsensusParams;
  /** the state machine's own initial state (for the goodness ledger: governors and orgs) */
  app: unknown;
}

export const DEFAULT_CONSENSUS_PARAMS: ConsensusParams = {
  maxBlockTxs: 5000,
  maxBlockBytes: 4 * 1024 * 1024,
  blockTimeMs: 100,
  viewTimeoutMs: 2000,
  window: 4,
};
