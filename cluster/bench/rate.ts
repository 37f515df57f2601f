// Rate control, as Hyperledger Caliper names it: a fixed rate (transactions offered per
// second, whatever the chain does), a fixed backlog (N transactions in flight: sent and not yet
// committed), and maximum (as fast as the nodes admit, with their -32002 backpressure honoured).
// A controller only says how many transactions may go now; the driver batches and sends them,
// and tells it of -32002 answers and of commits (RateController.onBackpressure, onCommitted).

export type RateSpec = { kind: 'rate'; tps: number } | { kind: 'backlog'; inFlight: number } | { kind: 'max' };

export interface SendState {
  /** ms since the clock started */
  elapsedMs: number;
  /** send attempts so far, retries included */
  attempts: number;
  /** sent and neither committed nor refused (in a request, admitted, or waiting to be retried) */
  pending: number;
  /** refused with -32002 and due to be sent again now */
  readyRetries: number;
}

export interface RateController {
  readonly spec: RateSpec;
  /** How many transactions (retries first, then new ones) may be sent now. */
  allowance(s: SendState): number;
  /** a node answered -32002 (pool full) to some of a batch; `pending` as in SendState, at the answer */
  onBackpressure?(pending: number): void;
  /** a block committed `count` of the run's transactions */
  onCommitted?(count: number): void;
}

/**
 * Attempt i goes at i / tps seconds: a retry takes a slot as a new transaction would, so the
 * offered load never exceeds the rate, and a driver that fell behind catches up at once.
 */
export class FixedRate implements RateController {
  readonly spec: RateSpec;
  constructor(readonly tps: number) {
    if (!(tps > 0)) throw new RangeError('a fixed rate is a positive number of transactions per second');
    this.spec = { kind: 'rate', tps };
  }
  allowance(s: SendState): number {
    return Math.max(0, Math.floor((this.tps * s.elapsedMs) / 1000) - s.attempts);
  }
}

/** Keeps `inFlight` transactions sent and not yet committed; a retry does not add to the backlog. */
export class FixedBacklog implements RateController {
  readonly spec: RateSpec;
  constructor(readonly inFlight: number) {
    if (!(inFlight >= 1)) throw new RangeError('a backlog is at least 1 transaction');
    this.spec = { kind: 'backlog', inFlight };
  }
  allowance(s: SendState): number {
    return Math.max(0, this.inFlight - s.pending) + s.readyRetries;
  }
}

/**
 * As fast as the nodes admit. Until a node first answers -32002 there is no limit of its own (the
 * driver's requests in flight per node set the pace); from then on the backlog (transactions
 * sent and not yet committed) is kept under a ceiling found the way TCP finds a window: the
 * first -32002 after a commit cuts it to three quarters of the backlog at that moment, and each
 * commit raises it by a quarter of what committed, so it probes back up to where the nodes push
 * back, about once every few seconds. Without it, each commit freed pool room that the driver's
 * requests in flight overran at once: 1.4-2.0 refused calls per committed transaction on 4
 * validators, and refusing them cost the nodes about 9% more CPU per committed transaction than a
 * backlog that stays under their pools (README, "The load driver: `goodness bench`").
 */
export class MaxRate implements RateController {
  readonly spec: RateSpec = { kind: 'max' };
  /** the backlog's ceiling; infinite until the nodes first push back */
  ceiling = Number.POSITIVE_INFINITY;
  /** cut once per episode: answers to requests sent before the cut say nothing new */
  private cutSinceCommit = false;

  constructor(
    private readonly decrease = MAX_RATE_DECREASE,
    private readonly increase = MAX_RATE_INCREASE,
    private readonly floor = MAX_RATE_MIN_CEILING,
  ) {}

  allowance(s: SendState): number {
    if (this.ceiling === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    return Math.max(0, Math.floor(this.ceiling) - s.pending) + s.readyRetries;
  }

  onBackpressure(pending: number): void {
    if (this.cutSinceCommit) return;
    this.cutSinceCommit = true;
    this.ceiling = Math.max(this.floor, Math.floor(Math.min(this.ceiling, pending) * this.decrease));
  }

  onCommitted(count: number): void {
    this.cutSinceCommit = false;
    if (this.ceiling !== Number.POSITIVE_INFINITY) this.ceiling += count * this.increase;
  }
}

/** MaxRate: the share of the backlog kept when the nodes push back, */
export const MAX_RATE_DECREASE = 0.75;
/** ... the share of each commit the ceiling then grows by, */
export const MAX_RATE_INCREASE = 0.25;
/** ... and the lowest ceiling (a slow chain still gets a batch at a time). */
export const MAX_RATE_MIN_CEILING = 500;

export function controllerFor(spec: RateSpec): RateController {
  if (spec.kind === 'rate') return new FixedRate(spec.tps);
  if (spec.kind === 'backlog') return new FixedBacklog(spec.inFlight);
  return new MaxRate();
}

export function describeRate(spec: RateSpec): string {
  if (spec.kind === 'rate') return `fixed rate ${spec.tps} tx/s`;
  if (spec.kind === 'backlog') return `fixed backlog of ${spec.inFlight} in flight`;
  return 'maximum rate (backpressure-limited)';
}

/**
 * A rate as the benchmark scripts take it from a flag or the environment: "max", a number of
 * transactions per second, or "backlog:N". `source` names where the text came from, for the error.
 */
export function parseRateSpec(text: string, source = 'the rate'): RateSpec {
  const t = text.trim().toLowerCase();
  const backlog = /^backlog:(\d+)$/.exec(t);
  const tps = Number(t);
  if (t === 'max') return { kind: 'max' };
  if (backlog && Number(backlog[1]) > 0) return { kind: 'backlog', inFlight: Number(backlog[1]) };
  if (t !== '' && Number.isFinite(tps) && tps > 0) return { kind: 'rate', tps };
  throw new Error(`${source} is max, a number of transactions per second, or backlog:N; not ${JSON.stringify(text)}`);
}
