// A real one-node cluster end to end: `goodness node` in a child process on RocksDB, driven
// over HTTP and WebSocket through the SDK only, every answer checked against the specs
// (rpc.md, chain.md, tx.md) and every committed transaction proven to the SDK's light client
// from the genesis hash, computed here from genesis.json. Then the node is SIGKILLed under load
// and restarted on the same data dir (nothing it reported committed may change), and stopped
// cleanly with SIGTERM.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PID_FILE } from '../cluster/config.ts';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { GoodnessClient, RpcError } from '../rpc/client.ts';
import { ErrorCode } from '../rpc/errors.ts';
import { LightClient, verifyHeader, verifyTransactionProof } from '../rpc/light-client.ts';
import type { BlockAnswer, HeaderWithHash, Receipt, TransactionProof, TxEnvelope } from '../rpc/types.ts';
import { Code } from '../state/codes.ts';
import { genesisHashOf, genesisValidators, startNode, type NodeProcess } from './fixtures/node-process.ts';

const GOODNESS_BASE_PORT = 28100;
const KV_BASE_PORT = 28110;
const CHAIN = 'goodness-e2e';
const MAX_BATCH = 1000;

let node: NodeProcess;
let client: GoodnessClient;

function newSigner(): Ed25519Signer {
  return new Ed25519Signer(ed25519Keygen().secretKey);
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Every block 1..head in order, fetched in batches. */
async function allBlocks(c: GoodnessClient, head: number): Promise<BlockAnswer[]> {
  const numbers = Array.from({ length: head }, (_, i) => i + 1);
  const blocks: BlockAnswer[] = [];
  for (const part of chunks(numbers, MAX_BATCH)) {
    const answers = await c.batch(part.map((n) => ({ method: 'getBlockByNumber' as const, params: [n] as [number] })));
    answers.forEach((a, i) => {
      if (!a.ok) throw a.error;
      if (!a.result) throw new Error(`block ${part[i]} is missing below the head ${head}`);
      blocks.push(a.result);
    });
  }
  return blocks;
}

/** The receipts of `hashes`, in batches. */
async function receiptsOf(c: GoodnessClient, hashes: string[]): Promise<(Receipt | null)[]> {
  const out: (Receipt | null)[] = [];
  for (const part of chunks(hashes, MAX_BATCH)) {
    const answers = await c.batch(part.map((h) => ({ method: 'getTransactionReceipt' as const, params: [h] as [string] })));
    for (const a of answers) {
      if (!a.ok) throw a.error;
      out.push(a.result);
    }
  }
  return out;
}

/**
 * The chain as a light client sees it: synced from the genesis hash of genesis.json to the head
 * (every header hash, parent link and certificate checked), the blocks linking 1..head, and the
 * node's transaction total equal to the sum of the blocks' txCount.
 */
async function checkWholeChain(c: GoodnessClient, n: NodeProcess): Promise<{ head: number; blocks: BlockAnswer[] }> {
  const head = await c.getBlockNumber();
  const light = LightClient.trustingGenesis(genesisHashOf(n.genesis));
  assert.is(await light.syncTo(c), head, 'the light client follows the chain to the head');
  const genesis = await c.getBlockByNumber(0);
  assert.is(genesis?.hash, genesisHashOf(n.genesis), 'block 0 is the genesis of genesis.json');
  const blocks = await allBlocks(c, head);
  let parent = genesis!.hash;
  let txs = 0;
  for (const b of blocks) {
    assert.is(b.parentHash, parent, `block ${b.number} links to its parent`);
    assert.is(b.hash, light.trustedHash(b.number), `block ${b.number} is the one the light client verified`);
    assert.ok(verifyHeader(b).ok, `block ${b.number}'s hash is its header's`);
    assert.is(b.transactions.length, b.txCount, `block ${b.number} lists txCount transactions`);
    parent = b.hash;
    txs += b.txCount;
  }
  const totals = await c.getTotalTransactionCount();
  assert.is(totals.blockNumber, head);
  assert.is(totals.transactions, txs, 'getTotalTransactionCount equals the sum of txCount over the blocks');
  return { head, blocks };
}

test.before(async () => {
  node = await startNode({ machine: 'goodness', basePort: GOODNESS_BASE_PORT, chain: CHAIN });
  client = new GoodnessClient(node.url, { timeoutMs: 30_000 });
});

test.after(async () => {
  await client?.close();
  await node?.cleanup();
});

test('account.open from fresh accounts over HTTP: receipts, blocks, certificates, queries and proofs', async () => {
  const validators = genesisValidators(node.genesis);
  const startHeight = await client.getBlockNumber();
  assert.is(startHeight, 0, 'an idle new chain has only its genesis block');

  const signers = Array.from({ length: 6 }, newSigner);
  const built = await Promise.all(signers.map((s) => client.buildTx(s, { type: 'account.open', body: {} })));
  // Half in parallel (they may share a block), half one after another (blocks of one).
  const receipts: Receipt[] = await Promise.all(built.slice(0, 3).map((b) => client.sendTransactionAndWait(b.raw, 20_000)));
  for (const b of built.slice(3)) receipts.push(await client.sendTransactionAndWait(b.raw, 20_000));

  for (const [i, r] of receipts.entries()) {
    assert.is(r.hash, built[i]!.hash, 'the receipt is for the transaction sent');
    assert.is(r.status, 'ok', `account.open of a fresh account succeeds: ${r.log}`);
    assert.is(r.code, Code.OK);
    assert.equal(r.events, [{ type: 'account.open', attributes: { account: signers[i]!.publicKey } }]);
    assert.ok(r.blockNumber >= 1);
    assert.equal(await client.getTransactionReceipt(r.hash), r, 'getTransactionReceipt answers the same receipt');
  }

  const head = await client.getBlockNumber();
  assert.ok(head >= 4 && head <= 6, `6 transactions, the last 3 sent one by one, make 4 to 6 blocks (head ${head})`);

  for (const [i, r] of receipts.entries()) {
    const tx = await client.getTransactionByHash(r.hash);
    assert.equal(tx, { hash: r.hash, blockNumber: r.blockNumber, index: r.index, tx: built[i]!.envelope }, 'getTransactionByHash gives the decoded envelope');

    const block = await client.getBlockByNumber(r.blockNumber);
    assert.ok(block, `block ${r.blockNumber} exists`);
    assert.is(block!.number, r.blockNumber);
    assert.is(block!.chain, CHAIN);
    assert.is((block!.transactions as string[])[r.index], r.hash, 'the block lists the hash at the receipt index');
    assert.ok(verifyHeader(block!).ok, 'the block hash is the hash of its header');

    const full = await client.getBlockByNumber(r.blockNumber, true);
    assert.equal((full!.transactions as TxEnvelope[])[r.index], built[i]!.envelope, 'with includeTransactions the block carries the envelopes');
    assert.equal({ ...full!, transactions: null }, { ...block!, transactions: null }, 'the header fields do not depend on includeTransactions');

    const byHash = await client.getBlockByHash(block!.hash);
    assert.equal(byHash, block, 'getBlockByHash answers the same block');
    assert.equal(await client.getBlockByHash(block!.hash, true), full);

    const cert = await client.getCommitCertificate(r.blockNumber);
    assert.ok(cert);
    assert.is(cert!.number, r.blockNumber);
    assert.is(cert!.blockHash, block!.hash, 'the certificate commits this block');
    assert.equal(cert!.signers, [0], 'the only validator signs');

    const proof = await client.getTransactionProof(r.hash);
    assert.ok(proof);
    const check = verifyTransactionProof(proof!, validators);
    assert.ok(check.ok, `the proof verifies against the genesis validator set: ${check.ok ? '' : check.reason}`);
    if (check.ok) {
      assert.is(check.txHash, r.hash);
      assert.is(check.height, r.blockNumber);
      assert.is(check.blockHash, block!.hash);
      assert.equal(check.receipt, r);
    }
  }

  // The checks are real: a proof of another status, or a certificate of another block, is refused.
  const proof = (await client.getTransactionProof(receipts[0]!.hash))!;
  const tamperedReceipt: TransactionProof = structuredClone(proof);
  tamperedReceipt.receipt.receipt.status = 'rejected';
  assert.not.ok(verifyTransactionProof(tamperedReceipt, validators).ok, 'a changed receipt does not prove');
  const otherCert = (await client.getCommitCertificate(head === receipts[0]!.blockNumber ? 1 : head))!;
  assert.not.ok(verifyTransactionProof({ ...proof, certificate: otherCert }, validators).ok, "another block's certificate does not prove");

  assert.is(await client.getBlockByNumber(head + 100), null, 'a block above the head is null');
  assert.is(await client.getBlockByHash(to0x(new Uint8Array(32).fill(7))), null, 'an unknown block hash is null');
  assert.is(await client.getCommitCertificate(0), null, 'genesis has no certificate');
  assert.is(await client.getCommitCertificate(head + 1), null, 'a block not committed has no certificate');
  assert.is(await client.getTransactionByHash(to0x(new Uint8Array(32).fill(9))), null);
  assert.is(await client.getTransactionProof(to0x(new Uint8Array(32).fill(9))), null);

  const totals = await client.getTotalTransactionCount();
  assert.equal(totals, { blockNumber: head, transactions: 6, rejected: 0 });
  assert.is(await client.getPendingTxSize(), 0, 'nothing left pending');

  assert.equal(await client.getValidators(), validators, 'the next block is signed by the genesis set');
  assert.equal(await client.getValidators(0), validators);
  assert.equal(await client.getValidators(head), validators);
  const status = await client.getConsensusStatus();
  assert.is(status.height, head);
  assert.is(status.view, 0);
  assert.is(status.leader, 0);
  assert.is(status.f, 0);
  assert.is(status.quorum, 1);
  assert.equal(status.validators, validators);
  assert.type(status.lastCommitTime, 'number');
  const version = await client.getClientVersion();
  assert.is(version.chain, CHAIN);
  assert.is(version.nodeId, validators[0]!.peerId, "nodeId is the node's libp2p peer id");
  assert.type(version.version, 'string');
  assert.ok(version.version.length > 0);

  // query account/<id>: anyone sees roles, status and points; the owner also sees the lots.
  const owner = signers[0]!;
  const anonymous = await client.query(`account/${owner.publicKey}`);
  assert.is(anonymous.height, head);
  assert.equal(anonymous.value, { id: owner.publicKey, roles: ['user'], status: 'active', points: 0 });
  const asOwner = await client.queryAs(owner, `account/${owner.publicKey}`);
  assert.equal(asOwner.value, { id: owner.publicKey, roles: ['user'], status: 'active', points: 0, lots: [] });
  const asOther = await client.queryAs(signers[1]!, `account/${owner.publicKey}`);
  assert.equal(asOther.value, anonymous.value, 'another account does not see the lots');
  try {
    await client.query(`account/${newSigner().publicKey}`);
    assert.unreachable('an account never opened is not found');
  } catch (e) {
    assert.instance(e, RpcError);
    assert.is((e as RpcError).code, ErrorCode.NOT_FOUND);
  }

  // A light client trusting only the genesis hash follows the chain to the head and verifies every transaction.
  const light = LightClient.trustingGenesis(genesisHashOf(node.genesis));
  assert.is(await light.syncTo(client), head);
  for (const [i, r] of receipts.entries()) {
    const verified = await client.verifiedTransaction(r.hash, light);
    assert.ok(verified);
    assert.is(verified!.blockNumber, r.blockNumber);
    assert.is(verified!.index, r.index);
    assert.equal(verified!.tx, built[i]!.envelope);
    assert.equal(verified!.receipt, r);
    assert.is(verified!.blockHash, light.trustedHash(r.blockNumber));
  }
  await checkWholeChain(client, node);
});

test('a second account.open by the same account commits as rejected ALREADY_EXISTS and changes nothing', async () => {
  const signer = newSigner();
  const first = await client.sendTxAndWait(signer, { type: 'account.open', body: {} }, 20_000);
  assert.is(first.status, 'ok');
  const path = `account/${signer.publicKey}`;
  const before = await client.queryAs(signer, path);
  const totalsBefore = await client.getTotalTransactionCount();

  const second = await client.sendTxAndWait(signer, { type: 'account.open', body: {} }, 20_000);
  assert.is(second.status, 'rejected', 'committed, with its effects void');
  assert.is(second.code, Code.ALREADY_EXISTS);
  assert.match(second.log, /already exists/);
  assert.equal(second.events, []);
  assert.ok(second.blockNumber > first.blockNumber);

  const proof = await client.getTransactionProof(second.hash);
  const check = verifyTransactionProof(proof!, genesisValidators(node.genesis));
  assert.ok(check.ok && check.receipt.status === 'rejected', 'a rejected transaction is proven like any other');

  const after = await client.queryAs(signer, path);
  assert.equal(after.value, before.value, 'the account is unchanged');
  assert.ok(after.height > before.height);
  const totalsAfter = await client.getTotalTransactionCount();
  assert.is(totalsAfter.transactions, totalsBefore.transactions + 1, 'a rejected transaction is still a committed one');
  assert.is(totalsAfter.rejected, totalsBefore.rejected + 1);
});

test('WebSocket: newBlocks sees the next block, a transaction subscription gets its receipt', async () => {
  const headers: HeaderWithHash[] = [];
  let onHeader: () => void = () => {};
  const unsubscribe = await client.subscribeNewBlocks((h) => {
    headers.push(h);
    onHeader();
  });
  const head = await client.getBlockNumber();

  const signer = newSigner();
  const built = await client.buildTx(signer, { type: 'account.open', body: {} });
  const ws = await client.ws();
  let settleReceipt!: (r: Receipt) => void;
  const notified = new Promise<Receipt>((resolve) => (settleReceipt = resolve));
  const subscription = await ws.subscribe(['transaction', built.hash], (r) => settleReceipt(r as Receipt));
  assert.type(subscription, 'string');

  const seenHeader = new Promise<void>((resolve) => (onHeader = () => headers.some((h) => h.number === head + 1) && resolve()));
  assert.is(await client.sendTransaction(built.raw), built.hash, 'sendTransaction answers the hash once admitted');
  const timeout = (what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000).unref());
  const receipt = await Promise.race([notified, timeout('receipt notification')]);
  await Promise.race([seenHeader, timeout('newBlocks notification')]);

  assert.is(receipt.hash, built.hash);
  assert.is(receipt.status, 'ok');
  assert.is(receipt.blockNumber, head + 1);
  assert.equal(await client.getTransactionReceipt(built.hash), receipt, 'the notified receipt is the stored one');

  const header = headers.find((h) => h.number === head + 1)!;
  const block = await client.getBlockByNumber(head + 1);
  assert.is(header.hash, block!.hash, 'the notified block is the committed one');
  assert.ok(verifyHeader(header).ok, "the notified header hashes to its hash");
  assert.equal(Object.keys(header).sort(), [...Object.keys(block!).filter((k) => k !== 'view' && k !== 'transactions')].sort(), 'a notification carries the header fields plus hash');
  assert.is(header.txCount, 1);

  // Subscribing to a committed transaction answers with its receipt at once.
  assert.equal(await client.waitForTransaction(built.hash, 5_000), receipt);
  assert.is(await unsubscribe(), true);
});

