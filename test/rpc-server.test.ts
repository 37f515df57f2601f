// The JSON-RPC server's protocol behaviour, over real HTTP and WebSocket connections on
// 127.0.0.1. The node underneath is a small NodeApi written here over an in-memory chain of
// real blocks (rpc/testing.ts), because what is pinned is the server: every error path, batches,
// notifications, limits, subscriptions and slow consumers. The node assembly with its RocksDB
// store, pool and consensus is tested end to end in its own file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import type { Validator } from '../consensus/chain/types.ts';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { jcs, sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { QueryError, type QueryAnswer } from '../state/machine.ts';
import type { Receipt, StoredBlock } from '../state/store/types.ts';
import { buildTx, decodeTx } from '../state/tx.ts';
import { GoodnessClient, RpcError } from '../rpc/client.ts';
import { ErrorCode } from '../rpc/errors.ts';
import { LightClient, verifyTransactionProof } from '../rpc/light-client.ts';
import type { ConsensusStatus, NodeApi, PeerInfo, SubmitResult } from '../rpc/node-api.ts';
import { signQueryAuth } from '../rpc/query-auth.ts';
import { startRpcServer, type RpcServer, type RpcServerOptions } from '../rpc/server.ts';
import { MemoryChain, makeValidatorSet } from './fixtures/memory-chain.ts';
import type { HeaderWithHash } from '../rpc/types.ts';

const CHAIN = 'goodness-rpc-test';
const set = makeValidatorSet(4);
const alice = new Ed25519Signer(ed25519Keygen().secretKey);
const bob = new Ed25519Signer(ed25519Keygen().secretKey);

/** A node as far as the server can tell: admission into a pool, blocks committed on demand. */
class TestNode implements NodeApi {
  readonly nodeId = '12D3KooWTestNode';
  readonly version = 'goodness/test';
  readonly store: MemoryChain;
  readonly pending = new Map<string, Uint8Array>();
  poolLimit = 50;
  /** what clientPoolFull says (null: room); submitTx calls counted to see what it kept from them */
  fullBeforeDecoding: string | null = null;
  submitted = 0;
  isHealthy = true;
  private readonly listeners = new Set<(b: StoredBlock, r: Receipt[]) => void>();
  constructor(
    readonly chain = CHAIN,
    readonly registry = new Registry(),
  ) {
    this.store = new MemoryChain(chain, set);
  }
  clientPoolFull(_size: number): string | null {
    return this.fullBeforeDecoding;
  }
  async submitTx(bytes: Uint8Array): Promise<SubmitResult> {
    this.submitted++;
    const d = decodeTx(bytes, this.chain);
    if (!d.ok) return { ok: false, error: 'refused', code: d.code, log: d.log };
    if (this.pending.has(d.tx.hash) || (await this.store.hasTx(d.tx.hash))) return { ok: false, error: 'duplicate', log: 'already known' };
    if (this.pending.size >= this.poolLimit) return { ok: false, error: 'pool-full', log: `${this.pending.size} pending` };
    this.pending.set(d.tx.hash, bytes);
    return { ok: true, hash: d.tx.hash };
  }
  pendingCount(): number {
    return this.pending.size;
  }
  validatorsAt(height: number): Validator[] {
    return this.store.validatorsAt(height);
  }
  consensusStatus(): ConsensusStatus {
    return { height: this.store.latestHeight(), view: 0, leader: 0, f: 1, quorum: 3, validators: set.validators, lastCommitTime: null };
  }
  syncStatus() {
    const h = this.store.latestHeight();
    return { height: h, highestKnownHeight: h, syncing: false };
  }
  peers(): PeerInfo[] {
    return [{ peerId: '12D3KooWPeer', addresses: ['/ip4/127.0.0.1/tcp/1'], validatorIndex: 1 }];
  }
  healthy(): boolean {
    return this.isHealthy;
  }
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
  query(path: string, caller: string | null): QueryAnswer {
    const height = this.store.latestHeight();
    if (path === '/public') return { height, value: 'hello' };
    if (path === '/whoami') return { height, value: caller };
    if (path === '/alice-only') {
      if (caller !== alice.publicKey) throw new QueryError(-32007, 'only alice may see this');
      return { height, value: 'secret' };
    }
    if (path === '/boom') throw new Error('a bug in the state machine');
    throw new QueryError(-32004, `nothing at ${path}`);
  }
  onBlock(listener: (b: StoredBlock, r: Receipt[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Commits the pool (or the given txs) as the next block and tells the listeners. */
  commit(txs: Uint8Array[] = [...this.pending.values()]): { block: StoredBlock; receipts: Receipt[] } {
    this.pending.clear();
    const { block, receipts } = this.store.commit(txs);
    for (const l of this.listeners) l(block, receipts);
    return { block, receipts };
  }
}

async function withServer(
  fn: (ctx: { node: TestNode; server: RpcServer; client: GoodnessClient; internalErrors: unknown[] }) => Promise<void>,
  options: Partial<RpcServerOptions> & { chain?: string } = {},
): Promise<void> {
  const node = new TestNode(options.chain);
  const internalErrors: unknown[] = [];
  const server = await startRpcServer({ api: node, host: '127.0.0.1', port: 0, registry: node.registry, onInternalError: (e) => internalErrors.push(e), ...options });
  const client = new GoodnessClient(server.url);
  try {
    await fn({ node, server, client, internalErrors });
  } finally {
    await client.close();
    await server.close();
  }
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
  reusedSocket: boolean;
}

function request(url: string, method: string, path: string, body?: string | Buffer, opts: { agent?: http.Agent; chunked?: boolean } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(body);
    const req = http.request(`${url}${path}`, { method, headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
      });
      res.on('error', reject);
    });
    // A server refusing an oversized body closes while we still write: the answer is what counts.
    req.on('error', (e) => (settled ? undefined : reject(e)));
    let settled = false;
    req.on('response', () => (settled = true));
    if (body === undefined) req.end();
    else if (opts.chunked && Buffer.isBuffer(body)) {
      // write in pieces so the body goes out chunked, without a declared length
      let off = 0;
      const step = (): void => {
        while (off < body.length) {
          const piece = body.subarray(off, off + 256 * 1024);
          off += piece.length;
          if (!req.write(piece)) return void req.once('drain', step);
        }
        req.end();
      };
      step();
    } else req.end(body);
  });
}

