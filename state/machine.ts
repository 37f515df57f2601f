// The state-machine boundary (DESIGN.md, shaped like ABCI): the engine orders opaque bytes and
// hands them over; the machine checks, executes, commits and answers queries. The engine never
// reaches into the ledger, and the ledger never sees the network.
import type { Event, Genesis, ReceiptCore, ValidatorRegistration } from '../consensus/chain/types.ts';
import type { SignatureJob } from '../consensus/crypto/verifier.ts';

/** Read access to the machine's own committed state (the `S` bucket of the chain store). */
export interface StateReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Every (key, value) whose key starts with `prefix`, in key order. */
  entries(prefix: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]>;
}

/** A state write for the block's atomic batch: value null deletes the key. */
export type StateWrite = [key: Uint8Array, value: Uint8Array | null];

/**
 * A block's state writes: the list, or a compact form that makes the list when asked. A block's
 * writes wait for its commit certificate; a machine that already holds them encoded in one
 * buffer hands that over, rather than two views per write that would live as long. List them
 * before the block is committed (commit(height)): once it is, a machine may reuse the memory of
 * writes already listed for later blocks (the goodness ledger then refuses to list them again).
 */
export type StateWrites = StateWrite[] | { toArray(): StateWrite[] };

/** The list of a block's writes, whichever form the machine gave them in. */
export function listWrites(writes: StateWrites): StateWrite[] {
  return Array.isArray(writes) ? writes : writes.toArray();
}

export interface MachineInfo {
  /** height of the last block whose state is committed (0 after genesis) */
  height: number;
  /** 0x hex app hash after that block */
  appHash: string;
}

/** What admission learned about a transaction; the pool keys its limits on these. */
export type CheckResult =
  | {
      ok: true;
      hash: string;
      /** sender account (tx.md `from`); absent for machines without senders (kv) */
      sender?: string;
      nonce?: string;
      /** last height the transaction may be included at; absent when it never expires */
      expires?: number;
      /**
       * the decoded transaction, handed back at execution so that nothing is decoded or
       * verified twice; it counts as signature-checked once `signature` (if any) has verified
       */
      checked: unknown;
      /**
       * the signature the engine must verify before admitting the transaction; the engine
       * verifies admission signatures in batches off the main thread (SignatureVerifier)
       */
      signature?: SignatureJob;
    }
  | { ok: false; code: number; log: string };

export interface CheckContext {
  /** the height the transaction would be included at, at the earliest */
  height: number;
  /** the transaction's hash, when the engine has computed it already (it is not computed twice) */
  hash?: string;
}

export interface BlockContext {
  height: number;
  /** block time, ms: the only clock a machine may read */
  timestamp: number;
  proposer: number;
}

export interface BlockTx {
  hash: string;
  bytes: Uint8Array;
  /** CheckResult.checked from this node's admission; absent when the transaction reached this node only in a block */
  checked?: unknown;
}

export type ValidatorUpdate = { type: 'add'; validator: ValidatorRegistration } | { type: 'remove'; index: number };

export interface ExecutionResult {
  /** one per transaction, in block order */
  receipts: ReceiptCore[];
  appHash: string;
  validatorUpdates: ValidatorUpdate[];
  /** the block's state changes, written in the same atomic batch as the block (listWrites lists them) */
  writes: StateWrites;
}

export interface QueryAnswer {
  height: number;
  value: unknown;
}

/** A query refusal: -32007 not permitted, -32004 not found, -32602 bad path. */
export class QueryError extends Error {
  constructor(
    readonly rpcCode: -32007 | -32004 | -32602,
    message: string,
  ) {
    super(message);
  }
}

export interface StateMachine {
  readonly name: string;
  /** Loads committed state (or the genesis `app` section on first start) and says where it is. */
  open(state: StateReader, genesis: Genesis): Promise<MachineInfo>;
  info(): MachineInfo;
  /**
   * Admission: form and what the committed state can already tell (nonce used, sender's
   * role), and which signature the engine must verify. Called once per transaction per node;
   * must not change state.
   */
  checkTx(bytes: Uint8Array, ctx: CheckContext): CheckResult;
  /**
   * Executes a block on top of the committed state without committing it. A transaction the
   * machine refuses gets a receipt with status "rejected" and changes nothing else.
   */
  executeBlock(ctx: BlockContext, txs: BlockTx[]): ExecutionResult;
  /** The block executed last is now durable (its writes are on disk): make it the committed state. */
  commit(height: number): void;
  /** Reads committed state. `caller` is the account id proven by the query's auth, or null. */
  query(path: string, caller: string | null): QueryAnswer;
}

/**
 * An event of a receipt. The goodness handlers list attributes in JCS order (keys sorted by
 * code unit): receipts are hashed as JCS for every transaction of every block, and attributes
 * already in order are written by one JSON.stringify, with no sort (eventsJcs). Any order is
 * still hashed correctly.
 */
export function event(type: string, attributes: Record<string, string>): Event {
  return { type, attributes };
}
