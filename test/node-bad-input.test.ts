// Bad input against one real node (`goodness node` in a child process): every kind of malformed,
// oversized, forged, replayed or nonsensical request gets its exact rpc.md error, the node stays
// up, and its state does not move (rpc.md: "A bad request never takes a node down, never changes
// state, and gets one of these answers"). Requests are sent as raw HTTP/TCP where the SDK would
// refuse to send them.
import { request } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { jcs, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { GoodnessClient, randomNonce } from '../rpc/client.ts';
import { ErrorCode } from '../rpc/errors.ts';
import { signQueryAuth } from '../rpc/query-auth.ts';
import { Code } from '../state/codes.ts';
import { buildTx, MAX_EXPIRY_AHEAD, type TxEnvelope, type TxFields } from '../state/tx.ts';
import { health, startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 28200;
const CHAIN = 'goodness-bad-input';
const MiB = 1024 * 1024;

let node: NodeProcess;
let client: GoodnessClient;
/** an account opened in before(): its query is part of the state snapshot */
let alice: Ed25519Signer;
/** alice's committed account.open: replayed by the tests */
let aliceOpen: { raw: string; hash: string; envelope: TxEnvelope };

interface HttpAnswer {
  status: number;
  text: string;
  json: unknown;
}

/** POSTs `body` on a fresh connection; answers whatever came back, JSON-parsed when it is JSON. */
function post(body: string | Buffer, opts: { chunked?: boolean } = {}): Promise<HttpAnswer> {
  const url = new URL(node.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!opts.chunked) headers['content-length'] = Buffer.byteLength(body);
    let done = false;
    const req = request({ host: url.hostname, port: url.port, path: '/', method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        done = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', (e) => !done && reject(e));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    // The server may answer (413) and close before it has read a large body: the write then fails, the answer stands.
    req.on('error', (e) => !done && setTimeout(() => !done && reject(e), 500));
    if (opts.chunked) {
      const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
      const step = 64 * 1024;
      let at = 0;
      const pump = (): void => {
        while (at < buf.length) {
          const ok = req.write(buf.subarray(at, at + step));
          at += step;
          if (!ok) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    } else req.end(body);
  });
}

type Answer = { jsonrpc?: string; id?: unknown; result?: unknown; error?: { code: number; message: string; data?: { code?: number; log?: string } } };

/** One raw JSON-RPC call. */
async function rpc(method: string, params?: unknown): Promise<Answer> {
  const body = JSON.stringify(params === undefined ? { jsonrpc: '2.0', id: 7, method } : { jsonrpc: '2.0', id: 7, method, params });
  const answer = await post(body);
  assert.is(answer.status, 200, `HTTP 200 for ${method}: ${answer.text.slice(0, 200)}`);
  return answer.json as Answer;
}

function expectError(answer: Answer, code: number, what: string, dataCode?: number): void {
  assert.ok(answer && typeof answer === 'object', `${what}: a JSON-RPC answer`);
  assert.is(answer.jsonrpc, '2.0', `${what}: jsonrpc 2.0`);
  assert.ok(answer.error, `${what}: an error answer, got ${JSON.stringify(answer).slice(0, 300)}`);
  assert.is(answer.error!.code, code, `${what}: error ${code}, got ${answer.error!.code} (${answer.error!.message})`);
  assert.type(answer.error!.message, 'string');
  assert.ok(answer.error!.message.length > 0, `${what}: the error says why`);
  assert.not.ok('result' in answer, `${what}: no result beside the error`);
  if (dataCode !== undefined) {
    assert.ok(answer.error!.data, `${what}: -32001 carries data {code, log}`);
    assert.is(answer.error!.data!.code, dataCode, `${what}: data.code ${dataCode}, got ${answer.error!.data!.code} (${answer.error!.data!.log})`);
    assert.type(answer.error!.data!.log, 'string');
  }
}

async function sendRaw(raw: string): Promise<Answer> {
  return rpc('sendTransaction', [raw]);
}

function sign(signer: Ed25519Signer, fields: Partial<Omit<TxFields, 'from'>> & { expires: number }): { raw: string; hash: string; envelope: TxEnvelope; bytes: Uint8Array } {
  const built = buildTx(signer, { chain: CHAIN, type: 'account.open', body: {}, nonce: randomNonce(), ...fields });
  return { raw: to0x(built.bytes), hash: built.hash, envelope: built.envelope, bytes: built.bytes };
}

async function nextHeight(): Promise<number> {
  return (await client.getBlockNumber()) + 1;
}

/** What must not move: height, totals, the pool, and alice's account as she sees it. */
async function snapshot() {
  return {
    height: await client.getBlockNumber(),
    totals: await client.getTotalTransactionCount(),
    pending: await client.getPendingTxSize(),
    alice: await client.queryAs(alice, `account/${alice.publicKey}`),
  };
}

/** Runs `bad` and checks that the node is up and its state unchanged afterwards. */
async function unchanged(bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  // A block is cut 100 ms after a transaction enters the pool: wait past it, so that anything wrongly admitted shows.
  await new Promise((r) => setTimeout(r, 250));
  assert.is(await health(node.url), 200, 'the node is still healthy');
  assert.ok(node.alive(), 'the node process is alive');
  assert.equal(await snapshot(), before, 'the state did not change');
}

test.before(async () => {
  node = await startNode({ machine: 'goodness', basePort: BASE_PORT, chain: CHAIN, logLevel: 'info' });
  client = new GoodnessClient(node.url, { timeoutMs: 30_000 });
  alice = new Ed25519Signer(ed25519Keygen().secretKey);
  // Two blocks, so that a small `expires` is already expired at the next height.
  aliceOpen = await client.buildTx(alice, { type: 'account.open', body: {} });
  const r1 = await client.sendTransactionAndWait(aliceOpen.raw, 20_000);
  assert.is(r1.status, 'ok');
  const r2 = await client.sendTxAndWait(new Ed25519Signer(ed25519Keygen().secretKey), { type: 'account.open', body: {} }, 20_000);
  assert.is(r2.status, 'ok');
  assert.ok((await client.getBlockNumber()) >= 2);
});

test.after(async () => {
  await client?.close();
  await node?.cleanup();
});

test('malformed JSON: -32700 with id null', async () => {
  await unchanged(async () => {
    for (const body of ['{"jsonrpc":"2.0","id":1,"method":', 'not json', '', '{"jsonrpc":"2.0",}', '\u0000\u0001\u0002', '[{"jsonrpc":"2.0","id":1,"method":"getBlockNumber"},']) {
      const answer = await post(body);
      assert.is(answer.status, 200, `${JSON.stringify(body)}: HTTP 200`);
      expectError(answer.json as Answer, ErrorCode.PARSE_ERROR, `body ${JSON.stringify(body)}`);
      assert.is((answer.json as Answer).id, null);
    }
  });
});

test('invalid requests: non-objects in a batch, missing or wrong jsonrpc, bad method or params members: -32600', async () => {
  await unchanged(async () => {
    const batch = await post('[1,"two",null,[],true]');
    assert.ok(Array.isArray(batch.json), 'a batch of non-objects answers a batch');
    const answers = batch.json as Answer[];
    assert.is(answers.length, 5, 'one answer per element');
    for (const a of answers) expectError(a, ErrorCode.INVALID_REQUEST, 'a batch element that is not an object');

    expectError((await post('[]')).json as Answer, ErrorCode.INVALID_REQUEST, 'an empty batch');
    for (const body of ['42', '"getBlockNumber"', 'null', 'true']) {
      expectError((await post(body)).json as Answer, ErrorCode.INVALID_REQUEST, `body ${body}`);
    }
    const missing = (await post('{"id":1,"method":"getBlockNumber","params":[]}')).json as Answer;
    expectError(missing, ErrorCode.INVALID_REQUEST, 'missing jsonrpc');
    assert.is(missing.id, 1, 'the id is echoed when it is valid');
    expectError((await post('{"jsonrpc":"1.0","id":1,"method":"getBlockNumber"}')).json as Answer, ErrorCode.INVALID_REQUEST, 'jsonrpc 1.0');
    expectError((await post('{"jsonrpc":"2.0","id":1,"method":5}')).json as Answer, ErrorCode.INVALID_REQUEST, 'a method that is not a string');
    expectError((await post('{"jsonrpc":"2.0","id":1}')).json as Answer, ErrorCode.INVALID_REQUEST, 'no method');
    expectError((await post('{"jsonrpc":"2.0","id":{"a":1},"method":"getBlockNumber"}')).json as Answer, ErrorCode.INVALID_REQUEST, 'an object id');
    expectError((await post('{"jsonrpc":"2.0","id":1,"method":"getBlockNumber","params":"x"}')).json as Answer, ErrorCode.INVALID_REQUEST, 'string params');

    // A mixed batch: the good call is answered, the bad one refused, each on its own.
    const mixed = (await post('[{"jsonrpc":"2.0","id":1,"method":"getBlockNumber"},{"id":2,"method":"getBlockNumber"}]')).json as Answer[];
    assert.is(mixed.length, 2);
    assert.is(mixed.find((a) => a.id === 1)!.result, await client.getBlockNumber());
    expectError(mixed.find((a) => a.id === 2)!, ErrorCode.INVALID_REQUEST, 'the bad half of a mixed batch');
  });
});

test('a 10 MiB body: -32006 (HTTP 413), declared or streamed', async () => {
  await unchanged(async () => {
    // A well-formed batch, so that only its size is wrong.
    const call = '{"jsonrpc":"2.0","id":1,"method":"getBlockNumber"},';
    const body = Buffer.from('[' + call.repeat(Math.ceil((10 * MiB) / call.length)).slice(0, -1) + ']');
    assert.ok(body.length >= 10 * MiB);
    for (const chunked of [false, true]) {
      const answer = await post(body, { chunked });
      assert.is(answer.status, 413, `HTTP 413 (${chunked ? 'chunked' : 'content-length'})`);
      expectError(answer.json as Answer, ErrorCode.TOO_LARGE, `10 MiB body (${chunked ? 'chunked' : 'content-length'})`);
    }
  });
});

test('a batch of 5,000 calls (and of 1,001): -32006; 1,000 is served', async () => {
  await unchanged(async () => {
    const calls = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'getBlockNumber' })));
    const big = await post(calls(5000));
    assert.is(big.status, 200);
    expectError(big.json as Answer, ErrorCode.TOO_LARGE, 'a batch of 5000');
    expectError((await post(calls(1001))).json as Answer, ErrorCode.TOO_LARGE, 'a batch of 1001');
    const ok = (await post(calls(1000))).json as Answer[];
    assert.is(ok.length, 1000, 'a batch at the limit is answered in full');
    assert.ok(ok.every((a) => typeof a.result === 'number'));
  });
});

