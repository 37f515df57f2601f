// Every method of spec/rpc.md, defined once: how its params are checked and what it answers.
// The server dispatches over this table, and the client SDK derives its typed signatures from
// it (MethodParams / MethodResult), so the two cannot drift apart.
import { headerFields, receiptHash } from '../consensus/chain/header.ts';
import { merkleProof } from '../consensus/chain/merkle.ts';
import type { CommitCertificate, Validator } from '../consensus/chain/types.ts';
import { from0x, fromUtf8, to0x } from '../consensus/crypto/encoding.ts';
import { QueryError } from '../state/machine.ts';
import type { Receipt, StoredBlock } from '../state/store/types.ts';
import { txHash, type TxEnvelope } from '../state/tx.ts';
import type { CommitWatch } from './commit-watch.ts';
import { ErrorCode, RpcError, invalidParams, submitError } from './errors.ts';
import type { ConsensusStatus, NodeApi, PeerInfo } from './node-api.ts';
import { boolParam, hashParam, heightParam, hexBytesParam, optional, paramList, positiveIntParam, stringParam } from './params.ts';
import { checkQueryAuth } from './query-auth.ts';
import type {
  BlockAnswer,
  ClientVersion,
  QueryResult,
  SyncStatus,
  TotalTransactionCount,
  TransactionAnswer,
  TransactionProof,
} from './types.ts';

/** sendTransactionAndWait waits this long when the caller gives no timeout. */
export const DEFAULT_WAIT_MS = 30_000;
/** ... and never longer than this, whatever the caller asks: a waiting call holds a connection. */
export const MAX_WAIT_MS = 120_000;
const MAX_QUERY_PATH = 4096;

/** What a handler may use besides its params. */
export interface CallContext {
  readonly api: NodeApi;
  readonly commits: CommitWatch;
  /** aborted when the caller has gone away (connection closed): long waits stop early */
  readonly signal: AbortSignal;
  now(): number;
}

export interface MethodDef<P extends readonly unknown[], R> {
  /** checks the raw `params` member; throws RpcError -32602 naming the problem */
  readonly params: (raw: unknown) => P;
  readonly handler: (ctx: CallContext, params: P) => R | Promise<R>;
}

function define<P extends readonly unknown[], R>(def: MethodDef<P, R>): MethodDef<P, R> {
  return def;
}

function noParams(raw: unknown): [] {
  paramList(raw, 0, 0, []);
  return [];
}

function certificateAnswer(c: CommitCertificate): CommitCertificate {
  return { number: c.number, blockHash: c.blockHash, view: c.view, signers: [...c.signers], aggregateSignature: c.aggregateSignature };
}

/**
 * The decoded envelope of tx.md. Machines whose transactions are not JSON (the kv machine's
 * `key=value`) get `{raw: "0x..."}`, so that these methods answer on every chain.
 */
function decodeStoredTx(bytes: Uint8Array): TxEnvelope {
  try {
    return JSON.parse(fromUtf8(bytes)) as TxEnvelope;
  } catch {
    return { raw: to0x(bytes) } as unknown as TxEnvelope;
  }
}

async function blockAnswer(api: NodeApi, block: StoredBlock, includeTransactions: boolean): Promise<BlockAnswer> {
  let transactions: string[] | TxEnvelope[] = [...block.txHashes];
  if (includeTransactions) {
    transactions = await Promise.all(
      block.txHashes.map(async (hash) => {
        const stored = await api.store.getTx(hash);
        if (!stored) throw new Error(`block ${block.header.number} lists transaction ${hash} that the store does not hold`);
        return decodeStoredTx(stored.bytes);
      }),
    );
  }
  return { ...headerFields(block.header), hash: block.hash, view: block.view, transactions };
}

function receiptLeaf(r: Receipt): Uint8Array {
  return receiptHash({ txHash: r.hash, status: r.status, code: r.code, log: r.log, events: r.events });
}

async function transactionProof(api: NodeApi, hash: string): Promise<TransactionProof | null> {
  const receipt = await api.store.getReceipt(hash);
  if (!receipt) return null;
  const height = receipt.blockNumber;
  const [block, certificate, receipts] = await Promise.all([api.store.getBlock(height), api.store.getCertificate(height), api.store.getBlockReceipts(height)]);
  if (!block || !certificate) throw new Error(`block ${height} of receipt ${hash} is missing its header or certificate`);
  const txLeaves = block.txHashes.map((h) => from0x(h, 32)!);
  const receiptLeaves = receipts.map(receiptLeaf);
  if (receiptLeaves.length !== txLeaves.length) throw new Error(`block ${height} has ${txLeaves.length} transactions but ${receiptLeaves.length} receipts`);
  return {
    header: headerFields(block.header),
    certificate: certificateAnswer(certificate),
    tx: { index: receipt.index, hash, path: merkleProof(txLeaves, receipt.index).map(to0x) },
    receipt: { index: receipt.index, receipt, path: merkleProof(receiptLeaves, receipt.index).map(to0x) },
  };
}

