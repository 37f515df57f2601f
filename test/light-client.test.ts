// The light client against real blocks: headers hashed as chain.md says, certificates
// aggregated from real BLS signatures of a 4-validator set, proofs built by the server's own
// getTransactionProof. Good proofs pass; tampering with any field is refused with a reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headerFields, headerHash, validatorsHash } from '../consensus/chain/header.ts';
import type { CommitCertificate, Header, Validator } from '../consensus/chain/types.ts';
import { blsAggregateSignatures } from '../consensus/crypto/bls.ts';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { from0x, to0x } from '../consensus/crypto/encoding.ts';
import { buildTx } from '../state/tx.ts';
import { LightClient, LightClientError, verifyCommit, verifyHeader, verifyTransactionProof, type ChainSource } from '../rpc/light-client.ts';
import { methods, type CallContext } from '../rpc/methods.ts';
import { MemoryChain, certify, makeValidatorSet } from './fixtures/memory-chain.ts';
import type { BlockAnswer, TransactionProof } from '../rpc/types.ts';

const CHAIN = 'goodness-light-test';
const setA = makeValidatorSet(4, 0, 'set-a');
const setB = makeValidatorSet(5, 0, 'set-b');
const foreign = makeValidatorSet(4, 0, 'foreign');
const user = new Ed25519Signer(ed25519Keygen().secretKey);

function txs(n: number, tag: string): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => buildTx(user, { chain: CHAIN, type: 'test.op', nonce: `${tag}-${i}`, expires: 100, body: { i } }).bytes);
}

/** Blocks 1-3 signed by set A, block 3 hands over to set B, blocks 4-5 signed by B. */
function buildChain(): MemoryChain {
  const chain = new MemoryChain(CHAIN, setA);
  chain.commit(txs(5, 'b1'), {
    outcomes: [
      { status: 'ok', code: 0, log: '', events: [{ type: 'deed.submitted', attributes: { id: '1' } }] },
      { status: 'rejected', code: 10, log: 'not permitted', events: [] },
      { status: 'ok', code: 0, log: 'fine', events: [] },
      { status: 'ok', code: 0, log: '', events: [{ type: 'a', attributes: { x: 'y', z: 'w' } }] },
      { status: 'ok', code: 0, log: '', events: [] },
    ],
  });
  chain.commit(txs(1, 'b2'));
  chain.commit(txs(3, 'b3'), { nextSet: setB });
  chain.commit(txs(7, 'b4'));
  chain.commit(txs(2, 'b5'));
  return chain;
}

/** The method handlers read only `api.store` and `api.validatorsAt` here; the rest of NodeApi is not needed. */
function ctxOf(chain: MemoryChain): CallContext {
  const api = { store: chain, validatorsAt: (h: number) => chain.validatorsAt(h) };
  return { api, commits: null, signal: new AbortController().signal, now: Date.now } as unknown as CallContext;
}

async function proofOf(chain: MemoryChain, height: number, index: number): Promise<TransactionProof> {
  const hash = chain.blocks[height]!.txHashes[index]!;
  const proof = await methods.getTransactionProof.handler(ctxOf(chain), [hash]);
  assert.ok(proof, `proof of ${hash}`);
  return proof!;
}

function sourceOf(chain: MemoryChain): ChainSource {
  const ctx = ctxOf(chain);
  return {
    getBlockNumber: async () => methods.getBlockNumber.handler(ctx, []),
    getBlockByNumber: async (n) => methods.getBlockByNumber.handler(ctx, [n]),
    getCommitCertificate: async (n) => methods.getCommitCertificate.handler(ctx, [n]),
    getValidators: async (n) => methods.getValidators.handler(ctx, n === undefined ? [] : [n]),
  };
}

function refused(check: { ok: boolean; reason?: string }, what: string): string {
  assert.is(check.ok, false, `${what} must be refused`);
  assert.type(check.reason, 'string', `${what} gives a reason`);
  assert.ok(check.reason!.length > 5, `${what} gives a reason`);
  return check.reason!;
}

function flipHex(h: string): string {
  const last = h[h.length - 1]!;
  return h.slice(0, -1) + (last === '0' ? '1' : '0');
}

