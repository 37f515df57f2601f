// The goodness ledger (goodness.md) as a StateMachine. This module does what every transaction
// type shares: form and signature (tx.md, once per node, at admission), chain, expiry, replay
// protection, the sender's role and freeze, receipts, the app hash and the state writes. What a
// type does lives in its handler (tx-types.ts lists them).
//
// Determinism: integer arithmetic, block time only, and the app hash is computed over changes
// sorted by key, so neither Map order nor the order a block touched its keys can matter.
import type { Genesis, ReceiptCore } from '../../consensus/chain/types.ts';
import { fromUtf8, jcs, utf8 } from '../../consensus/crypto/encoding.ts';
import { genesisAppHash, nextAppHash, sortChanges, type CanonicalChange } from '../app-hash.ts';
import { Code } from '../codes.ts';
import type {
  BlockContext,
  BlockTx,
  CheckResult,
  ExecutionResult,
  MachineInfo,
  QueryAnswer,
  StateMachine,
  StateReader,
  StateWrite,
} from '../machine.ts';
import { checkExpiry, decodeTx, signatureJobOf, type DecodedTx, type TxFields } from '../tx.ts';
import { genesisState, parseGoodnessGenesis } from './genesis.ts';
import { BodyError, type TxHandler } from './handler.ts';
import { answerQuery } from './queries.ts';
import { accountKey, META_KEY, NONCE_PREFIX, nonceKey, type AccountRecord } from './records.ts';
import { ReplayIndex } from './replay.ts';
import { LedgerState, TxScope, type BlockChanges, type StateView } from './state.ts';
import { HANDLERS, isKnownType } from './tx-types.ts';

type Refusal = { ok: false; code: number; log: string };
type Screened = { ok: true; handler: TxHandler; body: unknown; sender: AccountRecord | undefined };

/** A stored JSON null marks a genesis-derived key as deleted (genesis state is not stored). */
const TOMBSTONE = utf8('null');
const EMPTY_PREFIX = new Uint8Array(0);

function refuse(code: number, log: string): Refusal {
  return { ok: false, code, log };
}

export class GoodnessLedger implements StateMachine {
  readonly name = 'goodness';
  private chain = '';
  private readonly state = new LedgerState();
  private readonly replay = new ReplayIndex();
  private genesisKeys = new Set<string>();
  private readonly committedView: StateView = { get: (key) => this.state.getCommitted(key) };

  async open(reader: StateReader, genesis: Genesis): Promise<MachineInfo> {
    this.chain = genesis.chain;
    const entries = genesisState(parseGoodnessGenesis(genesis.app));
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
    return this.info();
  }

  info(): MachineInfo {
    return { height: this.state.height, appHash: this.state.appHash };
  }

  /**
   * Admission. `ctx.height` is the height of the next block (committed height + 1): the
   * transaction must be valid there, expiry and replay alike (tx.md).
   */
  checkTx(bytes: Uint8Array, ctx: { height: number }): CheckResult {
    // The signature is handed to the engine's verifier (worker threads), not checked here.
    const decoded = decodeTx(bytes, this.chain, false);
    if (!decoded.ok) return decoded;
    const tx = decoded.tx.envelope.tx;
    const expiry = checkExpiry(tx.expires, ctx.height);
    if (expiry) return refuse(expiry.code, expiry.log);
    const screened = this.screen(tx, this.committedView, ctx.height);
    if (!screened.ok) return screened;
    return { ok: true, hash: decoded.tx.hash, sender: tx.from, nonce: tx.nonce, expires: tx.expires, checked: decoded.tx, signature: signatureJobOf(bytes, decoded.tx) };
  }

