// The key-value machine: transactions are plain `key=value` UTF-8 bytes with no signature (as
// CometBFT's kvstore), so that benchmarks measure the consensus engine and nothing else.
// Committed state lives in memory (loaded at open); each executed block sits in a pending layer
// until the engine says its writes are durable, so the next block can execute before the
// previous one is committed (pipelining).
import { isUtf8 } from 'node:buffer';
import type { Genesis, ReceiptCore } from '../consensus/chain/types.ts';
import { fromUtf8, utf8 } from '../consensus/crypto/encoding.ts';
import { genesisAppHash, nextAppHash, sortChanges, type CanonicalChange } from './app-hash.ts';
import { Code } from './codes.ts';
import {
  QueryError,
  type BlockContext,
  type BlockTx,
  type CheckContext,
  type CheckResult,
  type ExecutionResult,
  type MachineInfo,
  type QueryAnswer,
  type StateMachine,
  type StateReader,
  type StateWrite,
} from './machine.ts';
import { txHash } from './tx.ts';

export const KV_MAX_KEY_BYTES = 512;
export const KV_MAX_TX_BYTES = 64 * 1024;
const EQUALS = 0x3d;
/** Machine-private sub-prefix of the stored pairs, and the key of the {height, appHash} record. */
const PAIR_PREFIX = 'k/';
const META_KEY = 'm';

export interface KvPut {
  key: string;
  value: string;
}

interface PendingBlock {
  height: number;
  appHash: string;
  changes: Map<string, string>;
}

/** Parses `key=value`; a string says why the bytes are not a put. */
export function parseKvTx(bytes: Uint8Array): KvPut | string {
  if (bytes.length > KV_MAX_TX_BYTES) return `a kv transaction is at most ${KV_MAX_TX_BYTES} bytes`;
  const eq = bytes.indexOf(EQUALS);
  if (eq < 0 || bytes.lastIndexOf(EQUALS) !== eq) return 'a kv transaction is key=value with exactly one "="';
  if (eq === 0) return 'the key is empty';
  if (eq > KV_MAX_KEY_BYTES) return `a key is at most ${KV_MAX_KEY_BYTES} bytes`;
  if (!isUtf8(bytes)) return 'a kv transaction is UTF-8 text';
  // '=' is one byte that never occurs inside a multi-byte sequence, so both halves are UTF-8 too.
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { key: buf.toString('utf8', 0, eq), value: buf.toString('utf8', eq + 1) };
}

export class KvMachine implements StateMachine {
  readonly name = 'kv';
  private readonly committed = new Map<string, string>();
  private committedHeight = 0;
  private committedAppHash = '';
  private pending: PendingBlock[] = [];

  async open(state: StateReader, genesis: Genesis): Promise<MachineInfo> {
    this.committed.clear();
    this.pending = [];
    const meta = await state.get(utf8(META_KEY));
    if (meta) {
      const { height, appHash } = JSON.parse(fromUtf8(meta)) as MachineInfo;
      this.committedHeight = height;
      this.committedAppHash = appHash;
    } else {
      this.committedHeight = 0;
      this.committedAppHash = genesisAppHash(genesis.app);
    }
    const prefixLength = utf8(PAIR_PREFIX).length;
    for await (const [key, value] of state.entries(utf8(PAIR_PREFIX))) {
      this.committed.set(fromUtf8(key.subarray(prefixLength)), fromUtf8(value));
    }
    return this.info();
  }

  info(): MachineInfo {
    return { height: this.committedHeight, appHash: this.committedAppHash };
  }

  /** Needs no state: a put is valid at any height. */
  checkTx(bytes: Uint8Array, ctx?: CheckContext): CheckResult {
    const put = parseKvTx(bytes);
    if (typeof put === 'string') return { ok: false, code: Code.MALFORMED, log: put };
    return { ok: true, hash: ctx?.hash ?? txHash(bytes), checked: put };
  }

  executeBlock(ctx: BlockContext, txs: BlockTx[]): ExecutionResult & { writes: StateWrite[] } {
    const previousAppHash = this.prepareHeight(ctx.height);
    const changes = new Map<string, string>();
    const receipts: ReceiptCore[] = new Array(txs.length);
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i]!;
      const put = (tx.checked as KvPut | undefined) ?? parseKvTx(tx.bytes);
      if (typeof put === 'string') {
        receipts[i] = { txHash: tx.hash, status: 'rejected', code: Code.MALFORMED, log: put, events: [] };
        continue;
      }
      changes.set(put.key, put.value);
      receipts[i] = { txHash: tx.hash, status: 'ok', code: Code.OK, log: '', events: [{ type: 'kv.put', attributes: { key: put.key } }] };
    }
    const sorted = sortChanges([...changes]);
    const canonical = new Array<CanonicalChange>(sorted.length);
    const writes: StateWrite[] = new Array(sorted.length + 1);
    for (let i = 0; i < sorted.length; i++) {
      const [key, value] = sorted[i]!;
      canonical[i] = [key, JSON.stringify(value)];
      writes[i] = [Buffer.from(PAIR_PREFIX + key), Buffer.from(value)];
    }
    const appHash = nextAppHash(previousAppHash, canonical);
    writes[sorted.length] = [utf8(META_KEY), utf8(JSON.stringify({ height: ctx.height, appHash }))];
    this.pending.push({ height: ctx.height, appHash, changes });
    return { receipts, appHash, validatorUpdates: [], writes };
  }

  commit(height: number): void {
    const block = this.pending[0];
    if (!block || block.height !== height) {
      throw new Error(`kv: commit(${height}) but the oldest executed block is ${block ? block.height : 'none'}`);
    }
    this.pending.shift();
    for (const [key, value] of block.changes) this.committed.set(key, value);
    this.committedHeight = height;
    this.committedAppHash = block.appHash;
  }

  /** Everything is public: the caller does not matter. */
  query(path: string, _caller?: string | null): QueryAnswer {
    if (!path.startsWith('kv/')) throw new QueryError(-32602, 'the kv machine answers kv/<key>');
    const key = path.slice(3);
    const value = this.committed.get(key);
    if (value === undefined) throw new QueryError(-32004, `no value for key ${JSON.stringify(key)}`);
    return { height: this.committedHeight, value };
  }

  /**
   * Drops executed-but-uncommitted blocks at `height` or above (a re-execution after a view
   * change replaces them) and returns the app hash the block at `height` builds on.
   */
  private prepareHeight(height: number): string {
    this.pending = this.pending.filter((b) => b.height < height);
    const tip = this.pending.at(-1);
    const tipHeight = tip ? tip.height : this.committedHeight;
    if (height !== tipHeight + 1) throw new Error(`kv: cannot execute block ${height} on top of ${tipHeight}`);
    return tip ? tip.appHash : this.committedAppHash;
  }
}
