// The light client of chain.md "What a light client does": it trusts a genesis hash (or one
// validator set) and nothing a node says until it has checked it: header hashes recomputed,
// commit certificates checked against the validator set the previous certificate committed to,
// and Merkle paths checked against a checked header. Every refusal says why.
import { verifyCertificate } from '../consensus/chain/certificate.ts';
import { headerFields, headerHash, receiptHash, validatorsHash } from '../consensus/chain/header.ts';
import { verifyMerkleProof } from '../consensus/chain/merkle.ts';
import type { CommitCertificate, Header, Validator } from '../consensus/chain/types.ts';
import { from0x, to0x } from '../consensus/crypto/encoding.ts';
import type { Receipt } from '../state/store/types.ts';
import type { BlockAnswer, TransactionProof } from './types.ts';

export type Check = { ok: true } | { ok: false; reason: string };
export type ProofCheck = { ok: true; height: number; blockHash: string; txHash: string; receipt: Receipt } | { ok: false; reason: string };

const HASH_RE = /^0x[0-9a-f]{64}$/;
const HASH_FIELDS = ['parentHash', 'txRoot', 'receiptRoot', 'appHash', 'validatorsHash', 'nextValidatorsHash'] as const;
const INT_FIELDS = ['number', 'timestamp', 'proposer', 'txCount'] as const;

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Checks that a header has the eleven fields of chain.md in their forms. */
export function checkHeaderShape(h: unknown): Check {
  if (!isObject(h)) return refuse('header is not an object');
  if (typeof h.chain !== 'string') return refuse('header.chain is not a string');
  for (const f of INT_FIELDS) if (!isCount(h[f])) return refuse(`header.${f} is not a non-negative integer`);
  for (const f of HASH_FIELDS) if (typeof h[f] !== 'string' || !HASH_RE.test(h[f] as string)) return refuse(`header.${f} is not a 0x 32-byte hash`);
  return { ok: true };
}

/** A block as getBlockByNumber answers it (or any header plus `hash`): the hash must be the header's. */
export function verifyHeader(block: Header & { hash: string }): Check {
  const shape = checkHeaderShape(block);
  if (!shape.ok) return shape;
  if (typeof block.hash !== 'string' || !HASH_RE.test(block.hash)) return refuse('block hash is not a 0x 32-byte hash');
  const computed = to0x(headerHash(block));
  if (computed !== block.hash) return refuse(`block hash ${block.hash} is not the hash of its header (${computed})`);
  return { ok: true };
}

/**
 * Checks that `certificate` commits block `hash` with header `header`, signed by `validators`,
 * which must be the set the header commits to (validatorsHash).
 */
export function verifyCommit(header: Header, hash: string, certificate: CommitCertificate, validators: Validator[]): Check {
  const shape = checkHeaderShape(header);
  if (!shape.ok) return shape;
  const computed = to0x(headerHash(header));
  if (hash !== computed) return refuse(`block hash ${hash} is not the hash of the header (${computed})`);
  if (!Array.isArray(validators) || validators.length === 0) return refuse('no validator set to check against');
  let setHash: string;
  try {
    setHash = validatorsHash(validators);
  } catch {
    return refuse('validator set is malformed');
  }
  if (setHash !== header.validatorsHash) return refuse(`validator set hashes to ${setHash}, the header commits to ${header.validatorsHash}`);
  if (!isObject(certificate)) return refuse('certificate is not an object');
  if (certificate.number !== header.number) return refuse(`certificate is for block ${String(certificate.number)}, the header is block ${header.number}`);
  const cert = verifyCertificate(certificate, hash, validators);
  return cert.ok ? cert : refuse(`certificate refused: ${cert.reason}`);
}

function isHashList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((p) => typeof p === 'string' && HASH_RE.test(p));
}

/**
 * Checks a getTransactionProof answer against a trusted validator set (the one that signs the
 * proof's block): the header's certificate, then the transaction's and the receipt's Merkle
 * paths against txRoot and receiptRoot.
 */
