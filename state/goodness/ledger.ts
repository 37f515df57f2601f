// The goodness ledger (goodness.md) as a StateMachine. This module does what every transaction
// type shares: form and signature (tx.md, once per node, at admission), chain, expiry, replay
// protection, the sender's role and freeze, receipts, the app hash and the state writes. What a
// type does lives in its handler (tx-types.ts lists them).
//
// Determinism: integer arithmetic, block time only, and the app hash is computed over changes
// sorted by key, so neither Map order nor the order a block touched its keys can matter.
import type { Genesis, ReceiptCore } from '../../consensus/chain/types.ts';
import { fromUtf8, jcs, utf8 } from '../../consensus/crypto/encoding.ts';
import { ChangesEncoder, genesisAppHash, type EncodingSpace } from '../app-hash.ts';
import { Code } from '../codes.ts';
import type {
  BlockContext,
  BlockTx,
  CheckContext,
  CheckResult,
  ExecutionResult,
  MachineInfo,
  QueryAnswer,
  StateMachine,
  StateReader,
  ValidatorUpdate,
} from '../machine.ts';
import { checkExpiry, decodeTx, signatureJobOf, type DecodedTx, type TxFields } from '../tx.ts';
import { canonicalJson } from './canonical.ts';
import { expireDueLots, LotExpiryIndex } from './expiry.ts';
import { genesisState, parseGoodnessGenesis } from './genesis.ts';
import { BodyError, type TxHandler } from './handler.ts';
import { answerQuery, type QueryState } from './queries.ts';
import { ACCOUNT_PREFIX, accountKey, DEED_PREFIX, LOT_PAGE_PREFIX, META_KEY, NONCE_PREFIX, nonceKey, type AccountRecord, type DeedRecord, type Lot } from './records.ts';
import { ReplayIndex } from './replay.ts';
import { LedgerState, TxScope, type BlockChanges, type StateView } from './state.ts';
import { HANDLERS } from './tx-types.ts';
import { Deleted, LedgerWrites } from './writes.ts';

type Refusal = { ok: false; code: number; log: string };
type Parsed = { ok: true; handler: TxHandler; body: unknown };
type Screened = { ok: true; sender: AccountRecord | undefined };

/** What admission hands to execution (CheckResult.checked): nothing is decoded or parsed twice. */
interface AdmittedTx {
  decoded: DecodedTx;
  handler: TxHandler;
  body: unknown;
  /**
   * nonceKey(from, nonce), as admission made it: admission looked it up, so the string already
   * holds its hash (and is flat), and execution does not build and hash a second one.
   */
  replayKey: string;
}

/** A stored JSON null marks a genesis-derived key as deleted (genesis state is not stored). */
const TOMBSTONE = utf8('null');
const EMPTY_PREFIX = new Uint8Array(0);
/** Spare buffers kept for blocks to come: one per block the engine may execute ahead of its commits. */
const MAX_SPARE_SPACES = 2;
/** A buffer larger than this (an exceptional block) is left to the collector rather than kept. */
const MAX_SPARE_BYTES = 64 * 1024 * 1024;

function refuse(code: number, log: string): Refusal {
  return { ok: false, code, log };
}