test('unknown methods: -32601', async () => {
  await unchanged(async () => {
    for (const method of ['eth_blockNumber', 'getblocknumber', '', 'subscribe', 'unsubscribe', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'x'.repeat(10_000)]) {
      expectError(await rpc(method, []), ErrorCode.METHOD_NOT_FOUND, `method ${JSON.stringify(method.slice(0, 40))}`);
    }
  });
});

test('wrong params: count, types, hashes without 0x, negative heights: -32602', async () => {
  const hash = aliceOpen.hash;
  const cases: [string, unknown][] = [
    ['getBlockNumber', [1]],
    ['getBlockByNumber', []],
    ['getBlockByNumber', [1, true, 3]],
    ['getBlockByNumber', ['1']],
    ['getBlockByNumber', [-1]],
    ['getBlockByNumber', [1.5]],
    ['getBlockByNumber', [1, 'yes']],
    ['getBlockByNumber', [2 ** 64]],
    ['getBlockByNumber', { number: 1 }],
    ['getCommitCertificate', [-1]],
    ['getValidators', [-1]],
    ['getBlockByHash', [hash.slice(2)]],
    ['getBlockByHash', [hash.toUpperCase()]],
    ['getTransactionByHash', [hash.slice(2)]],
    ['getTransactionReceipt', [hash.slice(0, -2)]],
    ['getTransactionProof', [123]],
    ['getTransactionByHash', []],
    ['sendTransaction', []],
    ['sendTransaction', [123]],
    ['sendTransaction', [aliceOpen.raw, 1]],
    ['sendTransactionAndWait', [aliceOpen.raw, -5]],
    ['query', []],
    ['query', [42]],
    ['getTotalTransactionCount', ['x']],
  ];
  await unchanged(async () => {
    for (const [method, params] of cases) {
      expectError(await rpc(method, params), ErrorCode.INVALID_PARAMS, `${method} ${JSON.stringify(params)}`);
    }
  });
});

