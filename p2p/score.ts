// A validator's standing with this node. Faults lower it; it recovers slowly with time, so an
// occasional bad frame is forgiven but a stream of them is not. Below the threshold the peer is
// disconnected and refused for a cool-down, after which it starts again from the initial score.

export interface ScoreOptions {
  initial: number;
  /** at or below this the peer is banned for coolDownMs */
  banThreshold: number;
  coolDownMs: number;
  /** points regained per second, up to `initial` */
  recoveryPerSecond: number;
  /** what each fault costs; unknown reasons (penalize() from above) cost `defaultPenalty` */
  penalties: Record<string, number>;
  defaultPenalty: number;
}

export const DEFAULT_SCORE_OPTIONS: ScoreOptions = {
  initial: 100,
  banThreshold: 0,
  coolDownMs: 60_000,
  recoveryPerSecond: 0.5,
  penalties: {
    oversized_frame: 40,
    malformed_frame: 30,
    unexpected_data: 30,
    read_timeout: 10,
  },
  defaultPenalty: 10,
};

export class PeerScore {
  private value: number;
  private updatedAt: number;
  /** ms timestamp until which the peer is banned; 0 when not banned */
  bannedUntil = 0;

  constructor(
    private readonly opts: ScoreOptions,
    now: number,
  ) {
    this.value = opts.initial;
    this.updatedAt = now;
  }

  current(now: number): number {
    if (now > this.updatedAt) {
      this.value = Math.min(this.opts.initial, this.value + ((now - this.updatedAt) / 1000) * this.opts.recoveryPerSecond);
      this.updatedAt = now;
    }
    return this.value;
  }

  isBanned(now: number): boolean {
    return this.bannedUntil > now;
  }

  penaltyFor(reason: string): number {
    return this.opts.penalties[reason] ?? this.opts.defaultPenalty;
  }

  /** Lowers the score; returns true when this crossed the threshold and the peer is now banned. */
  lower(amount: number, now: number): boolean {
    if (this.isBanned(now)) return false;
    this.value = this.current(now) - amount;
    if (this.value > this.opts.banThreshold) return false;
    this.bannedUntil = now + this.opts.coolDownMs;
    return true;
  }

  /** Ends a ban: the peer starts again from the initial score. */
  unban(now: number): void {
    this.bannedUntil = 0;
    this.value = this.opts.initial;
    this.updatedAt = now;
  }
}