export class GoodnessLedger implements StateMachine {
  readonly name = 'goodness';
  private chain = '';
  private readonly state = new LedgerState();
  private readonly replay = new ReplayIndex();
  private readonly expiry = new LotExpiryIndex();
  /** block time of each executed, not yet committed block */
  private readonly pendingTimes = new Map<number, number>();
  /** the writes of each executed, not yet committed block: their buffers are reused once it is committed */
  private readonly pendingWrites = new Map<number, LedgerWrites>();
  /** buffers of committed blocks, for the next blocks to encode their changes into */
  private readonly spareSpace: EncodingSpace[] = [];
  private genesisKeys = new Set<string>();
  private readonly committedView: StateView = { get: (key) => this.state.getCommitted(key) };
  /**
   * Deed ids by user: an index for `account/<id>/deeds` derived from the deed records (not
   * state of its own, so it costs no write per deed). It follows the committed state only and
   * is rebuilt on open; the query orders what it finds. Commit only notes each new deed's user
   * and id in `unindexed` (pairs, flat): they are filed by user when a query next needs the
   * index, so a block of deed submissions does not pay a lookup per deed for an index that few
   * queries read.
   */
  private readonly deedsByUser = new Map<string, string[]>();
  private unindexed: string[] = [];
  private readonly queryView: QueryState = { get: (key) => this.state.getCommitted(key), deedsOf: (user) => this.deedsOf(user) };
  private readonly noteDeed = (_key: string, value: unknown): void => {
    const d = value as DeedRecord;
    this.unindexed.push(d.user, d.deed);
  };
  /** bytes the last block's changes took each: sizes the next block's buffer */
  private bytesPerChange = 128;
  /**
   * The account key of the last sender: consecutive transactions often come from one sender (a
   * distributor's batch of deeds), and a key string reused is neither built nor hashed again.
   */
  private lastSender = '';
  private lastSenderKey = '';
  /** The one TxScope, reset for each transaction: transactions execute one at a time. */
  private scope: TxScope | null = null;

  async open(reader: StateReader, genesis: Genesis): Promise<MachineInfo> {
    this.chain = genesis.chain;
    const entries = genesisState(parseGoodnessGenesis(genesis.app), genesis.validators);
    this.genesisKeys = new Set(entries.keys());
    let height = 0;
    let appHash = genesisAppHash(genesis.app);
    for await (const [rawKey, rawValue] of reader.entries(EMPTY_PREFIX)) {
      const key = fromUtf8(rawKey);
      const value: unknown = JSON.parse(fromUtf8(rawValue));
      if (key === META_KEY) {
        ({ height, appHash } = value as MachineInfo);
      } else if (value === null) {
        entries.delete(key);
      } else {
        entries.set(key, value);
      }
    }
    this.state.reset(entries, height, appHash);
    this.replay.clear();
    for (const [key, expires] of this.state.committedEntries(NONCE_PREFIX)) this.replay.add(expires as number, key);
    this.expiry.clear();
    this.pendingTimes.clear();
    this.pendingWrites.clear();
    this.deedsByUser.clear();
    this.unindexed = [];
    for (const [key, deed] of this.state.committedEntries(DEED_PREFIX)) this.noteDeed(key, deed);
    for (const [, value] of this.state.committedEntries(ACCOUNT_PREFIX)) {
      const account = value as AccountRecord;
      for (const lot of account.lots) this.expiry.track(lot.expiresAt, account.id);
    }
    // Lots beyond one page are in pages, lotPageKey(account, n); account ids hold no '/'.
    for (const [key, page] of this.state.committedEntries(LOT_PAGE_PREFIX)) {
      const account = key.slice(LOT_PAGE_PREFIX.length, key.lastIndexOf('/'));
      for (const lot of page as Lot[]) this.expiry.track(lot.expiresAt, account);
    }
    return this.info();
  }

  info(): MachineInfo {
    return { height: this.state.height, appHash: this.state.appHash };
  }

  /**
   * Admission. `ctx.height` is the height of the next block (committed height + 1): the
   * transaction must be valid there, expiry and replay alike (tx.md).
   */
  checkTx(bytes: Uint8Array, ctx: CheckContext): CheckResult {
    // The signature is handed to the engine's verifier (worker threads), not checked here.
    const decoded = decodeTx(bytes, this.chain, false, ctx.hash);
    if (!decoded.ok) return decoded;
    const tx = decoded.tx.envelope.tx;
    const expiry = checkExpiry(tx.expires, ctx.height);
    if (expiry) return refuse(expiry.code, expiry.log);
    const parsed = parse(tx);
    if (!parsed.ok) return parsed;
    const replayKey = nonceKey(tx.from, tx.nonce);
    const screened = this.screen(tx, parsed.handler, this.committedView, ctx.height, replayKey);
    if (!screened.ok) return screened;
    const checked: AdmittedTx = { decoded: decoded.tx, handler: parsed.handler, body: parsed.body, replayKey };
    return { ok: true, hash: decoded.tx.hash, sender: tx.from, nonce: tx.nonce, expires: tx.expires, checked, signature: signatureJobOf(bytes, decoded.tx) };
  }