test('non-canonical transaction bytes (whitespace, reordered keys): -32001 NOT_CANONICAL', async () => {
  const t = sign(alice, { expires: (await nextHeight()) + 100 });
  const spaced = JSON.stringify(t.envelope, null, 1);
  const reordered = JSON.stringify({ tx: t.envelope.tx, sig: t.envelope.sig });
  const innerReordered = JSON.stringify({ sig: t.envelope.sig, tx: { type: t.envelope.tx.type, from: t.envelope.tx.from, chain: t.envelope.tx.chain, body: {}, expires: t.envelope.tx.expires, nonce: t.envelope.tx.nonce } });
  assert.is(jcs(JSON.parse(spaced)), jcs(t.envelope), 'the same transaction, only encoded differently');
  await unchanged(async () => {
    for (const [what, text] of [['extra whitespace', spaced], ['a trailing newline', jcs(t.envelope) + '\n'], ['reordered envelope keys', reordered], ['reordered tx keys', innerReordered]]) {
      expectError(await sendRaw(to0x(utf8(text!))), ErrorCode.TX_REFUSED, what!, Code.NOT_CANONICAL);
    }
  });
});

test('invalid hex in rawTx: -32602 naming rawTx; hex that is not a transaction: -32001 MALFORMED', async () => {
  await unchanged(async () => {
    for (const raw of ['0xzz', '0x123', aliceOpen.raw.toUpperCase().replace('0X', '0x'), aliceOpen.raw.slice(2), '0x', '', 'hello']) {
      const answer = await sendRaw(raw);
      expectError(answer, ErrorCode.INVALID_PARAMS, `rawTx ${JSON.stringify(raw.slice(0, 20))}`);
      assert.match(answer.error!.message, /rawTx/, 'the error names rawTx');
    }
    expectError(await sendRaw('0xdeadbeef'), ErrorCode.TX_REFUSED, 'bytes that are not UTF-8 JSON', Code.MALFORMED);
    expectError(await sendRaw(to0x(utf8('{"sig":"00","tx":{}}'))), ErrorCode.TX_REFUSED, 'JSON that is not an envelope', Code.MALFORMED);
    expectError(await rpc('sendTransactionAndWait', ['0xzz']), ErrorCode.INVALID_PARAMS, 'sendTransactionAndWait with bad hex');
  });
});