/** A different value of the same form for each header field. */
function tamperedValue(field: keyof Header, v: unknown): unknown {
  if (field === 'chain') return `${v as string}x`;
  if (typeof v === 'number') return v + 1;
  return flipHex(v as string);
}

const HEADER_KEYS: (keyof Header)[] = ['chain', 'number', 'parentHash', 'timestamp', 'proposer', 'txCount', 'txRoot', 'receiptRoot', 'appHash', 'validatorsHash', 'nextValidatorsHash'];

test('good proofs pass for every transaction of a block with an odd count', async () => {
  const chain = buildChain();
  for (let i = 0; i < 5; i++) {
    const proof = await proofOf(chain, 1, i);
    const check = verifyTransactionProof(proof, setA.validators);
    assert.ok(check.ok, `index ${i}: ${check.ok ? '' : check.reason}`);
    if (check.ok) {
      assert.is(check.height, 1);
      assert.is(check.blockHash, chain.blocks[1]!.hash);
      assert.is(check.txHash, chain.blocks[1]!.txHashes[i]);
      assert.is(check.receipt.index, i);
    }
  }
  assert.is(chain.receipts.get(chain.blocks[1]!.txHashes[1]!)!.status, 'rejected');
  // a one-transaction block: empty paths
  const single = await proofOf(chain, 2, 0);
  assert.equal(single.tx.path, []);
  assert.ok(verifyTransactionProof(single, setA.validators).ok);
  // after the set change, block 4 is signed by B
  assert.ok(verifyTransactionProof(await proofOf(chain, 4, 6), setB.validators).ok);
  refused(verifyTransactionProof(await proofOf(chain, 4, 6), setA.validators), 'block 4 checked against the old set');
});

test('tampering with each header field is refused', async () => {
  const chain = buildChain();
  const good = await proofOf(chain, 1, 2);
  for (const field of HEADER_KEYS) {
    const p = structuredClone(good);
    (p.header as unknown as Record<string, unknown>)[field] = tamperedValue(field, p.header[field]);
    refused(verifyTransactionProof(p, setA.validators), `header.${field}`);
    // ... also when the certificate is re-pointed at the tampered header's hash: the signature breaks
    const q = structuredClone(p);
    q.certificate.blockHash = to0x(headerHash(q.header));
    if (field === 'number') q.certificate.number = q.header.number;
    const reason = refused(verifyTransactionProof(q, setA.validators), `header.${field} with certificate re-pointed`);
    if (field !== 'validatorsHash') assert.match(reason, /aggregate signature does not verify/);
  }
});

test('tampered certificates are refused: too few, duplicated, foreign signers, wrong hash, wrong aggregate', async () => {
  const chain = buildChain();
  const good = await proofOf(chain, 1, 0);
  const hash = chain.blocks[1]!.hash;
  const cases: [string, CommitCertificate, RegExp][] = [
    ['two signers of four', certify(setA, 1, hash, [0, 1]), /2 signers, quorum is 3/],
    ['a duplicated signer', { ...certify(setA, 1, hash, [0, 1, 1]) }, /appears twice/],
    ['a signer outside the set', certify(makeValidatorSet(8, 0, 'set-a'), 1, hash, [0, 1, 7]), /not in the validator set/],
    ['a foreign set with the same indexes', certify(foreign, 1, hash, [0, 1, 2]), /does not verify/],
    ['a certificate of another block', certify(setA, 1, chain.blocks[2]!.hash, [0, 1, 2]), /another block hash/],
    ['another block, its hash relabelled', { ...certify(setA, 1, chain.blocks[2]!.hash, [0, 1, 2]), blockHash: hash }, /does not verify/],
    ['signers listed that did not sign', { ...certify(setA, 1, hash, [0, 1, 3]), signers: [0, 1, 2] }, /does not verify/],
    ['a certificate numbered for another block', { ...certify(setA, 1, hash, [0, 1, 2]), number: 2 }, /certificate is for block 2/],
  ];
  // an aggregate of three signatures where one is over another message
  const forged = certify(setA, 1, hash, [0, 1]);
  const other = certify(setA, 2, chain.blocks[2]!.hash, [2]);
  const mixed = blsAggregateSignatures([from0x(forged.aggregateSignature, 96)!, from0x(other.aggregateSignature, 96)!])!;
  cases.push(['an aggregate including a signature over another block', { ...forged, signers: [0, 1, 2], aggregateSignature: to0x(mixed) }, /does not verify/]);
  cases.push(['a malformed aggregate', { ...good.certificate, aggregateSignature: flipHex(good.certificate.aggregateSignature) }, /aggregate|malformed/]);
  cases.push(['a truncated aggregate', { ...good.certificate, aggregateSignature: good.certificate.aggregateSignature.slice(0, -2) }, /malformed/]);
  for (const [what, cert, reason] of cases) {
    const p = structuredClone(good);
    p.certificate = cert;
    assert.match(refused(verifyTransactionProof(p, setA.validators), what), reason, what);
  }
  // all four signing is fine, and so is any quorum
  for (const signers of [[0, 1, 2, 3], [1, 2, 3], [0, 2, 3]]) {
    const p = structuredClone(good);
    p.certificate = certify(setA, 1, hash, signers);
    assert.ok(verifyTransactionProof(p, setA.validators).ok, `signers ${signers}`);
  }
});

