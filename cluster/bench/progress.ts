// Live progress while a run goes: one line rewritten in place on a terminal, and plain lines
// every few seconds when stdout is a file or a pipe (CI logs), so that both stay readable.
import type { ProgressSnapshot } from './driver.ts';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const secs = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;

export function progressLine(label: string, p: ProgressSnapshot): string {
  const remaining = p.phase === 'sending' ? `${secs(Math.max(0, p.durationMs - p.elapsedMs))} left` : p.phase === 'draining' ? 'draining' : 'done';
  return `${label} ${secs(p.elapsedMs)}/${secs(p.durationMs)} ${remaining} | sent ${fmt(p.sent)} committed ${fmt(p.committed)} rejected ${fmt(p.rejected)} pending ${fmt(p.pending)} | ${fmt(p.currentTps)} tx/s now, ${fmt(p.averageTps)} avg`;
}

export interface ProgressOptions {
  /** where to write (default process.stdout) */
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** seconds between plain lines when out is not a terminal (default 5) */
  plainEverySec?: number;
}

export class ProgressPrinter {
  private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly tty: boolean;
  private readonly plainEveryMs: number;
  private lastPlain = -Infinity;
  private drawn = false;

  constructor(
    private readonly label: string,
    opts: ProgressOptions = {},
  ) {
    this.out = opts.out ?? process.stdout;
    this.tty = this.out.isTTY === true;
    this.plainEveryMs = (opts.plainEverySec ?? 5) * 1000;
  }

  update = (p: ProgressSnapshot): void => {
    const line = progressLine(this.label, p);
    if (this.tty) {
      const width = this.out.columns ?? 120;
      // \r and erase-line: the line is redrawn in place; cut to the terminal's width so it never wraps.
      this.out.write(`\r\x1b[2K${line.length > width - 1 ? line.slice(0, width - 1) : line}`);
      this.drawn = true;
      if (p.phase === 'done') this.finish();
      return;
    }
    if (p.phase === 'done' || p.elapsedMs - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = p.elapsedMs;
      this.out.write(line + '\n');
    }
  };

  /** Ends the refreshing line so that what follows starts on a line of its own. */
  finish(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
