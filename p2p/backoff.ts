// Reconnect delays: exponential, capped, with jitter so that validators that lost each other at
// the same moment do not redial in lockstep. The random source is injected so tests and
// simulations are reproducible.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before dial attempt number `attempt` (0 for the first retry): min(max, base * 2^attempt),
 * scaled into [1/2, 1] of that by `random()` ("equal jitter": never less than half the step).
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const step = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(step / 2 + (step / 2) * r);
}