const post = (url: string, body: string | Buffer, opts?: { agent?: http.Agent; chunked?: boolean }) => request(url, 'POST', '/', body, opts);
const rpc = (method: string, params?: unknown, id: unknown = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });

function tx(signer: Ed25519Signer, nonce: string, chain = CHAIN) {
  return buildTx(signer, { chain, type: 'test.op', nonce, expires: 100, body: { n: nonce } });
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  assert.instance(e, RpcError, 'an RpcError is thrown');
  return e as RpcError;
}

test('JSON-RPC error codes: parse error, invalid request, unknown method, bad params', async () => {
  await withServer(async ({ server }) => {
    const u = server.url;
    const parse = await post(u, '{"jsonrpc":"2.0","id":1,"method":');
    assert.is(parse.status, 200);
    assert.equal(parse.json.id, null);
    assert.is(parse.json.error.code, ErrorCode.PARSE_ERROR);
    assert.is((await post(u, '[' .repeat(200_000))).json.error.code, ErrorCode.PARSE_ERROR, 'deeply nested junk');

    for (const body of ['5', '"x"', 'null', 'true']) {
      const a = await post(u, body);
      assert.is(a.json.error.code, ErrorCode.INVALID_REQUEST, body);
      assert.equal(a.json.id, null);
    }
    const cases: [string, RegExp][] = [
      [JSON.stringify({ jsonrpc: '1.0', id: 7, method: 'getBlockNumber' }), /jsonrpc must be "2.0"/],
      [JSON.stringify({ jsonrpc: '2.0', id: 7 }), /method must be a string/],
      [JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'getBlockNumber', params: 'x' }), /params must be an array/],
      [JSON.stringify({ jsonrpc: '2.0', id: { a: 1 }, method: 'getBlockNumber' }), /id must be/],
    ];
    for (const [body, message] of cases) {
      const a = await post(u, body);
      assert.is(a.json.error.code, ErrorCode.INVALID_REQUEST, body);
      assert.match(a.json.error.message, message);
    }

    const unknown = await post(u, rpc('eth_getBalance', [], 'abc'));
    assert.is(unknown.json.error.code, ErrorCode.METHOD_NOT_FOUND);
    assert.is(unknown.json.id, 'abc');
    const subscribeOverHttp = await post(u, rpc('subscribe', ['newBlocks']));
    assert.is(subscribeOverHttp.json.error.code, ErrorCode.METHOD_NOT_FOUND);
    assert.match(subscribeOverHttp.json.error.message, /\/ws/);

    const badParams: [string, unknown, RegExp][] = [
      ['getBlockByNumber', ['1'], /number must be a non-negative integer/],
      ['getBlockByNumber', [-1], /number must be a non-negative integer/],
      ['getBlockByNumber', [1.5], /number must be a non-negative integer/],
      ['getBlockByNumber', [], /expected 1 to 2 params/],
      ['getBlockByNumber', [1, 'yes'], /includeTransactions must be true or false/],
      ['getBlockByNumber', [1, true, 3], /expected 1 to 2 params/],
      ['getBlockByNumber', { number: 1 }, /params must be an array/],
      ['getBlockNumber', [1], /expected 0 params/],
      ['getTransactionReceipt', ['0x' + 'A'.repeat(64)], /hash must be 0x followed by 64 lowercase hex/],
      ['getTransactionReceipt', ['0x1234'], /hash must be 0x followed by 64 lowercase hex/],
      ['getBlockByHash', [42], /hash must be/],
      ['sendTransaction', ['deadbeef'], /rawTx must be 0x/],
      ['sendTransaction', ['0xabc'], /rawTx must be 0x/],
      ['sendTransaction', ['0x'], /rawTx is empty/],
      ['sendTransaction', ['0xAB'], /rawTx must be 0x/],
      ['sendTransactionAndWait', ['0x0g'], /rawTx must be 0x/],
      ['sendTransactionAndWait', ['0x00', 0], /timeoutMs must be a positive integer/],
      ['query', [5], /path must be a string/],
      ['query', ['/public', { from: 'x' }], /bad query auth: auth.from must be an account id/],
      ['getValidators', ['next'], /number must be a non-negative integer/],
    ];
    for (const [method, params, message] of badParams) {
      const a = await post(u, rpc(method, params, 9));
      assert.is(a.json.error?.code, ErrorCode.INVALID_PARAMS, `${method} ${JSON.stringify(params)}`);
      assert.match(a.json.error.message, message, `${method} ${JSON.stringify(params)}`);
      assert.is(a.json.id, 9);
    }
    // absent params count as []
    assert.is((await post(u, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'getBlockNumber' }))).json.result, 0);
  });
});