test('tampered paths, indexes, hashes and receipt fields are refused', async () => {
  const chain = buildChain();
  const good = await proofOf(chain, 4, 5);
  assert.ok(good.tx.path.length >= 2, 'a path long enough to tamper element by element');
  const mutations: [string, (p: TransactionProof) => void][] = [];
  good.tx.path.forEach((_, i) => mutations.push([`tx.path[${i}]`, (p) => (p.tx.path[i] = flipHex(p.tx.path[i]!))]));
  good.receipt.path.forEach((_, i) => mutations.push([`receipt.path[${i}]`, (p) => (p.receipt.path[i] = flipHex(p.receipt.path[i]!))]));
  mutations.push(
    ['tx.path one element short', (p) => p.tx.path.pop()],
    ['tx.path one element extra', (p) => p.tx.path.push(p.tx.path[0]!)],
    ['receipt.path one element short', (p) => p.receipt.path.pop()],
    ['tx.path swapped', (p) => p.tx.path.reverse()],
    ['tx.index', (p) => (p.tx.index = 4)],
    ['tx.index past the end', (p) => (p.tx.index = 7)],
    ['tx.index and receipt indexes together', (p) => {
      p.tx.index = 4;
      p.receipt.index = 4;
      p.receipt.receipt.index = 4;
    }],
    ['receipt.index', (p) => (p.receipt.index = 4)],
    ['tx.hash', (p) => (p.tx.hash = flipHex(p.tx.hash))],
    ['tx.hash of another transaction of the block', (p) => (p.tx.hash = chain.blocks[4]!.txHashes[4]!)],
    ['receipt.hash', (p) => (p.receipt.receipt.hash = flipHex(p.receipt.receipt.hash))],
    ['receipt.blockNumber', (p) => (p.receipt.receipt.blockNumber = 3)],
    ['receipt.index field', (p) => (p.receipt.receipt.index = 4)],
    ['receipt.status', (p) => (p.receipt.receipt.status = 'rejected')],
    ['receipt.code', (p) => (p.receipt.receipt.code = 3)],
    ['receipt.log', (p) => (p.receipt.receipt.log = 'changed')],
    ['receipt.events removed', (p) => (p.receipt.receipt.events = [])],
    ['receipt.events attribute', (p) => (p.receipt.receipt.events[0]!.attributes.n = '99')],
    ['receipt.events type', (p) => (p.receipt.receipt.events[0]!.type = 'other')],
    ['receipt.events extra', (p) => p.receipt.receipt.events.push({ type: 'x', attributes: {} })],
    ['path element not hex', (p) => (p.tx.path[0] = 'zz')],
    ['proof without receipt', (p) => delete (p as Partial<TransactionProof>).receipt],
  );
  for (const [what, mutate] of mutations) {
    const p = structuredClone(good);
    mutate(p);
    refused(verifyTransactionProof(p, setB.validators), what);
  }
  assert.ok(verifyTransactionProof(structuredClone(good), setB.validators).ok, 'the untouched clone still passes');
});