  executeBlock(ctx: BlockContext, txs: BlockTx[]): ExecutionResult {
    const block = this.state.beginBlock(ctx.height);
    for (const h of [...this.pendingTimes.keys()]) if (h >= ctx.height) this.pendingTimes.delete(h);
    // Writes of replaced blocks stay with whoever holds them: their buffers are not reused.
    for (const h of [...this.pendingWrites.keys()]) if (h >= ctx.height) this.pendingWrites.delete(h);
    this.replay.prune(block);
    // Lots past their expiry stop counting before anything in the block can use them.
    expireDueLots(this.expiry, block, ctx.timestamp);
    const receipts: ReceiptCore[] = new Array(txs.length);
    const validatorUpdates: ValidatorUpdate[] = [];
    for (let i = 0; i < txs.length; i++) receipts[i] = this.executeTx(ctx, block, txs[i]!, validatorUpdates);

    const { keys, values } = block.sortedChanges();
    // Each value is serialised and written straight into the block's buffer: its text is
    // garbage at once instead of living until the whole list is serialised.
    const encoder = new ChangesEncoder(keys.length, keys.length * this.bytesPerChange, this.spareSpace.pop());
    for (let i = 0; i < keys.length; i++) {
      const value = values[i];
      encoder.add(keys[i]!, value === null ? 'null' : canonicalJson(value));
    }
    const { appHash, list, bytes } = encoder.finish(block.previousAppHash);
    if (keys.length > 0) this.bytesPerChange = Math.ceil(bytes / keys.length) + 8;
    // A deleted key is removed, unless genesis implies it: then a stored null says it is gone.
    let deleted: Uint8Array | null = null;
    for (let i = 0; i < keys.length; i++) {
      if (values[i] === null) (deleted ??= new Uint8Array(keys.length))[i] = this.genesisKeys.has(keys[i]!) ? Deleted.TOMBSTONE : Deleted.REMOVE;
    }
    const writes = new LedgerWrites(ctx.height, list, deleted, TOMBSTONE, [utf8(META_KEY), utf8(jcs({ height: ctx.height, appHash }))]);
    this.state.addPending(block, appHash);
    this.pendingTimes.set(ctx.height, ctx.timestamp);
    this.pendingWrites.set(ctx.height, writes);
    return { receipts, appHash, validatorUpdates, writes };
  }

  /** The committed state, every (key, value) whose key starts with `prefix` (audits and tests; not for the hot path). */
  committedEntries(prefix = ''): Iterable<[string, unknown]> {
    return this.state.committedEntries(prefix);
  }

  commit(height: number): void {
    this.state.commit(height, { prefix: DEED_PREFIX, onNew: this.noteDeed });
    this.replay.forgetBefore(height);
    const time = this.pendingTimes.get(height);
    this.pendingTimes.delete(height);
    if (time !== undefined) this.expiry.forgetUpTo(time);
    const space = this.pendingWrites.get(height)?.release();
    this.pendingWrites.delete(height);
    if (space && this.spareSpace.length < MAX_SPARE_SPACES && space.bytes.length <= MAX_SPARE_BYTES) this.spareSpace.push(space);
  }

  query(path: string, caller: string | null): QueryAnswer {
    return answerQuery(path, caller, this.queryView, this.state.height);
  }

  private deedsOf(user: string): readonly string[] {
    const notes = this.unindexed;
    for (let i = 0; i < notes.length; i += 2) {
      const list = this.deedsByUser.get(notes[i]!);
      if (list) list.push(notes[i + 1]!);
      else this.deedsByUser.set(notes[i]!, [notes[i + 1]!]);
    }
    this.unindexed = [];
    return this.deedsByUser.get(user) ?? [];
  }

