/**
 * The per-session message rate limit (SPEC §4.7, MAX_MESSAGES_PER_SEC): a token bucket that refills
 * continuously at `ratePerSecond` and holds at most one second's worth of tokens.
 */
import { performance } from 'node:perf_hooks';

export class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();

  constructor(readonly ratePerSecond: number) {
    this.tokens = ratePerSecond;
  }

  /** Takes one token; false when the bucket is empty (the message is over the limit). */
  take(now = performance.now()): boolean {
    const rate = this.ratePerSecond;
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
