// The simulated clock: a priority queue of callbacks ordered by (time, insertion order), so
// that events at one instant run in a fixed order and a seed replays exactly.

interface Entry {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: Entry[] = [];
  private seq = 0;
  now = 0;

  schedule(at: number, run: () => void): void {
    const e = { at: Math.max(at, this.now), seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  after(delayMs: number, run: () => void): void {
    this.schedule(this.now + delayMs, run);
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs events up to and including time `until`; returns how many ran. */
  runUntil(until: number, maxEvents = Infinity): number {
    let count = 0;
    while (this.heap.length > 0 && this.heap[0]!.at <= until && count < maxEvents) {
      const e = this.pop();
      this.now = e.at;
      e.run();
      count++;
    }
    if (count < maxEvents) this.now = Math.max(this.now, until);
    return count;
  }

  private pop(): Entry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