export function verifyTransactionProof(proof: TransactionProof, trustedValidators: Validator[]): ProofCheck {
  if (!isObject(proof)) return refuse('proof is not an object');
  const { header, certificate, tx, receipt } = proof;
  const shape = checkHeaderShape(header);
  if (!shape.ok) return shape;
  const blockHash = to0x(headerHash(header));
  const commit = verifyCommit(header, blockHash, certificate, trustedValidators);
  if (!commit.ok) return commit;

  if (!isObject(tx)) return refuse('proof.tx is not an object');
  if (typeof tx.hash !== 'string' || !HASH_RE.test(tx.hash)) return refuse('proof.tx.hash is not a 0x 32-byte hash');
  if (!isCount(tx.index) || tx.index >= header.txCount) return refuse(`proof.tx.index ${String(tx.index)} is not a leaf of a block of ${header.txCount} transactions`);
  if (!isHashList(tx.path)) return refuse('proof.tx.path is not a list of 0x 32-byte hashes');
  const txRoot = from0x(header.txRoot, 32)!;
  if (!verifyMerkleProof(txRoot, from0x(tx.hash, 32)!, tx.index, header.txCount, tx.path.map((p) => from0x(p, 32)!))) {
    return refuse(`transaction ${tx.hash} at index ${tx.index} does not prove against txRoot ${header.txRoot}`);
  }

  if (!isObject(receipt) || !isObject(receipt.receipt)) return refuse('proof.receipt is not {index, receipt, path}');
  const r = receipt.receipt;
  if (receipt.index !== tx.index) return refuse(`proof.receipt.index ${String(receipt.index)} differs from proof.tx.index ${tx.index}`);
  // blockNumber and index are not in the receipt hash: they are checked against the proven position.
  if (r.hash !== tx.hash) return refuse(`receipt is for transaction ${String(r.hash)}, not ${tx.hash}`);
  if (r.blockNumber !== header.number) return refuse(`receipt says block ${String(r.blockNumber)}, the proof's block is ${header.number}`);
  if (r.index !== tx.index) return refuse(`receipt says index ${String(r.index)}, the proof's index is ${tx.index}`);
  if (!isHashList(receipt.path)) return refuse('proof.receipt.path is not a list of 0x 32-byte hashes');
  let leaf: Uint8Array;
  try {
    leaf = receiptHash({ txHash: r.hash, status: r.status, code: r.code, log: r.log, events: r.events });
  } catch {
    return refuse('receipt has fields JSON cannot carry');
  }
  const receiptRoot = from0x(header.receiptRoot, 32)!;
  if (!verifyMerkleProof(receiptRoot, leaf, receipt.index, header.txCount, receipt.path.map((p) => from0x(p, 32)!))) {
    return refuse(`receipt of ${tx.hash} does not prove against receiptRoot ${header.receiptRoot}`);
  }
  return { ok: true, height: header.number, blockHash, txHash: tx.hash, receipt: r };
}

/** What a light client reads from a node: GoodnessClient has these methods. */
export interface ChainSource {
  getBlockNumber(): Promise<number>;
  getBlockByNumber(n: number): Promise<BlockAnswer | null>;
  getCommitCertificate(n: number): Promise<CommitCertificate | null>;
  getValidators(n?: number): Promise<Validator[]>;
}

export class LightClientError extends Error {
  constructor(
    readonly height: number,
    readonly reason: string,
  ) {
    super(`block ${height}: ${reason}`);
    this.name = 'LightClientError';
  }
}

/** What the next block must be to be accepted. */
interface Expectation {
  number: number;
  /** null only for the first block after trusting a bare validator set */
  parentHash: string | null;
  validatorsHash: string;
}

/**
 * Follows a chain block by block from certificate to certificate. The validator set of block
 * h + 1 is the one block h's nextValidatorsHash commits to; when it is a set the client has not
 * seen, the caller (or syncTo, through getValidators) must supply it, and it must hash to that.
 */