/**
 * Sends kv transactions continuously (several concurrent batches of sendTransactionAndWait)
 * until the node is SIGKILLed `killAfterMs` into the load. Records every receipt the node
 * returned and every block hash it announced on newBlocks before it died.
 */
async function loadThenKill(n: NodeProcess, round: string, killAfterMs: number, committed: Map<string, Receipt>, announced: Map<number, string>): Promise<void> {
  const before = committed.size;
  const c = new GoodnessClient(n.url, { timeoutMs: 30_000, ws: { onDisconnect: () => {} } });
  let stopped = false;
  let sent = 0;
  try {
    await c.subscribeNewBlocks((h) => announced.set(h.number, h.hash));
    const loop = async (lane: number) => {
      for (let batch = 0; !stopped; batch++) {
        const calls = Array.from({ length: 100 }, (_, i) => {
          const raw = to0x(utf8(`${round}-${lane}-${batch}-${i}=v${sent++}`));
          return { method: 'sendTransactionAndWait' as const, params: [raw, 20_000] as [string, number] };
        });
        let answers;
        try {
          answers = await c.batch(calls);
        } catch {
          return; // the node died under this batch
        }
        for (const a of answers) {
          if (a.ok) committed.set(a.result.hash, a.result);
          else if (a.error.code !== ErrorCode.POOL_FULL) throw a.error;
        }
      }
    };
    const lanes = [0, 1, 2].map(loop);
    // Kill `killAfterMs` into the load, but not before the node has reported a commit of this
    // round (a busy machine may be slow to start): the lanes keep batches in flight all along.
    const started = Date.now();
    while ((Date.now() - started < killAfterMs || committed.size === before) && Date.now() - started < 15_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const exit = await n.kill('SIGKILL');
    stopped = true;
    assert.is(exit.signal, 'SIGKILL', 'the node died of SIGKILL, mid-stream');
    await Promise.all(lanes);
  } finally {
    stopped = true;
    await c.close();
  }
}

/** After a restart: nothing the node reported committed has changed, and the chain is whole. */
async function checkSurvived(n: NodeProcess, committed: Map<string, Receipt>, announced: Map<number, string>): Promise<void> {
  const c = new GoodnessClient(n.url, { timeoutMs: 30_000 });
  try {
    const { head, blocks } = await checkWholeChain(c, n);
    const hashes = [...committed.keys()];
    const now = await receiptsOf(c, hashes);
    hashes.forEach((h, i) => {
      const before = committed.get(h)!;
      assert.ok(now[i], `transaction ${h} (block ${before.blockNumber}) is still committed after the restart`);
      assert.equal(now[i], before, `transaction ${h} has the same receipt, block number and index`);
      assert.is((blocks[before.blockNumber - 1]!.transactions as string[])[before.index], h, `block ${before.blockNumber} still holds ${h} at ${before.index}`);
    });
    for (const [number, hash] of announced) {
      assert.ok(number <= head, `announced block ${number} is not above the head ${head}`);
      assert.is(blocks[number - 1]!.hash, hash, `block ${number} has the hash it was announced with`);
    }
    // Blocks of recorded receipts whose newBlocks notification had not arrived yet are covered by
    // the receipt check above; most should have been announced.
    const receiptBlocks = new Set([...committed.values()].map((r) => r.blockNumber));
    assert.ok([...receiptBlocks].some((b) => announced.has(b)), 'the newBlocks subscription saw blocks of the load');

    // The restarted node takes new transactions and commits them on top.
    const fresh = await Promise.all([1, 2, 3].map((i) => c.sendTransactionAndWait(to0x(utf8(`after-restart-${head}-${i}=ok`)), 20_000)));
    for (const r of fresh) {
      assert.is(r.status, 'ok');
      assert.ok(r.blockNumber > head, 'a new block above the recovered head');
    }
    const value = await c.query(`kv/after-restart-${head}-1`);
    assert.is(value.value, 'ok');
  } finally {
    await c.close();
  }
}

test('SIGKILL under load, twice: every reported commit survives the restart, the chain links and verifies', async () => {
  const kv = await startNode({ machine: 'kv', basePort: KV_BASE_PORT });
  try {
    const committed = new Map<string, Receipt>();
    const announced = new Map<number, string>();

    await loadThenKill(kv, 'r1', 1_500, committed, announced);
    const afterFirst = committed.size;
    assert.ok(afterFirst > 0, 'the node reported commits before the first kill');
    await kv.restart();
    await checkSurvived(kv, committed, announced);

    // Another moment: as soon as the first batch of the round has come back, while the other lanes' batches are in flight.
    await loadThenKill(kv, 'r2', 0, committed, announced);
    assert.ok(committed.size > afterFirst, 'the node reported commits before the second kill');
    await kv.restart();
    await checkSurvived(kv, committed, announced);
  } finally {
    await kv.cleanup();
  }
});

test('SIGTERM stops cleanly: node.pid removed; the restart has the same head, block hash and app hash', async () => {
  const pidFile = join(node.nodeDir, PID_FILE);
  assert.is(readFileSync(pidFile, 'utf8').trim(), String(node.child.pid), 'node.pid holds the running pid');
  const head = await client.getBlockNumber();
  assert.ok(head > 0);
  const block = (await client.getBlockByNumber(head))!;
  const governor = node.governorKey();
  const account = await client.query(`account/${governor.accountId}`);

  await client.close();
  const exit = await node.stop();
  assert.equal(exit, { code: 0, signal: null }, `a clean stop exits 0; output:\n${node.output().slice(-2000)}`);
  assert.not.ok(existsSync(pidFile), 'node.pid is removed on a clean stop');

  await node.restart();
  client = new GoodnessClient(node.url, { timeoutMs: 30_000 });
  assert.is(await client.getBlockNumber(), head, 'same head');
  const again = (await client.getBlockByNumber(head))!;
  assert.is(again.hash, block.hash, 'same head block');
  assert.is(again.appHash, block.appHash, 'same app hash');
  assert.is((await client.getConsensusStatus()).height, head);
  assert.equal(await client.query(`account/${governor.accountId}`), account, 'the state is reloaded');
  assert.is(readFileSync(pidFile, 'utf8').trim(), String(node.child.pid), 'node.pid holds the new pid');

  const r = await client.sendTxAndWait(newSigner(), { type: 'account.open', body: {} }, 20_000);
  assert.is(r.status, 'ok');
  assert.is(r.blockNumber, head + 1, 'the chain goes on from the same head');
  const next = (await client.getBlockByNumber(head + 1))!;
  assert.is(next.parentHash, block.hash);
  await checkWholeChain(client, node);
});

test.run();
