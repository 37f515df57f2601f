// Latency percentiles and the per-second timeline of a run. Percentiles are nearest-rank
// (the p-th percentile of n sorted samples is the ceil(p/100 × n)-th smallest): every reported
// figure is a latency some transaction really had, and a hand computation gives the same answer.

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** mean, for readers used to Caliper's avg */
  avg: number;
  min: number;
}

/** Nearest-rank percentile of ascending `sorted`; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, rank) - 1]!;
}

/** Summary of latencies in ms, rounded to 0.1 ms; all zero when there are none. */
export function summarize(latencies: ArrayLike<number>): LatencySummary {
  if (latencies.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0, avg: 0, min: 0 };
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    p50: r(percentile(sorted, 50)),
    p95: r(percentile(sorted, 95)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted[sorted.length - 1]!),
    avg: r(sum / sorted.length),
    min: r(sorted[0]!),
  };
}

/** One second of a run, counted from the start of the clock. */
export interface TimelineSecond {
  /** seconds since the clock started: this row covers [second, second + 1) */
  second: number;
  /** transactions sent for the first time in this second */
  sent: number;
  /** transactions whose block arrived in this second (committed with status ok) */
  committed: number;
  /** transactions refused at admission or rejected in a block, in this second */
  rejected: number;
  /** -32002 answers (backpressure) in this second: those transactions were sent again later */
  backpressured: number;
  /** latency of the transactions committed in this second, ms (0 when none) */
  p50: number;
  p99: number;
  /** sent, not yet committed nor rejected, at the end of this second */
  pending: number;
}

/** Counts events into whole seconds since the start; grows as needed. */
export class TimelineBuilder {
  private readonly rows: { sent: number; committed: number; rejected: number; backpressured: number; latencies: number[]; pending: number }[] = [];

  private row(atMs: number) {
    const s = Math.max(0, Math.floor(atMs / 1000));
    while (this.rows.length <= s) this.rows.push({ sent: 0, committed: 0, rejected: 0, backpressured: 0, latencies: [], pending: -1 });
    return this.rows[s]!;
  }

  sent(atMs: number, n = 1): void {
    this.row(atMs).sent += n;
  }
  committed(atMs: number, latencyMs: number): void {
    const r = this.row(atMs);
    r.committed++;
    r.latencies.push(latencyMs);
  }
  rejected(atMs: number, n = 1): void {
    this.row(atMs).rejected += n;
  }
  backpressured(atMs: number, n = 1): void {
    this.row(atMs).backpressured += n;
  }
  /** the pending count observed at `atMs`: the last observation in a second is kept */
  pending(atMs: number, pending: number): void {
    this.row(atMs).pending = pending;
  }

  build(): TimelineSecond[] {
    let lastPending = 0;
    return this.rows.map((r, second) => {
      const sorted = Float64Array.from(r.latencies).sort();
      if (r.pending >= 0) lastPending = r.pending;
      const round = (x: number) => (Number.isNaN(x) ? 0 : Math.round(x * 10) / 10);
      return { second, sent: r.sent, committed: r.committed, rejected: r.rejected, backpressured: r.backpressured, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), pending: lastPending };
    });
  }
}
