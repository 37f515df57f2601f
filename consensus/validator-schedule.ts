// Which validators sign which height. The state machine hands validator changes to the engine
// (the goodness ledger's governance: validator.add / validator.remove); a change made by block h
// applies from height h + window + 1, a height every node computes alike from committed blocks.
//
// Why that height: the PBFT core keeps up to `window` heights in flight above its committed
// tip, so when it votes on height x it has committed at least x − window. Block x's header
// names the set that signs x + 1 (nextValidatorsHash), which then depends only on blocks up to
// x − window: committed ones, whatever branch a view change picks. Pipelining is then never
// asked to guess a set, and the core drains its pipeline at the change (core.ts, "Validator
// sets"). CometBFT applies changes from h + 2 for the same reason with a pipeline of one.
import { from0x } from './crypto/encoding.ts';
import type { Validator, ValidatorRegistration } from './chain/types.ts';
import type { ValidatorUpdate } from '../state/machine.ts';

/** From `fromHeight` on (until the next entry), `validators` sign each block. */
export interface ScheduleEntry {
  fromHeight: number;
  validators: ValidatorRegistration[];
}

/** What is persisted (in the block's own commit batch): every set the chain has had, and the committed height it reflects. */
export interface ScheduleRecord {
  version: 1;
  committedHeight: number;
  entries: ScheduleEntry[];
}

export class ValidatorSchedule {
  private entries: ScheduleEntry[];
  private committed: number;
  /** every validator ever registered, by index (indexes are never reused): votes of a departed validator still verify for heights it signed */
  private readonly registrations = new Map<number, ValidatorRegistration>();
  private readonly keyCache = new Map<number, Uint8Array>();

  constructor(
    genesisValidators: ValidatorRegistration[],
    /** heights in flight at once (genesis consensus.window); changes apply `delay = window + 1` heights later */
    readonly window: number,
    record?: ScheduleRecord | null,
  ) {
    if (!Number.isInteger(window) || window < 1) throw new Error('the pipeline window is a positive integer');
    this.entries = record ? record.entries.map((e) => ({ fromHeight: e.fromHeight, validators: e.validators.map((v) => ({ ...v })) })) : [{ fromHeight: 1, validators: genesisValidators.map((v) => ({ ...v })) }];
    this.committed = record?.committedHeight ?? 0;
    for (const e of this.entries) for (const v of e.validators) this.registrations.set(v.index, v);
  }

  get delay(): number {
    return this.window + 1;
  }

  /** The last height whose set is final: later blocks may still change it. */
  get knownThrough(): number {
    return this.committed + this.delay;
  }

  /** The set that signs block `height` (sorted by index), or null when not known yet. Block 0 has the genesis set. */
  at(height: number): Validator[] | null {
    if (height > this.knownThrough) return null;
    let set = this.entries[0]!.validators;
    for (const e of this.entries) {
      if (e.fromHeight > height) break;
      set = e.validators;
    }
    return set;
  }

  /** Like `at`, for a height the caller knows is final (within the window of a committed tip). */
  require(height: number): Validator[] {
    const set = this.at(height);
    if (!set) throw new Error(`the validator set of height ${height} is not known yet (known through ${this.knownThrough})`);
    return set;
  }

  /** Every validator that signs some height from `height` to knownThrough: the peers consensus must reach. */
  upcoming(height: number): ValidatorRegistration[] {
    const out = new Map<number, ValidatorRegistration>();
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const until = this.entries[i + 1]?.fromHeight ?? Infinity;
      if (until <= height) continue;
      for (const v of e.validators) out.set(v.index, v);
    }
    return [...out.values()].sort((a, b) => a.index - b.index);
  }

  /** The BLS key of validator `index`, current or past; undefined for an index never registered. */
  blsKey(index: number): Uint8Array | undefined {
    let key = this.keyCache.get(index);
    if (!key) {
      const reg = this.registrations.get(index);
      key = reg ? (from0x(reg.blsPublicKey, 48) ?? undefined) : undefined;
      if (key) this.keyCache.set(index, key);
    }
    return key;
  }

  /**
   * Block `height` committed with these updates. Returns the record to persist in the block's
   * batch when the schedule changed (null otherwise: the stored record's committedHeight may
   * lag, since knownThrough of an unchanged schedule needs no write).
   */
  commit(height: number, updates: readonly ValidatorUpdate[]): ScheduleRecord | null {
    if (height !== this.committed + 1) throw new Error(`validator schedule: block ${height} committed after ${this.committed}`);
    this.committed = height;
    if (updates.length === 0) return null;
    const last = this.entries[this.entries.length - 1]!;
    const next = new Map(last.validators.map((v) => [v.index, v]));
    for (const u of updates) {
      if (u.type === 'add') {
        next.set(u.validator.index, { index: u.validator.index, peerId: u.validator.peerId, blsPublicKey: u.validator.blsPublicKey, pop: u.validator.pop });
        this.registrations.set(u.validator.index, u.validator);
      } else {
        next.delete(u.index);
      }
    }
    // The ledger refuses to remove the last validator; an empty set would stop the chain for good.
    if (next.size === 0) throw new Error(`block ${height} would leave no validators`);
    const fromHeight = height + this.delay;
    this.entries.push({ fromHeight, validators: [...next.values()].sort((a, b) => a.index - b.index) });
    return this.record();
  }

  record(): ScheduleRecord {
    return { version: 1, committedHeight: this.committed, entries: this.entries };
  }

  /** After a restart: the store's tip, which may be above the record's height when no change happened since. */
  resumeAt(committedHeight: number): void {
    if (committedHeight < this.committed) throw new Error(`validator schedule was recorded at ${this.committed}, above the chain's ${committedHeight}`);
    this.committed = committedHeight;
  }
}