test('ids are echoed; notifications get no answer; batches answer in order, skipping notifications', async () => {
  await withServer(async ({ server, node }) => {
    const u = server.url;
    for (const id of ['s-1', 42, null, 0]) assert.equal((await post(u, rpc('getBlockNumber', [], id))).json, { jsonrpc: '2.0', id, result: 0 });
    const note = await post(u, JSON.stringify({ jsonrpc: '2.0', method: 'getBlockNumber', params: [] }));
    assert.is(note.status, 204);
    assert.is(note.text, '');
    // a notification still runs: a transaction sent as one is admitted
    const t = tx(alice, 'notified');
    assert.is((await post(u, JSON.stringify({ jsonrpc: '2.0', method: 'sendTransaction', params: [to0x(t.bytes)] }))).status, 204);
    assert.ok(node.pending.has(t.hash));
    const onlyNotes = await post(u, JSON.stringify([{ jsonrpc: '2.0', method: 'getBlockNumber' }, { jsonrpc: '2.0', method: 'nope' }]));
    assert.is(onlyNotes.status, 204);

    const mixed = await post(
      u,
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'getBlockNumber', params: [] },
        { jsonrpc: '2.0', method: 'getBlockNumber', params: [] },
        { jsonrpc: '2.0', id: 'two', method: 'nope', params: [] },
        5,
        { jsonrpc: '2.0', id: 3, method: 'getBlockByNumber', params: ['x'] },
        { jsonrpc: '2.0', id: 4, method: 'getPendingTxSize', params: [] },
      ]),
    );
    assert.ok(Array.isArray(mixed.json));
    assert.equal(
      mixed.json.map((a: any) => [a.id, a.result ?? a.error.code]),
      [
        [1, 0],
        ['two', ErrorCode.METHOD_NOT_FOUND],
        [null, ErrorCode.INVALID_REQUEST],
        [3, ErrorCode.INVALID_PARAMS],
        [4, 1],
      ],
    );

    const empty = await post(u, '[]');
    assert.ok(!Array.isArray(empty.json));
    assert.is(empty.json.error.code, ErrorCode.INVALID_REQUEST);
    assert.match(empty.json.error.message, /empty batch/);

    const huge = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'getBlockNumber', params: [] })));
    const tooMany = await post(u, huge);
    assert.ok(!Array.isArray(tooMany.json), 'one error for the whole batch');
    assert.is(tooMany.json.error.code, ErrorCode.TOO_LARGE);
    assert.match(tooMany.json.error.message, /5000 calls .* limit of 1000/);
    const atLimit = await post(u, JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'getBlockNumber', params: [] }))));
    assert.is(atLimit.json.length, 1000);
  });
});

