// The typed client SDK. Method signatures come from the server's own definitions
// (methods.ts), so a call that type-checks here is one the server accepts. HTTP over a
// keep-alive agent for calls and batches; WebSocket (ws-client.ts) for subscriptions.
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import type { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { jcs, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { buildTx, type TxEnvelope } from '../state/tx.ts';
import { RpcError, type RpcErrorObject } from './errors.ts';
import type { LightClient } from './light-client.ts';
import type { MethodName, MethodParams, MethodResult } from './methods.ts';
import { signQueryAuth } from './query-auth.ts';
import type { BlockAnswer, CommitCertificate, HeaderWithHash, QueryAuth, QueryResult, Receipt, TransactionAnswer, TransactionProof, Validator } from './types.ts';
import { GoodnessWsClient, type WsClientOptions } from './ws-client.ts';

export { RpcError, signQueryAuth };

/** One call of a batch, typed by its method. */
export type Call = { [M in MethodName]: { method: M; params: MethodParams<M> } }[MethodName];
export type Settled<T> = { ok: true; result: T } | { ok: false; error: RpcError };
export type BatchResults<C extends readonly Call[]> = { [K in keyof C]: Settled<C[K] extends { method: infer M extends MethodName } ? MethodResult<M> : never> };

export interface ClientOptions {
  /** default: a keep-alive agent owned by the client (closed by close()) */
  agent?: http.Agent;
  /** per HTTP request (default 150 s: longer than the server's longest sendTransactionAndWait) */
  timeoutMs?: number;
  ws?: WsClientOptions;
}

export interface TxRequest {
  type: string;
  body: Record<string, unknown>;
  /** default: 22 random characters of [A-Za-z0-9_-] */
  nonce?: string;
  /** default: the current height + DEFAULT_EXPIRY_BLOCKS */
  expires?: number;
}

export interface VerifiedTransaction {
  hash: string;
  blockNumber: number;
  blockHash: string;
  index: number;
  tx: TxEnvelope;
  receipt: Receipt;
}

export class VerificationError extends Error {
  constructor(readonly reason: string) {
    super(`not verified: ${reason}`);
    this.name = 'VerificationError';
  }
}

/** How far ahead sendTx sets expires when not told (tx.md allows up to 1000). */
export const DEFAULT_EXPIRY_BLOCKS = 500;
/** sendTx reads the height at most this often: a height a second old is as good for expiry. */
const HEIGHT_CACHE_MS = 1_000;

type Answer = { id?: unknown; result?: unknown; error?: RpcErrorObject };

export function randomNonce(): string {
  return randomBytes(16).toString('base64url');
}

export class GoodnessClient {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly ownsAgent: boolean;
  private readonly timeoutMs: number;
  private nextId = 1;
  private chainId: string | null = null;
  private heightCache: { height: number; at: number } | null = null;
  private wsClient: Promise<GoodnessWsClient> | null = null;

  constructor(
    url: string,
    private readonly options: ClientOptions = {},
  ) {
    this.url = new URL(url);
    this.ownsAgent = !options.agent;
    this.agent = options.agent ?? new (this.url.protocol === 'https:' ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 64 });
    this.timeoutMs = options.timeoutMs ?? 150_000;
  }

  /** One JSON-RPC call; throws RpcError for an error answer. */
  async call<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    const id = this.nextId++;
    const answer = (await this.post(JSON.stringify({ jsonrpc: '2.0', id, method, params }))) as Answer;
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) throw new Error(`malformed answer to ${method}`);
    if (answer.error) throw RpcError.fromObject(answer.error);
    if (answer.id !== id) throw new Error(`answer to ${method} carries id ${String(answer.id)}, expected ${id}`);
    return answer.result as MethodResult<M>;
  }

  /**
   * Several calls in one request; each settles on its own. Throws RpcError when the server
   * refuses the batch as a whole (too many calls, body too large).
   */
  async batch<const C extends readonly Call[]>(calls: C): Promise<BatchResults<C>> {
    if (calls.length === 0) return [] as unknown as BatchResults<C>;
    const first = this.nextId;
    this.nextId += calls.length;
    const body = JSON.stringify(calls.map((c, i) => ({ jsonrpc: '2.0', id: first + i, method: c.method, params: c.params })));
    const answer = await this.post(body);
    if (!Array.isArray(answer)) {
      const a = answer as Answer;
      if (a?.error) throw RpcError.fromObject(a.error);
      throw new Error('malformed batch answer');
    }
    const out: Settled<unknown>[] = new Array(calls.length);
    for (const a of answer as Answer[]) {
      const i = typeof a?.id === 'number' ? a.id - first : -1;
      if (i < 0 || i >= calls.length) continue;
      out[i] = a.error ? { ok: false, error: RpcError.fromObject(a.error) } : { ok: true, result: a.result };
    }
    for (let i = 0; i < out.length; i++) {
      if (!out[i]) out[i] = { ok: false, error: new RpcError(-32603, `no answer for call ${i} (${calls[i]!.method}) in the batch`) };
    }
    return out as unknown as BatchResults<C>;
  }

  // --- Transactions ---
  sendTransaction(rawTx: string): Promise<string> {
    return this.call('sendTransaction', [rawTx]);
  }
  sendTransactionAndWait(rawTx: string, timeoutMs?: number): Promise<Receipt> {
    return this.call('sendTransactionAndWait', timeoutMs === undefined ? [rawTx] : [rawTx, timeoutMs]);
  }
  getTransactionByHash(hash: string): Promise<TransactionAnswer | null> {
    return this.call('getTransactionByHash', [hash]);
  }
  getTransactionReceipt(hash: string): Promise<Receipt | null> {
    return this.call('getTransactionReceipt', [hash]);
  }
  getTransactionProof(hash: string): Promise<TransactionProof | null> {
    return this.call('getTransactionProof', [hash]);
  }
  getPendingTxSize(): Promise<number> {
    return this.call('getPendingTxSize', []);
  }
  getTotalTransactionCount(): Promise<MethodResult<'getTotalTransactionCount'>> {
    return this.call('getTotalTransactionCount', []);
  }

  // --- Blocks ---
  getBlockNumber(): Promise<number> {
    return this.call('getBlockNumber', []);
  }
  getBlockByNumber(n: number, includeTransactions?: boolean): Promise<BlockAnswer | null> {
    return this.call('getBlockByNumber', includeTransactions === undefined ? [n] : [n, includeTransactions]);
  }
  getBlockByHash(hash: string, includeTransactions?: boolean): Promise<BlockAnswer | null> {
    return this.call('getBlockByHash', includeTransactions === undefined ? [hash] : [hash, includeTransactions]);
  }
  getCommitCertificate(n: number): Promise<CommitCertificate | null> {
    return this.call('getCommitCertificate', [n]);
  }

  // --- The state machine ---
  query(path: string, auth?: QueryAuth): Promise<QueryResult> {
    return this.call('query', auth ? [path, auth] : [path]);
  }
  /** A query signed by `signer`, so the state machine answers what that account may see. */
  queryAs(signer: Ed25519Signer, path: string): Promise<QueryResult> {
    return this.query(path, signQueryAuth(signer, path));
  }

  // --- Consensus and network ---
  getClientVersion(): Promise<MethodResult<'getClientVersion'>> {
    return this.call('getClientVersion', []);
  }
  getConsensusStatus(): Promise<MethodResult<'getConsensusStatus'>> {
    return this.call('getConsensusStatus', []);
  }
  getValidators(n?: number): Promise<Validator[]> {
    return this.call('getValidators', n === undefined ? [] : [n]);
  }
  getSyncStatus(): Promise<MethodResult<'getSyncStatus'>> {
    return this.call('getSyncStatus', []);
  }
  getPeers(): Promise<MethodResult<'getPeers'>> {
    return this.call('getPeers', []);
  }

  // --- Transaction helpers ---
  /** The chain id, asked once. */
  async chain(): Promise<string> {
    this.chainId ??= (await this.getClientVersion()).chain;
    return this.chainId;
  }

  /** Builds and signs a transaction (tx.md) without sending it: its bytes as 0x hex, and its hash. */
  async buildTx(signer: Ed25519Signer, req: TxRequest): Promise<{ raw: string; hash: string; envelope: TxEnvelope }> {
    const [chain, expires] = await Promise.all([this.chain(), req.expires ?? this.recentHeight().then((h) => h + DEFAULT_EXPIRY_BLOCKS)]);
    const built = buildTx(signer, { chain, type: req.type, body: req.body, nonce: req.nonce ?? randomNonce(), expires });
    return { raw: to0x(built.bytes), hash: built.hash, envelope: built.envelope };
  }

  /** Builds, signs and sends; resolves to the transaction hash once the node admitted it. */
  async sendTx(signer: Ed25519Signer, req: TxRequest): Promise<string> {
    return this.sendTransaction((await this.buildTx(signer, req)).raw);
  }

  /** Builds, signs, sends and waits for the receipt (RpcError -32005 after the timeout). */
  async sendTxAndWait(signer: Ed25519Signer, req: TxRequest, timeoutMs?: number): Promise<Receipt> {
    return this.sendTransactionAndWait((await this.buildTx(signer, req)).raw, timeoutMs);
  }

  signQueryAuth(signer: Ed25519Signer, path: string): QueryAuth {
    return signQueryAuth(signer, path);
  }

  // --- Verified reads ---
  /**
   * A committed transaction checked against `light`'s verified chain (syncing it as needed
   * through this client): the block's certificate, both Merkle paths, and the envelope's hash.
   * null while the transaction is unknown or pending; VerificationError when anything is off.
   */
  async verifiedTransaction(hash: string, light: LightClient): Promise<VerifiedTransaction | null> {
    const [proofAnswer, txAnswer] = await this.batch([
      { method: 'getTransactionProof', params: [hash] },
      { method: 'getTransactionByHash', params: [hash] },
    ] as const);
    if (!proofAnswer.ok) throw proofAnswer.error;
    if (!txAnswer.ok) throw txAnswer.error;
    const proof = proofAnswer.result;
    if (proof === null) return null;
    const check = await light.verifyTransactionProof(proof, this);
    if (!check.ok) throw new VerificationError(check.reason);
    if (check.txHash !== hash) throw new VerificationError(`the proof is for transaction ${check.txHash}, not ${hash}`);
    const tx = txAnswer.result;
    if (!tx) throw new VerificationError('the node proves the transaction but does not return it');
    // The chain stores JCS(envelope) (tx.md), so re-canonicalising the envelope gives back the hashed bytes.
    const txHash = to0x(sha256(utf8(jcs(tx.tx))));
    if (txHash !== hash) throw new VerificationError(`the returned envelope hashes to ${txHash}, not ${hash}`);
    return { hash, blockNumber: check.height, blockHash: check.blockHash, index: check.receipt.index, tx: tx.tx, receipt: check.receipt };
  }

  // --- WebSocket ---
  /** The client's WebSocket connection, opened on first use. */
  ws(): Promise<GoodnessWsClient> {
    if (!this.wsClient) {
      this.wsClient = GoodnessWsClient.connect(this.url.toString(), this.options.ws);
      this.wsClient.catch(() => (this.wsClient = null));
    }
    return this.wsClient.then(async (c) => {
      if (!c.closed) return c;
      this.wsClient = null;
      return this.ws();
    });
  }
  async subscribeNewBlocks(cb: (header: HeaderWithHash) => void): Promise<() => Promise<boolean>> {
    return (await this.ws()).subscribeNewBlocks(cb);
  }
  async waitForTransaction(hash: string, timeoutMs?: number): Promise<Receipt> {
    return (await this.ws()).waitForTransaction(hash, timeoutMs);
  }

  async close(): Promise<void> {
    const ws = this.wsClient;
    this.wsClient = null;
    if (ws) await ws.then((c) => c.close()).catch(() => {});
    if (this.ownsAgent) this.agent.destroy();
  }

  private async recentHeight(): Promise<number> {
    const now = Date.now();
    if (this.heightCache && now - this.heightCache.at < HEIGHT_CACHE_MS) return this.heightCache.height;
    const height = await this.getBlockNumber();
    this.heightCache = { height, at: now };
    return height;
  }

  /** POSTs a JSON body and parses the JSON answer, whatever the HTTP status (413 carries a JSON-RPC error). */
  private post(body: string): Promise<unknown> {
    const transport = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode === 204) return resolve(null);
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer from ${this.url.href} within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
