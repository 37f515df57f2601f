// The simulated network: every message travels as bytes, and may be dropped, duplicated,
// delayed (hence reordered) or cut off by a partition, all drawn from the run's seeded PRNG.
import type { Prng } from './prng.ts';
import type { EventQueue } from './queue.ts';

export interface LinkFaults {
  drop: number;
  duplicate: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export class SimNetwork {
  private group: Map<number, number> | null = null;
  readonly stats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, partitioned: 0, bytes: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    public faults: LinkFaults,
    private readonly deliver: (to: number, from: number, bytes: Uint8Array) => void,
  ) {}

  /** Splits the nodes into groups that cannot reach each other; null heals. */
  partition(groups: number[][] | null): void {
    this.group = null;
    if (!groups) return;
    this.group = new Map();
    groups.forEach((g, i) => g.forEach((n) => this.group!.set(n, i)));
  }

  private cut(a: number, b: number): boolean {
    return this.group !== null && this.group.get(a) !== this.group.get(b);
  }

  send(from: number, to: number, bytes: Uint8Array): void {
    this.stats.sent++;
    this.stats.bytes += bytes.length;
    if (this.cut(from, to)) {
      this.stats.partitioned++;
      return;
    }
    if (this.prng.chance(this.faults.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.prng.chance(this.faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = this.prng.range(this.faults.minDelayMs, this.faults.maxDelayMs);
      this.queue.after(delay, () => {
        // A partition that starts while a message is in flight cuts it too.
        if (this.cut(from, to)) {
          this.stats.partitioned++;
          return;
        }
        this.stats.delivered++;
        this.deliver(to, from, bytes);
      });
    }
  }
}