  executeBlock(ctx: BlockContext, txs: BlockTx[]): ExecutionResult {
    const block = this.state.beginBlock(ctx.height);
    this.replay.prune(block);
    const receipts: ReceiptCore[] = new Array(txs.length);
    for (let i = 0; i < txs.length; i++) receipts[i] = this.executeTx(ctx, block, txs[i]!);

    const changes = sortChanges([...block.changes]);
    const canonical = new Array<CanonicalChange>(changes.length);
    const writes: StateWrite[] = new Array(changes.length + 1);
    for (let i = 0; i < changes.length; i++) {
      const [key, value] = changes[i]!;
      const text = value === null ? 'null' : jcs(value);
      canonical[i] = [key, text];
      const stored = value !== null ? Buffer.from(text) : this.genesisKeys.has(key) ? TOMBSTONE : null;
      writes[i] = [Buffer.from(key), stored];
    }
    const appHash = nextAppHash(block.previousAppHash, canonical);
    writes[changes.length] = [utf8(META_KEY), utf8(jcs({ height: ctx.height, appHash }))];
    this.state.addPending(block, appHash);
    return { receipts, appHash, validatorUpdates: [], writes };
  }

  commit(height: number): void {
    this.state.commit(height);
    this.replay.forgetBefore(height);
  }

  query(path: string, caller: string | null): QueryAnswer {
    return answerQuery(path, caller, this.committedView, this.state.height);
  }

  private executeTx(ctx: BlockContext, block: BlockChanges, btx: BlockTx): ReceiptCore {
    let decoded = btx.checked as DecodedTx | undefined;
    if (!decoded) {
      // Reached this node only in a block: nothing has checked it here yet.
      const result = decodeTx(btx.bytes, this.chain);
      if (!result.ok) return rejected(btx.hash, result.code, result.log);
      decoded = result.tx;
    }
    const tx = decoded.envelope.tx;
    const expiry = checkExpiry(tx.expires, ctx.height);
    if (expiry) return rejected(btx.hash, expiry.code, expiry.log);
    const screened = this.screen(tx, block, ctx.height);
    if (!screened.ok) return rejected(btx.hash, screened.code, screened.log);

    const scope = new TxScope(block);
    let outcome;
    try {
      outcome = screened.handler.execute({ block: ctx, hash: btx.hash, tx, sender: screened.sender, state: scope }, screened.body);
    } catch {
      // A handler bug must not halt the chain; every node hits it alike, so refusing is deterministic.
      return rejected(btx.hash, Code.BAD_STATE, `internal error executing ${tx.type}`);
    }
    if (!outcome.ok) return rejected(btx.hash, outcome.code, outcome.log);
    const replayKey = nonceKey(tx.from, tx.nonce);
    scope.put(replayKey, tx.expires);
    scope.apply();
    this.replay.add(tx.expires, replayKey);
    return { txHash: btx.hash, status: 'ok', code: Code.OK, log: '', events: outcome.events };
  }

  /**
   * The checks every type shares that read state: type, body, replay, sender's freeze and role,
   * for a transaction that would execute at `height`.
   */
  private screen(tx: TxFields, state: StateView, height: number): Screened | Refusal {
    const handler = HANDLERS.get(tx.type);
    if (!handler) {
      return refuse(Code.UNKNOWN_TYPE, isKnownType(tx.type) ? `${tx.type} is not implemented yet` : `unknown transaction type ${tx.type}`);
    }
    const body = handler.parseBody(tx.body);
    if (body instanceof BodyError) return refuse(Code.BAD_BODY, body.log);
    const usedUntil = state.get(nonceKey(tx.from, tx.nonce));
    if (typeof usedUntil === 'number' && usedUntil >= height) {
      return refuse(Code.NONCE_USED, `nonce ${tx.nonce} of ${tx.from} was already used by a transaction that has not expired`);
    }
    const sender = state.get(accountKey(tx.from)) as AccountRecord | undefined;
    if (sender?.status === 'frozen') return refuse(Code.FROZEN, `account ${tx.from} is frozen`);
    if (handler.senders !== 'anyone' && !(sender && sender.roles.some((r) => handler.senders.includes(r)))) {
      return refuse(Code.NOT_PERMITTED, `${tx.type} is sent by ${handler.senders.join(' or ')}`);
    }
    return { ok: true, handler, body, sender };
  }
}

function rejected(txHash: string, code: number, log: string): ReceiptCore {
  return { txHash, status: 'rejected', code, log, events: [] };
}