test('a body over the limit gets -32006 and the connection closes; the server goes on answering', async () => {
  await withServer(async ({ server }) => {
    const u = server.url;
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    const declared = await post(u, big);
    assert.is(declared.status, 413);
    assert.is(declared.json.error.code, ErrorCode.TOO_LARGE);
    assert.is(declared.headers.connection, 'close');
    const chunked = await post(u, big, { chunked: true });
    assert.is(chunked.status, 413);
    assert.is(chunked.json.error.code, ErrorCode.TOO_LARGE);
    assert.is((await post(u, rpc('getBlockNumber', []))).json.result, 0, 'still answering');
    // just under the limit is read and parsed (here: junk, so a parse error)
    assert.is((await post(u, Buffer.alloc(1024 * 1024 - 10, 0x41))).json.error.code, ErrorCode.PARSE_ERROR);
  });
});

test('keep-alive connections carry many batches', async () => {
  await withServer(async ({ server }) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const batch = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'getBlockNumber', params: [] })));
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await post(server.url, batch, { agent }));
      assert.ok(answers.every((a) => a.json.length === 100));
      assert.is(answers[0]!.reusedSocket, false);
      assert.ok(answers.slice(1).every((a) => a.reusedSocket), 'later batches reuse the first connection');
    } finally {
      agent.destroy();
    }
  });
});