test('bad signature: -32001 BAD_SIGNATURE', async () => {
  const expires = (await nextHeight()) + 100;
  const t = sign(alice, { expires });
  const sig = t.envelope.sig;
  const flipped = { ...t.envelope, sig: (sig[0] === '0' ? '1' : '0') + sig.slice(1) };
  // Signed by mallory, claiming to be alice.
  const mallory = new Ed25519Signer(ed25519Keygen().secretKey);
  const forged = sign(mallory, { expires });
  const claimed = { sig: forged.envelope.sig, tx: { ...forged.envelope.tx, from: alice.publicKey } };
  await unchanged(async () => {
    expectError(await sendRaw(to0x(utf8(jcs(flipped)))), ErrorCode.TX_REFUSED, 'a flipped signature', Code.BAD_SIGNATURE);
    expectError(await sendRaw(to0x(utf8(jcs(claimed)))), ErrorCode.TX_REFUSED, "another key's signature", Code.BAD_SIGNATURE);
    const bodyChanged = { sig, tx: { ...t.envelope.tx, expires: expires + 1 } };
    expectError(await sendRaw(to0x(utf8(jcs(bodyChanged)))), ErrorCode.TX_REFUSED, 'a signed field changed', Code.BAD_SIGNATURE);
  });
});

test("another chain's id: -32001 WRONG_CHAIN", async () => {
  const t = sign(alice, { expires: (await nextHeight()) + 100, chain: 'goodness-local' });
  await unchanged(async () => {
    expectError(await sendRaw(t.raw), ErrorCode.TX_REFUSED, 'chain goodness-local', Code.WRONG_CHAIN);
  });
});