test('verifyHeader and verifyCommit refuse tampering and name the problem', async () => {
  const chain = buildChain();
  const block = chain.blocks[1]!;
  const good = { ...headerFields(block.header), hash: block.hash };
  assert.ok(verifyHeader(good).ok);
  for (const field of HEADER_KEYS) {
    const b = { ...good, [field]: tamperedValue(field, good[field]) };
    assert.match(refused(verifyHeader(b), field), /is not the hash of its header/);
  }
  refused(verifyHeader({ ...good, hash: flipHex(good.hash) }), 'hash');
  refused(verifyHeader({ ...good, number: -1 }), 'negative number');
  refused(verifyHeader({ ...good, txRoot: good.txRoot.toUpperCase() }), 'upper-case root');
  const cert = chain.certificates.get(1)!;
  assert.ok(verifyCommit(block.header, block.hash, cert, setA.validators).ok);
  assert.match(refused(verifyCommit(block.header, block.hash, cert, foreign.validators), 'foreign set'), /hashes to/);
  assert.match(refused(verifyCommit(block.header, block.hash, cert, setA.validators.slice(0, 3)), 'partial set'), /hashes to/);
  assert.match(refused(verifyCommit(block.header, chain.blocks[2]!.hash, cert, setA.validators), 'wrong hash'), /not the hash of the header/);
  // the set's order does not matter: it is hashed sorted by index
  assert.ok(verifyCommit(block.header, block.hash, cert, [...setA.validators].reverse()).ok);
});

test('the light client follows the chain from genesis through a validator-set change', async () => {
  const chain = buildChain();
  assert.is.not(validatorsHash(setA.validators), validatorsHash(setB.validators));
  const lc = LightClient.trustingGenesis(chain.genesisHash);
  assert.is(await lc.syncTo(sourceOf(chain)), 5);
  for (let h = 0; h <= 5; h++) assert.is(lc.trustedHash(h), chain.blocks[h]!.hash);
  assert.equal(lc.validatorsFor(3), setA.validators);
  assert.equal(lc.validatorsFor(4), setB.validators);
  const check = await lc.verifyTransactionProof(await proofOf(chain, 5, 1));
  assert.ok(check.ok);
  // a proof whose header is self-consistent but not the verified block at that height is refused
  const p = await proofOf(chain, 5, 1);
  const other = await proofOf(chain, 4, 0);
  p.header = other.header;
  refused(await lc.verifyTransactionProof({ ...p, header: { ...p.header, number: 5 } }), 'header of another block');
});

test('step by step: a changed set must be given and must hash to nextValidatorsHash', async () => {
  const chain = buildChain();
  const lc = LightClient.trustingGenesis(chain.genesisHash);
  const block = (h: number) => ({ ...headerFields(chain.blocks[h]!.header), hash: chain.blocks[h]!.hash });
  const cert = (h: number) => chain.certificates.get(h)!;
  refused(lc.advance(block(1), cert(1)), 'a block before the genesis is accepted');
  refused(lc.acceptGenesis(chain.blocks[1]!.header, setA.validators), 'block 1 as genesis');
  refused(lc.acceptGenesis(chain.blocks[0]!.header, foreign.validators), 'genesis with a foreign set');
  assert.ok(lc.acceptGenesis(chain.blocks[0]!.header, setA.validators).ok);
  refused(lc.advance(block(2), cert(2)), 'skipping block 1');
  assert.ok(lc.advance(block(1), cert(1)).ok);
  assert.match(refused(lc.advance(block(2), cert(1)), "block 1's certificate on block 2"), /certificate is for block 1/);
  assert.ok(lc.advance(block(2), cert(2)).ok);
  assert.ok(lc.advance(block(3), cert(3)).ok);
  assert.match(refused(lc.advance(block(4), cert(4)), 'the new set not given'), /validator set changed/);
  assert.match(refused(lc.advance(block(4), cert(4), setA.validators), 'the old set given'), /hashes to/);
  assert.match(refused(lc.advance(block(4), cert(4), foreign.validators), 'a foreign set given'), /hashes to/);
  assert.ok(lc.advance(block(4), cert(4), setB.validators).ok);
  assert.ok(lc.advance(block(5), cert(5)).ok, 'the new set is remembered');
  assert.is(lc.height, 5);
});