test('health, metrics and 404', async () => {
  await withServer(async ({ server, node, client }) => {
    const ok = await request(server.url, 'GET', '/health');
    assert.is(ok.status, 200);
    assert.is(ok.json.healthy, true);
    assert.is(ok.json.chain, CHAIN);
    node.isHealthy = false;
    const down = await request(server.url, 'GET', '/health');
    assert.is(down.status, 503);
    assert.is(down.json.healthy, false);
    await client.getBlockNumber();
    await post(server.url, rpc('nope'));
    const m = await request(server.url, 'GET', '/metrics');
    assert.is(m.status, 200);
    assert.match(m.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
    assert.match(m.text, /goodness_rpc_requests_total\{method="getBlockNumber",outcome="ok"\} 1/);
    assert.match(m.text, /goodness_rpc_requests_total\{method="unknown",outcome="-32601"\} 1/);
    assert.match(m.text, /goodness_rpc_request_duration_seconds_bucket/);
    assert.is((await request(server.url, 'GET', '/nothing')).status, 404);
    assert.is((await request(server.url, 'GET', '/')).status, 404);
    assert.is((await request(server.url, 'PUT', '/', '{}')).status, 404);
  });
});

test('transactions: admission errors, then receipts, blocks and proofs that a light client accepts', async () => {
  await withServer(async ({ node, client }) => {
    const hash = await client.sendTx(alice, { type: 'test.op', body: { x: 1 } });
    assert.match(hash, /^0x[0-9a-f]{64}$/);
    assert.is(await client.getPendingTxSize(), 1);
    const [pendingEnvelope] = [...node.pending.values()];
    const sent = JSON.parse(Buffer.from(pendingEnvelope!).toString());
    assert.is(sent.tx.expires, 500, 'expires defaults to height + 500');
    assert.match(sent.tx.nonce, /^[0-9A-Za-z_-]{22}$/);

    const dup = await rpcError(client.sendTransaction(to0x(pendingEnvelope!)));
    assert.is(dup.code, ErrorCode.DUPLICATE);
    const wrongChain = await rpcError(client.sendTransaction(to0x(tx(alice, 'w', 'other-chain').bytes)));
    assert.is(wrongChain.code, ErrorCode.TX_REFUSED);
    assert.equal(wrongChain.data, { code: 4, log: wrongChain.data && (wrongChain.data as { log: string }).log });
    assert.match((wrongChain.data as { log: string }).log, /other-chain/);
    const junk = await rpcError(client.sendTransaction('0x7b7d'));
    assert.is(junk.code, ErrorCode.TX_REFUSED);
    node.poolLimit = 1;
    const full = await rpcError(client.sendTx(alice, { type: 'test.op', body: {} }));
    assert.is(full.code, ErrorCode.POOL_FULL);
    node.poolLimit = 50;
    // A node whose pool takes no client transaction says so before decoding: even junk gets
    // -32002, and admission is not reached; bad params are still -32602.
    node.fullBeforeDecoding = 'the transaction pool is full: back off and retry';
    const submittedBefore = node.submitted;
    const early = await rpcError(client.sendTransaction('0x7b7d'));
    assert.is(early.code, ErrorCode.POOL_FULL);
    assert.match(early.message, /pool is full, back off and retry: the transaction pool is full/);
    const earlyWait = await rpcError(client.sendTransactionAndWait('0x7b7d', 1000));
    assert.is(earlyWait.code, ErrorCode.POOL_FULL);
    assert.is((await rpcError(client.sendTransaction('0xZZ'))).code, ErrorCode.INVALID_PARAMS);
    assert.is((await rpcError(client.sendTransaction('0x'))).code, ErrorCode.INVALID_PARAMS, 'empty: invalid params, not pool-full');
    assert.is(node.submitted, submittedBefore, 'admission never ran');
    node.fullBeforeDecoding = null;
    assert.is(await client.getTransactionReceipt(hash), null, 'null while pending');
    assert.is(await client.getTransactionProof(hash), null);
    assert.is(await client.getTransactionByHash(hash), null);

    const more = [tx(bob, 'b1'), tx(bob, 'b2')];
    for (const t of more) await client.sendTransaction(to0x(t.bytes));
    const { block } = node.commit();
    const receipt = await client.getTransactionReceipt(hash);
    assert.equal(receipt, { hash, blockNumber: 1, index: 0, status: 'ok', code: 0, log: '', events: [{ type: 'test', attributes: { n: '0' } }] });
    const byHash = await client.getTransactionByHash(more[1]!.hash);
    assert.equal(byHash, { hash: more[1]!.hash, blockNumber: 1, index: 2, tx: more[1]!.envelope });

    const b = await client.getBlockByNumber(1);
    assert.is(b!.hash, block.hash);
    assert.equal(b!.transactions, block.txHashes);
    assert.is(b!.view, 0);
    assert.equal(Object.keys(b!).sort(), ['appHash', 'chain', 'hash', 'nextValidatorsHash', 'number', 'parentHash', 'proposer', 'receiptRoot', 'timestamp', 'transactions', 'txCount', 'txRoot', 'validatorsHash', 'view']);
    const full1 = await client.getBlockByHash(block.hash, true);
    assert.equal((full1!.transactions as unknown[])[1], more[0]!.envelope);
    assert.is(await client.getBlockByNumber(9), null);
    assert.is(await client.getBlockByHash('0x' + '0'.repeat(64)), null);
    assert.is(await client.getCommitCertificate(0), null);
    assert.equal(await client.getCommitCertificate(1), node.store.certificates.get(1));
    assert.is(await client.getCommitCertificate(2), null);
    assert.equal(await client.getTotalTransactionCount(), { blockNumber: 1, transactions: 3, rejected: 0 });
    assert.is(await client.getBlockNumber(), 1);
    assert.equal(await client.getValidators(), set.validators);
    assert.equal(await client.getValidators(0), set.validators);
    assert.is((await rpcError(client.getValidators(5))).code, ErrorCode.NOT_FOUND);
    assert.equal(await client.getClientVersion(), { version: 'goodness/test', chain: CHAIN, nodeId: '12D3KooWTestNode' });
    assert.is((await client.getConsensusStatus()).quorum, 3);
    assert.equal(await client.getSyncStatus(), { height: 1, highestKnownHeight: 1, syncing: false });
    assert.is((await client.getPeers())[0]!.validatorIndex, 1);

    const proof = await client.getTransactionProof(more[0]!.hash);
    assert.ok(verifyTransactionProof(proof!, set.validators).ok);
    const light = LightClient.trustingGenesis(node.store.genesisHash);
    const verified = await client.verifiedTransaction(more[0]!.hash, light);
    assert.is(verified!.blockHash, block.hash);
    assert.equal(verified!.tx, more[0]!.envelope);
    assert.is(verified!.receipt.index, 1);
    assert.is(await client.verifiedTransaction('0x' + '1'.repeat(64), light), null);

    const results = await client.batch([
      { method: 'getBlockNumber', params: [] },
      { method: 'getBlockByNumber', params: ['x' as unknown as number] },
      { method: 'getTransactionReceipt', params: [hash] },
    ] as const);
    assert.ok(results[0].ok && results[0].result === 1);
    assert.ok(!results[1].ok && results[1].error.code === ErrorCode.INVALID_PARAMS);
    assert.ok(results[2].ok && results[2].result?.hash === hash);
  });
});

test('sendTransactionAndWait answers with the receipt, or -32005 after its timeout', async () => {
  await withServer(async ({ node, client }) => {
    const t = tx(alice, 'wait-1');
    const waiting = client.sendTransactionAndWait(to0x(t.bytes), 5000);
    while (!node.pending.has(t.hash)) await new Promise((r) => setTimeout(r, 5));
    node.commit();
    const receipt = await waiting;
    assert.is(receipt.hash, t.hash);
    assert.is(receipt.blockNumber, 1);

    const started = Date.now();
    const timeout = await rpcError(client.sendTxAndWait(alice, { type: 'test.op', body: {} }, 200));
    assert.is(timeout.code, ErrorCode.TIMEOUT);
    assert.match((timeout.data as { hash: string }).hash, /^0x[0-9a-f]{64}$/);
    assert.ok(Date.now() - started >= 190, 'waited the timeout');
    assert.ok(node.pending.has((timeout.data as { hash: string }).hash), 'the transaction stays pending');
    // an admission error is answered at once, not after the timeout
    assert.is((await rpcError(client.sendTransactionAndWait(to0x(t.bytes), 5000))).code, ErrorCode.DUPLICATE);
  });
});

test('query: public, authenticated, stale, forged, not permitted, not found, and a failing machine', async () => {
  await withServer(async ({ client, internalErrors }) => {
    assert.equal(await client.query('/public'), { height: 0, value: 'hello' });
    assert.equal(await client.query('/whoami'), { height: 0, value: null });
    assert.equal(await client.queryAs(alice, '/whoami'), { height: 0, value: alice.publicKey });
    assert.equal(await client.queryAs(alice, '/alice-only'), { height: 0, value: 'secret' });

    const denied = await rpcError(client.queryAs(bob, '/alice-only'));
    assert.is(denied.code, ErrorCode.NOT_PERMITTED);
    assert.is((await rpcError(client.query('/alice-only'))).code, ErrorCode.NOT_PERMITTED);
    assert.is((await rpcError(client.query('/missing'))).code, ErrorCode.NOT_FOUND);

    const stale = await rpcError(client.query('/alice-only', signQueryAuth(alice, '/alice-only', Date.now() - 120_000)));
    assert.is(stale.code, ErrorCode.INVALID_PARAMS);
    assert.match(stale.message, /behind the node's clock/);
    const future = await rpcError(client.query('/alice-only', signQueryAuth(alice, '/alice-only', Date.now() + 120_000)));
    assert.match(future.message, /ahead of the node's clock/);
    const otherPath = await rpcError(client.query('/alice-only', signQueryAuth(alice, '/whoami')));
    assert.is(otherPath.code, ErrorCode.INVALID_PARAMS);
    assert.match(otherPath.message, /does not verify/);
    const impostor = { ...signQueryAuth(bob, '/alice-only'), from: alice.publicKey };
    assert.match((await rpcError(client.query('/alice-only', impostor))).message, /does not verify/);
    const auth = signQueryAuth(alice, '/alice-only');
    const tampered = { ...auth, timestamp: auth.timestamp + 1 };
    assert.match((await rpcError(client.query('/alice-only', tampered))).message, /does not verify/);
    const extra = { ...auth, role: 'admin' } as unknown as typeof auth;
    assert.match((await rpcError(client.query('/alice-only', extra))).message, /unknown member role/);
    // the signed message is JCS({path, timestamp}) exactly
    const manual = { from: alice.publicKey, timestamp: auth.timestamp, sig: alice.sign(utf8(`{"path":"/alice-only","timestamp":${auth.timestamp}}`)) };
    assert.equal(manual, auth);

    const boom = await rpcError(client.query('/boom'));
    assert.is(boom.code, ErrorCode.INTERNAL_ERROR);
    assert.is(internalErrors.length, 1);
    assert.is(await client.getBlockNumber(), 0, 'still serving after a failing handler');
  });
});

interface WsProbe {
  ws: WebSocket;
  messages: any[];
  next(pred?: (m: any) => boolean, timeoutMs?: number): Promise<any>;
  send(obj: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
}

async function wsProbe(url: string): Promise<WsProbe> {
  const ws = new WebSocket(url.replace('http://', 'ws://') + '/ws');
  const messages: any[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (d) => {
    messages.push(JSON.parse(String(d)));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let seen = 0;
  return {
    ws,
    messages,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    async next(pred = () => true, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (seen < messages.length) {
          const m = messages[seen++];
          if (pred(m)) return m;
        }
        if (Date.now() > deadline) throw new Error('no such WebSocket message in time');
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
  };
}

test('WebSocket: calls, newBlocks and transaction subscriptions, unsubscribe', async () => {
  await withServer(async ({ node, server, client }) => {
    const headers: HeaderWithHash[] = [];
    const stop = await client.subscribeNewBlocks((h) => headers.push(h));
    const ws = await client.ws();
    assert.is(await ws.call('getBlockNumber', []), 0);

    const t = tx(alice, 'ws-1');
    await client.sendTransaction(to0x(t.bytes));
    const waiting = client.waitForTransaction(t.hash, 3000);
    await new Promise((r) => setTimeout(r, 20));
    const { block } = node.commit();
    const receipt = await waiting;
    assert.is(receipt.hash, t.hash);
    node.commit([tx(bob, 'ws-2').bytes]);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(headers.length, 2);
    assert.is(headers[0]!.hash, block.hash);
    assert.equal(headers[0], { ...block.header, hash: block.hash });
    assert.is(headers[1]!.number, 2);
    // already committed: notified at once
    assert.is((await client.waitForTransaction(t.hash, 1000)).blockNumber, 1);
    const late = await rpcError(client.waitForTransaction('0x' + '2'.repeat(64), 100));
    assert.is(late.code, ErrorCode.TIMEOUT);

    assert.is(await stop(), true);
    node.commit([tx(bob, 'ws-3').bytes]);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(headers.length, 2, 'no notifications after unsubscribe');

    // the raw protocol
    const probe = await wsProbe(server.url);
    try {
      probe.send({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: ['newBlocks'] });
      const sub = await probe.next((m) => m.id === 1);
      assert.match(sub.result, /^0x[0-9a-f]{16}$/);
      const { block: b4 } = node.commit([tx(bob, 'ws-4').bytes]);
      const note = await probe.next((m) => m.method === 'subscription');
      assert.equal(note, { jsonrpc: '2.0', method: 'subscription', params: { subscription: sub.result, result: { ...b4.header, hash: b4.hash } } });
      probe.send({ jsonrpc: '2.0', id: 2, method: 'unsubscribe', params: [sub.result] });
      assert.is((await probe.next((m) => m.id === 2)).result, true);
      probe.send({ jsonrpc: '2.0', id: 3, method: 'unsubscribe', params: [sub.result] });
      assert.is((await probe.next((m) => m.id === 3)).result, false);
      probe.send({ jsonrpc: '2.0', id: 4, method: 'subscribe', params: ['everything'] });
      assert.is((await probe.next((m) => m.id === 4)).error.code, ErrorCode.INVALID_PARAMS);
      probe.send({ jsonrpc: '2.0', id: 5, method: 'subscribe', params: ['transaction', 'nope'] });
      assert.is((await probe.next((m) => m.id === 5)).error.code, ErrorCode.INVALID_PARAMS);
      probe.send('{not json');
      assert.is((await probe.next((m) => m.error?.code === ErrorCode.PARSE_ERROR)).id, null);
      probe.send([{ jsonrpc: '2.0', id: 6, method: 'getBlockNumber' }, { jsonrpc: '2.0', id: 7, method: 'subscribe', params: ['transaction', t.hash] }]);
      const batch = await probe.next((m) => Array.isArray(m));
      assert.is(batch[0].result, 4);
      const receiptNote = await probe.next((m) => m.method === 'subscription');
      assert.is(receiptNote.params.subscription, batch[1].result, 'the receipt follows the answer carrying the id');
      assert.is(receiptNote.params.result.hash, t.hash);
      // a message over the size limit closes the connection with 1009
      probe.send('"' + 'x'.repeat(1024 * 1024 + 10) + '"');
      assert.is((await probe.closed).code, 1009);
    } finally {
      probe.ws.terminate();
    }
    assert.is(await client.getBlockNumber(), 4, 'the server goes on');
  });
});

test('a WebSocket client too slow to read is told so and disconnected', async () => {
  // Big headers (a long chain id) fill the socket buffers in a few dozen blocks.
  const chain = 'slow-' + 'x'.repeat(256 * 1024);
  await withServer(
    async ({ node, server }) => {
      const probe = await wsProbe(server.url);
      try {
        probe.send({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: ['newBlocks'] });
        await probe.next((m) => m.id === 1);
        // Stop reading, as a stuck consumer would: the client's socket is paused (ws keeps it in _socket).
        (probe.ws as unknown as { _socket: { pause(): void } })._socket.pause();
        const blocks = 120;
        for (let i = 0; i < blocks; i++) {
          node.commit([]);
          if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10));
        }
        (probe.ws as unknown as { _socket: { resume(): void } })._socket.resume();
        const closed = await probe.closed;
        assert.is(closed.code, 1008);
        const last = probe.messages[probe.messages.length - 1];
        assert.is(last.method, 'error');
        assert.is(last.params.reason, 'slow-consumer');
        assert.match(last.params.message, /too slow/);
        const delivered = probe.messages.filter((m) => m.method === 'subscription');
        assert.ok(delivered.length > 0 && delivered.length < blocks, `some blocks delivered before the cut (${delivered.length})`);
        // the blocks that were delivered are consecutive: none silently dropped
        delivered.forEach((m, i) => assert.is(m.params.result.number, i + 1));
      } finally {
        probe.ws.terminate();
      }
      const again = await wsProbe(server.url);
      try {
        again.send({ jsonrpc: '2.0', id: 1, method: 'getBlockNumber' });
        assert.is((await again.next((m) => m.id === 1)).result, 120);
      } finally {
        again.ws.terminate();
      }
    },
    { chain, wsMaxBufferedBytes: 1024 * 1024 },
  );
});

test('the SDK builds transactions exactly as tx.md says', async () => {
  await withServer(async ({ node, client }) => {
    await client.sendTx(alice, { type: 'test.op', body: { a: 1 }, nonce: 'fixed-nonce', expires: 77 });
    const [bytes] = [...node.pending.values()];
    const env = JSON.parse(Buffer.from(bytes!).toString());
    assert.equal(env.tx, { body: { a: 1 }, chain: CHAIN, expires: 77, from: alice.publicKey, nonce: 'fixed-nonce', type: 'test.op' });
    assert.is(Buffer.from(bytes!).toString(), jcs(env));
    assert.is(to0x(sha256(bytes!)), [...node.pending.keys()][0]);
  });
});

test.run();
