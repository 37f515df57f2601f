// A small world for tests, benchmarks and the demo's dry runs: keys for every role, a ledger
// opened on a genesis that names them, and helpers that build, admit and execute blocks the
// way a node does (checkTx, then executeBlock with what admission learned, then commit).
import { DEFAULT_CONSENSUS_PARAMS, type Genesis, type ReceiptCore, type ValidatorRegistration } from '../../consensus/chain/types.ts';
import { Ed25519Signer, ed25519Keygen } from '../../consensus/crypto/ed25519.ts';
import type { BlockTx, ExecutionResult, StateReader } from '../machine.ts';
import { buildTx } from '../tx.ts';
import { checkInvariants } from './invariants.ts';
import { GoodnessLedger } from './ledger.ts';
import { DAY_MS } from './records.ts';
import type { Role } from './roles.ts';

export const TEST_CHAIN = 'goodness-test';
/** 2023-11-14T22:13:20Z: block times start here and move on by BLOCK_MS per block. */
export const START_TIME = 1_700_000_000_000;
export const BLOCK_MS = 1000;

export const emptyReader: StateReader = {
  async get() {
    return undefined;
  },
  async *entries() {},
};

export function newSigner(): Ed25519Signer {
  return new Ed25519Signer(ed25519Keygen().secretKey);
}

/** The cast of the low-carbon travel scenario, one key each. */
export interface Cast {
  governors: Ed25519Signer[];
  bureau: Ed25519Signer; // issuer
  metro: Ed25519Signer; // distributor
  bikes: Ed25519Signer; // distributor
  sponsor: Ed25519Signer;
  exchange: Ed25519Signer;
  bank: Ed25519Signer; // clearing
  regulator: Ed25519Signer; // supervisor
}

export function newCast(governors = 3): Cast {
  return {
    governors: Array.from({ length: governors }, newSigner),
    bureau: newSigner(),
    metro: newSigner(),
    bikes: newSigner(),
    sponsor: newSigner(),
    exchange: newSigner(),
    bank: newSigner(),
    regulator: newSigner(),
  };
}

export const CAST_ROLES: [keyof Omit<Cast, 'governors'>, string, Role][] = [
  ['bureau', 'Environment Bureau', 'issuer'],
  ['metro', 'Metro Operator', 'distributor'],
  ['bikes', 'Bike Share', 'distributor'],
  ['sponsor', 'Green Sponsor Co', 'sponsor'],
  ['exchange', 'Rewards Exchange', 'exchange'],
  ['bank', 'City Bank', 'clearing'],
  ['regulator', 'Regulator', 'supervisor'],
];

/** A genesis app section with the governors and, unless `orgs` is false, every organisation of the cast. */
export function castApp(cast: Cast, orgs = true): { governors: string[]; orgs: { org: string; name: string; roles: Role[] }[] } {
  return {
    governors: cast.governors.map((g) => g.publicKey),
    orgs: orgs ? CAST_ROLES.map(([k, name, role]) => ({ org: cast[k].publicKey, name, roles: [role] })) : [],
  };
}

export function genesisOf(app: unknown, validators: ValidatorRegistration[] = []): Genesis {
  return { chain: TEST_CHAIN, genesisTime: START_TIME, validators, consensus: DEFAULT_CONSENSUS_PARAMS, app };
}

export interface TxSpec {
  from: Ed25519Signer;
  type: string;
  body: Record<string, unknown>;
  nonce?: string;
  expires?: number;
}

let nonceCounter = 0;

export function signTx(spec: TxSpec, height: number): BlockTx {
  const built = buildTx(spec.from, { chain: TEST_CHAIN, type: spec.type, body: spec.body, nonce: spec.nonce ?? `t${++nonceCounter}`, expires: spec.expires ?? height + 100 });
  return { hash: built.hash, bytes: built.bytes };
}

export interface BlockRun {
  result: ExecutionResult;
  /** the block as executed: admitted transactions carry `checked` */
  txs: BlockTx[];
  context: { height: number; timestamp: number; proposer: number };
  /** per transaction: the admission refusal code, or 'ok' */
  admission: (number | 'ok')[];
}

/**
 * A ledger driven block by block, as a node drives it. Each transaction goes through checkTx
 * first; what admission refuses still goes into the block (as a Byzantine proposer might put
 * it), without `checked`, so execution must refuse it alike.
 */
export class World {
  height = 0;
  time = START_TIME;
  checkInvariants = true;
  private batches = new Map<string, string>();

  private constructor(readonly ledger: GoodnessLedger) {}

  static async open(app: unknown, validators: ValidatorRegistration[] = [], reader: StateReader = emptyReader): Promise<World> {
    const ledger = new GoodnessLedger();
    const info = await ledger.open(reader, genesisOf(app, validators));
    const w = new World(ledger);
    w.height = info.height;
    return w;
  }

  /** Moves block time on (the next block is `ms` after the last one, not BLOCK_MS). */
  advance(ms: number): void {
    this.time += ms - BLOCK_MS;
  }

  advanceDays(days: number): void {
    this.advance(days * DAY_MS);
  }

  block(specs: TxSpec[]): BlockRun {
    const h = this.height + 1;
    const admission: (number | 'ok')[] = [];
    const txs = specs.map((s) => {
      const t = signTx(s, h);
      const c = this.ledger.checkTx(t.bytes, { height: h });
      admission.push(c.ok ? 'ok' : c.code);
      return c.ok ? { ...t, checked: c.checked } : t;
    });
    this.time += BLOCK_MS;
    const context = { height: h, timestamp: this.time, proposer: 0 };
    const result = this.ledger.executeBlock(context, txs);
    this.ledger.commit(h);
    this.height = h;
    if (this.checkInvariants) this.assertInvariants();
    return { result, admission, txs, context };
  }

  /** One transaction in its own block; its receipt. */
  run(spec: TxSpec): ReceiptCore {
    return this.block([spec]).result.receipts[0]!;
  }

  assertInvariants(): void {
    const report = checkInvariants(this.ledger.committedEntries(), this.batches);
    this.batches = report.batches;
    if (report.violations.length > 0) throw new Error(`invariants broken after block ${this.height}:\n  ${report.violations.join('\n  ')}`);
  }

  query(path: string, caller: Ed25519Signer | null = null): unknown {
    return this.ledger.query(path, caller ? caller.publicKey : null).value;
  }
}

/** A fresh evidence hash: 0x + 64 hex. */
export function evidence(n: number | string): string {
  return '0x' + Buffer.from(String(n).padStart(32, '0')).toString('hex').slice(0, 64).padStart(64, '0');
}