export class LightClient {
  /** validator sets by their hash; each was checked to hash to a trusted validatorsHash */
  private readonly sets = new Map<string, Validator[]>();
  /** verified blocks: height -> block hash and the validatorsHash that signed it */
  private readonly verified = new Map<number, { hash: string; validatorsHash: string }>();
  private expected: Expectation | null = null;
  private constructor(private readonly genesisHash: string | null) {}

  /** Trusts a chain by its genesis hash; the genesis header and set are checked against it (acceptGenesis, or syncTo). */
  static trustingGenesis(genesisHash: string): LightClient {
    if (!HASH_RE.test(genesisHash)) throw new TypeError('genesis hash is 0x followed by 64 lowercase hex characters');
    return new LightClient(genesisHash);
  }

  /** Trusts that `validators` sign block `height` (a set known out of band); follows the chain from there. */
  static trustingValidators(validators: Validator[], height: number): LightClient {
    if (!isCount(height) || height < 1) throw new TypeError('height is the positive number of the first block to follow');
    const lc = new LightClient(null);
    const hash = validatorsHash(validators);
    lc.sets.set(hash, copySet(validators));
    lc.expected = { number: height, parentHash: null, validatorsHash: hash };
    return lc;
  }

  /** Height of the last verified block, or -1 before any. */
  get height(): number {
    return this.expected ? this.expected.number - 1 : -1;
  }

  /** The hash of verified block `height`, or undefined when it has not been verified. */
  trustedHash(height: number): string | undefined {
    return this.verified.get(height)?.hash;
  }

  /** The validator set that signed verified block `height` (or, for the next block, will sign it). */
  validatorsFor(height: number): Validator[] | undefined {
    const vh = this.verified.get(height)?.validatorsHash ?? (this.expected?.number === height ? this.expected.validatorsHash : undefined);
    const set = vh === undefined ? undefined : this.sets.get(vh);
    return set ? copySet(set) : undefined;
  }

  /** Checks the genesis header (block 0) against the trusted hash, and its validator set against it. */
  acceptGenesis(header: Header, validators: Validator[]): Check {
    if (this.genesisHash === null) return refuse('this light client trusts a validator set, not a genesis');
    if (this.expected) return refuse('genesis already accepted');
    const shape = checkHeaderShape(header);
    if (!shape.ok) return shape;
    const hash = to0x(headerHash(header));
    if (hash !== this.genesisHash) return refuse(`genesis header hashes to ${hash}, the trusted genesis is ${this.genesisHash}`);
    if (header.number !== 0) return refuse('genesis header is not block 0');
    const setCheck = this.checkSet(validators, header.validatorsHash);
    if (!setCheck.ok) return setCheck;
    this.verified.set(0, { hash, validatorsHash: header.validatorsHash });
    this.expected = { number: 1, parentHash: hash, validatorsHash: header.nextValidatorsHash };
    return { ok: true };
  }

  /**
   * Accepts the next block when its header hashes to `block.hash`, links to the last verified
   * block, names the validator set the last verified block committed to, and its certificate
   * verifies against that set. `validators` is needed only when that set is new to the client.
   */
  advance(block: Header & { hash: string }, certificate: CommitCertificate, validators?: Validator[]): Check {
    const exp = this.expected;
    if (!exp) return refuse('no trusted starting point: accept the genesis first');
    if (!isObject(block)) return refuse('block is not an object');
    const header = headerFields(block);
    const blockCheck = verifyHeader({ ...header, hash: block.hash });
    if (!blockCheck.ok) return blockCheck;
    if (header.number !== exp.number) return refuse(`expected block ${exp.number}, got block ${header.number}`);
    if (exp.parentHash !== null && header.parentHash !== exp.parentHash) {
      return refuse(`parentHash ${header.parentHash} is not the verified block ${exp.number - 1} (${exp.parentHash})`);
    }
    if (header.validatorsHash !== exp.validatorsHash) {
      return refuse(`validatorsHash ${header.validatorsHash} is not the set block ${exp.number - 1} committed to (${exp.validatorsHash})`);
    }
    let set = this.sets.get(header.validatorsHash);
    if (validators !== undefined) {
      const setCheck = this.checkSet(validators, header.validatorsHash);
      if (!setCheck.ok) return setCheck;
      set = this.sets.get(header.validatorsHash);
    }
    if (!set) return refuse(`the validator set changed to ${header.validatorsHash}: give the set of block ${header.number} (getValidators [${header.number}])`);
    const commit = verifyCommit(header, block.hash, certificate, set);
    if (!commit.ok) return commit;
    this.verified.set(header.number, { hash: block.hash, validatorsHash: header.validatorsHash });
    this.expected = { number: header.number + 1, parentHash: block.hash, validatorsHash: header.nextValidatorsHash };
    return { ok: true };
  }