/** Waits for a receipt until it arrives, the timeout passes (null), or the caller goes away (null). */
function raceReceipt(receipt: Promise<Receipt>, timeoutMs: number, signal: AbortSignal): Promise<Receipt | null> {
  return new Promise((resolve) => {
    const finish = (r: Receipt | null): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = (): void => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    signal.addEventListener('abort', onAbort);
    receipt.then(finish);
  });
}

/**
 * The bytes of a rawTx that `params` has checked (0x and an even number of lowercase hex
 * digits): decoded without another pass over them. A batch of 500 transactions is 350 KB of hex,
 * and it was checked by three regular expressions before.
 */
function rawTxBytes(checkedHex: string): Uint8Array {
  if (checkedHex.length === 2) throw invalidParams('rawTx is empty');
  return Buffer.from(checkedHex.slice(2), 'hex');
}

/**
 * -32002 before the transaction is decoded and hashed, when the node takes no client transaction
 * now (NodeApi.clientPoolFull). A client that keeps sending to a full node then costs it a few
 * comparisons per transaction instead of a hex decode, a SHA-256 and a pool lookup (a third of
 * a refusal's cost on the node's main thread). Such a transaction is not checked for being a
 * duplicate first: sent again later, it is told -32003 then.
 */
function refuseIfPoolFull(api: NodeApi, checkedHex: string): void {
  if (checkedHex.length === 2) return;
  const full = api.clientPoolFull?.((checkedHex.length - 2) / 2);
  if (full) throw submitError({ ok: false, error: 'pool-full', log: full });
}