test('expired (below the next height): -32001 EXPIRED; more than 1000 ahead: EXPIRES_TOO_FAR', async () => {
  const next = await nextHeight();
  assert.ok(next >= 3, 'the chain has advanced');
  const expired = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: next - 1 });
  const zero = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: 0 });
  const tooFar = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: next + MAX_EXPIRY_AHEAD + 1 });
  const huge = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: Number.MAX_SAFE_INTEGER });
  await unchanged(async () => {
    expectError(await sendRaw(expired.raw), ErrorCode.TX_REFUSED, `expires ${next - 1} at height ${next}`, Code.EXPIRED);
    expectError(await sendRaw(zero.raw), ErrorCode.TX_REFUSED, 'expires 0', Code.EXPIRED);
    expectError(await sendRaw(tooFar.raw), ErrorCode.TX_REFUSED, `expires ${next + MAX_EXPIRY_AHEAD + 1} at height ${next}`, Code.EXPIRES_TOO_FAR);
    expectError(await sendRaw(huge.raw), ErrorCode.TX_REFUSED, 'expires 2^53-1', Code.EXPIRES_TOO_FAR);
    expectError(await rpc('sendTransactionAndWait', [expired.raw, 1000]), ErrorCode.TX_REFUSED, 'sendTransactionAndWait of an expired transaction', Code.EXPIRED);
  });
});

test('replays: the same bytes after commit, and the same (from, nonce) with different content: -32003', async () => {
  const receipt = await client.getTransactionReceipt(aliceOpen.hash);
  assert.is(receipt?.status, 'ok', "alice's account.open is committed");
  const tx = aliceOpen.envelope.tx;
  const sameNonce = buildTx(alice, { chain: CHAIN, type: tx.type, body: tx.body, nonce: tx.nonce, expires: tx.expires + 1 });
  assert.is.not(sameNonce.hash, aliceOpen.hash);
  const otherBody = buildTx(alice, { chain: CHAIN, type: tx.type, body: { again: 1 }, nonce: tx.nonce, expires: tx.expires });
  await unchanged(async () => {
    expectError(await sendRaw(aliceOpen.raw), ErrorCode.DUPLICATE, 'the same bytes again');
    expectError(await rpc('sendTransactionAndWait', [aliceOpen.raw, 2000]), ErrorCode.DUPLICATE, 'the same bytes again, and wait');
    expectError(await sendRaw(to0x(sameNonce.bytes)), ErrorCode.DUPLICATE, 'the same (from, nonce), another expires');
    // account.open takes an empty body, so another body is also a bad body: either refusal leaves the state as it is.
    const answer = await sendRaw(to0x(otherBody.bytes));
    assert.ok(answer.error?.code === ErrorCode.DUPLICATE || (answer.error?.code === ErrorCode.TX_REFUSED && answer.error.data?.code === Code.BAD_BODY), `the same (from, nonce) with another body is refused: ${JSON.stringify(answer.error)}`);
  });
});