  /**
   * Follows the chain from the last verified block to `height` (default: the node's latest),
   * fetching headers, certificates and, when the set changes, validator sets from `source`.
   * Throws LightClientError when anything does not check out.
   */
  async syncTo(source: ChainSource, height?: number): Promise<number> {
    if (!this.expected) {
      const genesis = await source.getBlockByNumber(0);
      if (!genesis) throw new LightClientError(0, 'the node has no genesis block');
      const check = this.acceptGenesis(headerFields(genesis), await source.getValidators(0));
      if (!check.ok) throw new LightClientError(0, check.reason);
    }
    const target = height ?? (await source.getBlockNumber());
    while (this.expected!.number <= target) {
      const n = this.expected!.number;
      const [block, certificate] = await Promise.all([source.getBlockByNumber(n), source.getCommitCertificate(n)]);
      if (!block) throw new LightClientError(n, 'the node does not have this block');
      if (!certificate) throw new LightClientError(n, 'the node has no certificate for this block');
      const needSet = !this.sets.has(block.validatorsHash);
      const validators = needSet ? await source.getValidators(n) : undefined;
      const check = this.advance(block, certificate, validators);
      if (!check.ok) throw new LightClientError(n, check.reason);
    }
    return this.height;
  }

  /**
   * Checks a transaction proof against this client's verified chain: the proof's block must be
   * the verified block at its height (syncing to it first when a source is given).
   */
  async verifyTransactionProof(proof: TransactionProof, source?: ChainSource): Promise<ProofCheck> {
    if (!isObject(proof)) return refuse('proof is not an object');
    const shape = checkHeaderShape(proof.header);
    if (!shape.ok) return shape;
    const height = proof.header.number;
    if (source && height > this.height) {
      try {
        await this.syncTo(source, height);
      } catch (e) {
        if (e instanceof LightClientError) return refuse(`cannot verify the chain up to block ${height}: ${e.message}`);
        throw e;
      }
    }
    const trusted = this.verified.get(height);
    if (!trusted) return refuse(`block ${height} is not verified by this light client (verified up to ${this.height})`);
    const hash = to0x(headerHash(proof.header));
    if (hash !== trusted.hash) return refuse(`proof's block ${height} hashes to ${hash}, the verified block is ${trusted.hash}`);
    return verifyTransactionProof(proof, this.sets.get(trusted.validatorsHash)!);
  }

  private checkSet(validators: Validator[], expectedHash: string): Check {
    if (!Array.isArray(validators) || validators.length === 0) return refuse('validator set is empty');
    let hash: string;
    try {
      hash = validatorsHash(validators);
    } catch {
      return refuse('validator set is malformed');
    }
    if (hash !== expectedHash) return refuse(`given validator set hashes to ${hash}, the header commits to ${expectedHash}`);
    const indexes = new Set(validators.map((v) => v.index));
    if (indexes.size !== validators.length) return refuse('validator set lists an index twice');
    this.sets.set(hash, copySet(validators));
    return { ok: true };
  }
}

function copySet(validators: Validator[]): Validator[] {
  return validators.map((v) => ({ index: v.index, peerId: v.peerId, blsPublicKey: v.blsPublicKey })).sort((a, b) => a.index - b.index);
}