export const methods = {
  // --- Transactions ---
  sendTransaction: define<[rawTx: string], string>({
    params: (raw) => {
      const [tx] = paramList(raw, 1, 1, ['rawTx']);
      hexBytesParam(tx, 'rawTx');
      return [tx as string];
    },
    handler: async ({ api }, [rawTx]) => {
      refuseIfPoolFull(api, rawTx);
      const bytes = rawTxBytes(rawTx);
      const result = await api.submitTx(bytes);
      if (!result.ok) throw submitError(result);
      return result.hash;
    },
  }),

  sendTransactionAndWait: define<[rawTx: string, timeoutMs?: number], Receipt>({
    params: (raw) => {
      const [tx, timeout] = paramList(raw, 1, 2, ['rawTx', 'timeoutMs?']);
      hexBytesParam(tx, 'rawTx');
      const timeoutMs = optional(timeout, (v) => positiveIntParam(v, 'timeoutMs'));
      return timeoutMs === undefined ? [tx as string] : [tx as string, timeoutMs];
    },
    handler: async ({ api, commits, signal }, [rawTx, timeoutMs]) => {
      refuseIfPoolFull(api, rawTx);
      const bytes = rawTxBytes(rawTx);
      const hash = txHash(bytes);
      // Expect the receipt before submitting: the block could commit before submitTx returns.
      const expectation = commits.expect(hash);
      const result = await api.submitTx(bytes);
      if (!result.ok) {
        expectation.cancel();
        throw submitError(result);
      }
      const waitMs = Math.min(timeoutMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS);
      const receipt = await raceReceipt(expectation.receipt, waitMs, signal);
      expectation.cancel();
      if (!receipt) throw new RpcError(ErrorCode.TIMEOUT, `transaction ${hash} not committed within ${waitMs} ms; it may still commit`, { hash });
      return receipt;
    },
  }),

  getTransactionByHash: define<[hash: string], TransactionAnswer | null>({
    params: (raw) => {
      const [hash] = paramList(raw, 1, 1, ['hash']);
      return [hashParam(hash, 'hash')];
    },
    handler: async ({ api }, [hash]) => {
      const stored = await api.store.getTx(hash);
      if (!stored) return null;
      return { hash, blockNumber: stored.blockNumber, index: stored.index, tx: decodeStoredTx(stored.bytes) };
    },
  }),

  getTransactionReceipt: define<[hash: string], Receipt | null>({
    params: (raw) => {
      const [hash] = paramList(raw, 1, 1, ['hash']);
      return [hashParam(hash, 'hash')];
    },
    handler: async ({ api }, [hash]) => api.store.getReceipt(hash),
  }),

  /** null while the transaction is unknown or pending */
  getTransactionProof: define<[hash: string], TransactionProof | null>({
    params: (raw) => {
      const [hash] = paramList(raw, 1, 1, ['hash']);
      return [hashParam(hash, 'hash')];
    },
    handler: ({ api }, [hash]) => transactionProof(api, hash),
  }),

  getPendingTxSize: define<[], number>({
    params: noParams,
    handler: ({ api }) => api.pendingCount(),
  }),

  getTotalTransactionCount: define<[], TotalTransactionCount>({
    params: noParams,
    handler: ({ api }) => {
      const totals = api.store.totals();
      return { blockNumber: api.store.latestHeight(), transactions: totals.transactions, rejected: totals.rejected };
    },
  }),

  // --- Blocks ---
  getBlockNumber: define<[], number>({
    params: noParams,
    handler: ({ api }) => api.store.latestHeight(),
  }),

  getBlockByNumber: define<[number: number, includeTransactions?: boolean], BlockAnswer | null>({
    params: (raw) => {
      const [n, include] = paramList(raw, 1, 2, ['number', 'includeTransactions?']);
      const includeTransactions = optional(include, (v) => boolParam(v, 'includeTransactions'));
      return includeTransactions === undefined ? [heightParam(n, 'number')] : [heightParam(n, 'number'), includeTransactions];
    },
    handler: async ({ api }, [n, includeTransactions]) => {
      const block = await api.store.getBlock(n);
      return block ? blockAnswer(api, block, includeTransactions ?? false) : null;
    },
  }),

  getBlockByHash: define<[hash: string, includeTransactions?: boolean], BlockAnswer | null>({
    params: (raw) => {
      const [hash, include] = paramList(raw, 1, 2, ['hash', 'includeTransactions?']);
      const includeTransactions = optional(include, (v) => boolParam(v, 'includeTransactions'));
      return includeTransactions === undefined ? [hashParam(hash, 'hash')] : [hashParam(hash, 'hash'), includeTransactions];
    },
    handler: async ({ api }, [hash, includeTransactions]) => {
      const height = await api.store.getHeightByHash(hash);
      if (height === null) return null;
      const block = await api.store.getBlock(height);
      return block ? blockAnswer(api, block, includeTransactions ?? false) : null;
    },
  }),

  /** null for block 0 (genesis has no certificate) and for blocks not committed yet */
  getCommitCertificate: define<[number: number], CommitCertificate | null>({
    params: (raw) => {
      const [n] = paramList(raw, 1, 1, ['number']);
      return [heightParam(n, 'number')];
    },
    handler: async ({ api }, [n]) => {
      if (n === 0) return null;
      const c = await api.store.getCertificate(n);
      return c ? certificateAnswer(c) : null;
    },
  }),

  // --- The state machine ---
  query: define<[path: string, auth?: { from: string; timestamp: number; sig: string }], QueryResult>({
    params: (raw) => {
      const [path, auth] = paramList(raw, 1, 2, ['path', 'auth?']);
      const p = stringParam(path, 'path', MAX_QUERY_PATH);
      if (auth === undefined || auth === null) return [p];
      return [p, auth as { from: string; timestamp: number; sig: string }];
    },
    handler: async ({ api, now }, [path, auth]) => {
      let caller: string | null = null;
      if (auth !== undefined) {
        const check = checkQueryAuth(path, auth, now());
        if (!check.ok) throw invalidParams(`bad query auth: ${check.reason}`);
        caller = check.caller;
      }
      try {
        const answer = await api.query(path, caller);
        return { height: answer.height, value: answer.value };
      } catch (e) {
        if (e instanceof QueryError) throw new RpcError(e.rpcCode, e.message);
        throw e;
      }
    },
  }),

  // --- Consensus and network ---
  getClientVersion: define<[], ClientVersion>({
    params: noParams,
    handler: ({ api }) => ({ version: api.version, chain: api.chain, nodeId: api.nodeId }),
  }),

  getConsensusStatus: define<[], ConsensusStatus>({
    params: noParams,
    handler: ({ api }) => api.consensusStatus(),
  }),

  /** the set that signs block `number` (default: the next block); known up to latest + 1 */
  getValidators: define<[number?: number], Validator[]>({
    params: (raw) => {
      const [n] = paramList(raw, 0, 1, ['number?']);
      const height = optional(n, (v) => heightParam(v, 'number'));
      return height === undefined ? [] : [height];
    },
    handler: ({ api }, [n]) => {
      const next = api.store.latestHeight() + 1;
      const height = n ?? next;
      if (height > next) throw new RpcError(ErrorCode.NOT_FOUND, `the validator set of block ${height} is not known yet; the next block is ${next}`);
      return api
        .validatorsAt(height)
        .map((v) => ({ index: v.index, peerId: v.peerId, blsPublicKey: v.blsPublicKey }))
        .sort((a, b) => a.index - b.index);
    },
  }),

  getSyncStatus: define<[], SyncStatus>({
    params: noParams,
    handler: ({ api }) => api.syncStatus(),
  }),

  getPeers: define<[], PeerInfo[]>({
    params: noParams,
    handler: ({ api }) => api.peers(),
  }),
};

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type MethodParams<M extends MethodName> = ReturnType<Methods[M]['params']>;
export type MethodResult<M extends MethodName> = Awaited<ReturnType<Methods[M]['handler']>>;

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(methods, name);
}