test('unknown transaction types: -32001 UNKNOWN_TYPE', async () => {
  const expires = (await nextHeight()) + 100;
  await unchanged(async () => {
    for (const type of ['points.transfer', 'account.transfer', 'no.such.type', 'account']) {
      const t = sign(alice, { expires, type, body: {} });
      expectError(await sendRaw(t.raw), ErrorCode.TX_REFUSED, `type ${type}`, Code.UNKNOWN_TYPE);
    }
  });
});

test('an oversized transaction (> 64 KiB): -32001', async () => {
  const t = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: (await nextHeight()) + 100, body: { pad: 'x'.repeat(70 * 1024) } });
  assert.ok(t.bytes.length > 64 * 1024);
  await unchanged(async () => {
    const answer = await sendRaw(t.raw);
    expectError(answer, ErrorCode.TX_REFUSED, `a transaction of ${t.bytes.length} bytes`);
    assert.type(answer.error!.data?.code, 'number');
    assert.match(answer.error!.data!.log!, /\d+ bytes/, 'the refusal says the size');
  });
});

test('query: bad auth is refused, unknown paths and ids are errors, private paths are not shown', async () => {
  const path = `account/${alice.publicKey}`;
  const good = signQueryAuth(alice, path);
  const mallory = new Ed25519Signer(ed25519Keygen().secretKey);
  const badAuths: [string, unknown][] = [
    ['a flipped signature', { ...good, sig: (good.sig[0] === '0' ? '1' : '0') + good.sig.slice(1) }],
    ["mallory's signature claiming alice", { ...signQueryAuth(mallory, path), from: alice.publicKey }],
    ['auth signed for another path', signQueryAuth(alice, 'audit/log')],
    ['a timestamp 2 minutes old', signQueryAuth(alice, path, Date.now() - 120_000)],
    ['a timestamp 2 minutes ahead', signQueryAuth(alice, path, Date.now() + 120_000)],
    ['a short signature', { ...good, sig: good.sig.slice(0, 64) }],
    ['an unknown member', { ...good, role: 'supervisor' }],
    ['auth as a string', 'alice'],
  ];
  await unchanged(async () => {
    for (const [what, auth] of badAuths) {
      const answer = await rpc('query', [path, auth]);
      expectError(answer, ErrorCode.INVALID_PARAMS, `query auth with ${what}`);
      assert.match(answer.error!.message, /auth/, `${what}: the error says the auth is bad`);
    }
    for (const p of ['no/such/path', 'account', '', 'account/' + alice.publicKey + '/lots', '../../etc/passwd', 'kv/x']) {
      expectError(await rpc('query', [p]), ErrorCode.INVALID_PARAMS, `query of ${JSON.stringify(p)}`);
    }
    expectError(await rpc('query', ['account/NOT-AN-ID']), ErrorCode.INVALID_PARAMS, 'an account id that is not one');
    expectError(await rpc('query', [`account/${mallory.publicKey}`]), ErrorCode.NOT_FOUND, 'an account never opened');
    expectError(await rpc('query', ['x'.repeat(5000)]), ErrorCode.INVALID_PARAMS, 'a path over 4096 characters');
    expectError(await rpc('query', ['audit/log']), ErrorCode.NOT_PERMITTED, 'the audit log, anonymously');
    expectError(await rpc('query', [`${path}/deeds`]), ErrorCode.NOT_PERMITTED, "alice's deeds, anonymously");
    expectError(await rpc('query', [`${path}/deeds`, signQueryAuth(mallory, `${path}/deeds`)]), ErrorCode.NOT_PERMITTED, "alice's deeds, as mallory");
    const own = await rpc('query', [`${path}/deeds`, signQueryAuth(alice, `${path}/deeds`)]);
    assert.equal((own.result as { value: unknown }).value, [], 'alice sees her own (empty) deeds');
  });
});