  private executeTx(ctx: BlockContext, block: BlockChanges, btx: BlockTx, validatorUpdates: ValidatorUpdate[]): ReceiptCore {
    let admitted = btx.checked as AdmittedTx | undefined;
    if (!admitted) {
      // Reached this node only in a block: nothing has checked it here yet.
      const result = decodeTx(btx.bytes, this.chain);
      if (!result.ok) return rejected(btx.hash, result.code, result.log);
      const parsed = parse(result.tx.envelope.tx);
      if (!parsed.ok) return rejected(btx.hash, parsed.code, parsed.log);
      const { from, nonce } = result.tx.envelope.tx;
      admitted = { decoded: result.tx, handler: parsed.handler, body: parsed.body, replayKey: nonceKey(from, nonce) };
    }
    const tx = admitted.decoded.envelope.tx;
    const expiry = checkExpiry(tx.expires, ctx.height);
    if (expiry) return rejected(btx.hash, expiry.code, expiry.log);
    const replayKey = admitted.replayKey;
    const screened = this.screen(tx, admitted.handler, block, ctx.height, replayKey);
    if (!screened.ok) return rejected(btx.hash, screened.code, screened.log);

    const scope = this.scope?.reuse(block) ?? (this.scope = new TxScope(block));
    let outcome;
    try {
      outcome = admitted.handler.execute({ block: ctx, hash: btx.hash, tx, sender: screened.sender, state: scope, lots: this.expiry }, admitted.body);
    } catch (e) {
      // A handler bug must not halt the chain; every node hits it alike, so refusing is deterministic.
      return rejected(btx.hash, Code.BAD_STATE, `internal error executing ${tx.type}: ${(e as Error).message}`);
    }
    if (!outcome.ok) return rejected(btx.hash, outcome.code, outcome.log);
    scope.put(replayKey, tx.expires);
    scope.apply();
    this.replay.add(tx.expires, replayKey);
    if (outcome.validatorUpdates) validatorUpdates.push(...outcome.validatorUpdates);
    return { txHash: btx.hash, status: 'ok', code: Code.OK, log: '', events: outcome.events };
  }

  /**
   * The checks every type shares that read state: replay, sender's freeze and role, for a
   * transaction that would execute at `height`. `replayKey` is nonceKey(tx.from, tx.nonce): made
   * once per transaction, for this check and for the record execution writes.
   */
  private screen(tx: TxFields, handler: TxHandler, state: StateView, height: number, replayKey: string): Screened | Refusal {
    const usedUntil = state.get(replayKey);
    if (typeof usedUntil === 'number' && usedUntil >= height) {
      return refuse(Code.NONCE_USED, `nonce ${tx.nonce} of ${tx.from} was already used by a transaction that has not expired`);
    }
    const sender = state.get(this.senderKey(tx.from)) as AccountRecord | undefined;
    if (sender?.status === 'frozen') return refuse(Code.FROZEN, `account ${tx.from} is frozen`);
    if (handler.senders !== 'anyone' && !(sender && sender.roles.some((r) => handler.senders.includes(r)))) {
      return refuse(Code.NOT_PERMITTED, `${tx.type} is sent by ${handler.senders.join(' or ')}`);
    }
    return { ok: true, sender };
  }

  /** accountKey(from), reusing the last sender's key string (it keeps its hash) when `from` sent the last one too. */
  private senderKey(from: string): string {
    if (from !== this.lastSender) {
      this.lastSender = from;
      this.lastSenderKey = accountKey(from);
    }
    return this.lastSenderKey;
  }
}

/** The type's handler and the body read by it: what needs no state. */
function parse(tx: TxFields): Parsed | Refusal {
  const handler = HANDLERS.get(tx.type);
  if (!handler) {
    return refuse(Code.UNKNOWN_TYPE, `unknown transaction type ${tx.type}: there is no such transaction in goodness.md (and no transfer of points between accounts, by design)`);
  }
  const body = handler.parseBody(tx.body);
  if (body instanceof BodyError) return refuse(Code.BAD_BODY, body.log);
  return { ok: true, handler, body };
}

function rejected(txHash: string, code: number, log: string): ReceiptCore {
  return { txHash, status: 'rejected', code, log, events: [] };
}