test('a node serving a forged chain is caught while syncing', async () => {
  const chain = buildChain();
  const honest = sourceOf(chain);
  /** serves the honest chain except for the given blocks and certificates */
  const forging = (blocks: Map<number, BlockAnswer>, certs: Map<number, CommitCertificate>, sets = new Map<number, Validator[]>()): ChainSource => ({
    ...honest,
    getBlockByNumber: async (n) => blocks.get(n) ?? (await honest.getBlockByNumber(n)),
    getCommitCertificate: async (n) => certs.get(n) ?? (await honest.getCommitCertificate(n)),
    getValidators: async (n) => (n !== undefined && sets.get(n)) || honest.getValidators(n),
  });
  const forge = async (n: number, change: Partial<Header>, signers: typeof setA, indexes = [0, 1, 2]) => {
    const original = (await honest.getBlockByNumber(n))!;
    const header = { ...headerFields(original), ...change };
    const hash = to0x(headerHash(header));
    return { block: { ...original, ...header, hash }, cert: certify(signers, n, hash, indexes) };
  };
  const expectRefusal = async (source: ChainSource, height: number, reason: RegExp) => {
    const lc = LightClient.trustingGenesis(chain.genesisHash);
    const err = await lc.syncTo(source).catch((e: unknown) => e);
    assert.instance(err, LightClientError);
    assert.is((err as LightClientError).height, height);
    assert.match((err as LightClientError).reason, reason);
    assert.is(lc.height, height - 1, 'nothing past the forgery is trusted');
  };
  // block 2 with another app hash, signed by a foreign set claiming to be A (same indexes)
  const f1 = await forge(2, { appHash: to0x(new Uint8Array(32)) }, foreign);
  await expectRefusal(forging(new Map([[2, f1.block]]), new Map([[2, f1.cert]])), 2, /does not verify/);
  // block 3 naming a foreign set in validatorsHash, signed by it, the set served on request
  const f2 = await forge(3, { validatorsHash: validatorsHash(foreign.validators) }, foreign);
  await expectRefusal(forging(new Map([[3, f2.block]]), new Map([[3, f2.cert]]), new Map([[3, foreign.validators]])), 3, /validatorsHash .* is not the set block 2 committed to/);
  // block 4 signed by the old set A instead of B
  const f3 = await forge(4, {}, setA, [0, 1, 2, 3]);
  await expectRefusal(forging(new Map(), new Map([[4, f3.cert]])), 4, /does not verify/);
  // a wrong set served for block 4
  await expectRefusal(forging(new Map(), new Map(), new Map([[4, foreign.validators]])), 4, /hashes to/);
  // a block 2 that does not link to block 1
  const f4 = await forge(2, { parentHash: chain.blocks[0]!.hash }, setA);
  await expectRefusal(forging(new Map([[2, f4.block]]), new Map([[2, f4.cert]])), 2, /parentHash/);
  // the honest source passes the same checks
  assert.is(await LightClient.trustingGenesis(chain.genesisHash).syncTo(forging(new Map(), new Map())), 5);
  // a node whose genesis differs is refused at once
  const other = new MemoryChain(`${CHAIN}-other`, setA);
  const err = await LightClient.trustingGenesis(chain.genesisHash).syncTo(sourceOf(other)).catch((e: unknown) => e);
  assert.instance(err, LightClientError);
  assert.match((err as LightClientError).reason, /genesis header hashes to/);
});

test('trusting a bare validator set follows the chain from that block', async () => {
  const chain = buildChain();
  const lc = LightClient.trustingValidators(setB.validators, 4);
  assert.is(await lc.syncTo(sourceOf(chain)), 5);
  assert.ok((await lc.verifyTransactionProof(await proofOf(chain, 4, 3))).ok);
  const wrong = LightClient.trustingValidators(setA.validators, 4);
  const err = await wrong.syncTo(sourceOf(chain)).catch((e: unknown) => e);
  assert.instance(err, LightClientError);
  assert.match((err as LightClientError).reason, /validatorsHash/);
});

test.run();