test('garbage on the raw TCP socket, oversized headers and garbage WebSocket messages: the server survives', async () => {
  const url = new URL(node.url);
  /** Writes `bytes` on a raw connection and collects what comes back until the server closes or 3 s pass. */
  const raw = (bytes: Buffer, endWrite = true): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect(Number(url.port), url.hostname);
      let got = '';
      const finish = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      };
      const timer = setTimeout(finish, 3_000);
      socket.on('data', (c) => (got += c.toString('latin1')));
      socket.on('error', finish);
      socket.on('close', finish);
      socket.write(bytes, () => endWrite && socket.end());
    });
  await unchanged(async () => {
    const random = Buffer.alloc(64 * 1024);
    for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
    const garbage = await raw(random);
    assert.ok(garbage === '' || garbage.startsWith('HTTP/1.1 400'), `random bytes get 400 or a close: ${garbage.slice(0, 80)}`);
    const bad = await raw(Buffer.from('HELLO / WORLD\r\n\r\n'));
    assert.match(bad, /^HTTP\/1\.1 400/, 'a request line that is not HTTP gets 400');
    const smuggle = await raw(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
    assert.match(smuggle, /^HTTP\/1\.1 400/, 'conflicting length headers get 400');
    const headers = await raw(Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`));
    assert.match(headers, /^HTTP\/1\.1 (400|431)/, 'oversized headers are refused');
    const partial = await raw(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"jsonrpc"'));
    assert.not.match(partial, /^HTTP\/1\.1 5/, 'a body cut short is no server error');
    const notFound = await raw(Buffer.from('GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.match(notFound, /^HTTP\/1\.1 404/);

    // WebSocket: garbage text, a batch too large, and a binary frame; the connection keeps answering.
    const ws = new WebSocket(`ws://${url.host}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const answers: Answer[] = [];
    ws.on('message', (d) => answers.push(JSON.parse(String(d)) as Answer));
    const until = async (n: number) => {
      const deadline = Date.now() + 5_000;
      while (answers.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    ws.send('{not json');
    await until(1);
    expectError(answers[0]!, ErrorCode.PARSE_ERROR, 'garbage on the WebSocket');
    ws.send(Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    await until(2);
    expectError(answers[1]!, ErrorCode.PARSE_ERROR, 'a binary frame of garbage');
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'subscribe', params: ['everything'] }));
    await until(3);
    expectError(answers[2]!, ErrorCode.INVALID_PARAMS, 'subscribe to an unknown topic');
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'getBlockNumber' }));
    await until(4);
    assert.is(answers[3]!.result, await client.getBlockNumber(), 'the WebSocket still answers');
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  });
});

test('after all that: a valid transaction commits, the process is alive and its log holds no uncaught exception', async () => {
  const before = await client.getTotalTransactionCount();
  // expires exactly MAX_EXPIRY_AHEAD above the next height: the largest accepted.
  const t = sign(new Ed25519Signer(ed25519Keygen().secretKey), { expires: (await nextHeight()) + MAX_EXPIRY_AHEAD });
  const receipt = await client.sendTransactionAndWait(t.raw, 20_000);
  assert.is(receipt.status, 'ok');
  assert.is(receipt.code, Code.OK);
  const after = await client.getTotalTransactionCount();
  assert.is(after.transactions, before.transactions + 1);
  assert.is(after.blockNumber, receipt.blockNumber);

  assert.ok(node.alive(), 'the node process is still running');
  assert.is(await health(node.url), 200);
  const log = node.output();
  assert.ok(log.includes('node started'), 'the log is captured');
  assert.not.match(log, /uncaught|unhandled/i, 'no uncaught exception or unhandled rejection');
  assert.not.match(log, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.not.match(log, /"level":(50|60)/, 'no error or fatal log line');
});

test.run();
