/**
 * Rate limits of the realtime plane: the per-session message rate (docs/protocol.md §6, MAX_MESSAGES_PER_SEC)
 * and the upgrades per client address (RATE_LIMIT_PER_MIN, both listeners together), as token buckets that
 * refill continuously.
 */
import { performance } from 'node:perf_hooks';

export class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();

  /** Refills at `ratePerSecond`; holds at most `capacity` tokens (default one second's worth), full at first. */
  constructor(
    readonly ratePerSecond: number,
    private readonly capacity = ratePerSecond,
  ) {
    this.tokens = capacity;
  }

  /** Takes one token; false when the bucket is empty (the message is over the limit). */
  take(now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket has refilled completely: it no longer remembers anything. */
  isFull(now = performance.now()): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  private refill(now: number): void {
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.refilledAt) * this.ratePerSecond) / 1000,
    );
    this.refilledAt = now;
  }
}

/**
 * Upgrades per minute from one client address, on either listener: `perMinute` at most in a burst, refilled
 * evenly over a minute. Remembers at most `maxAddresses` addresses; beyond that, those that are back to a
 * full bucket are forgotten first, then the oldest.
 */
export class UpgradeRate {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses = 10_000,
  ) {}

  /** Counts an upgrade from `ip` (canonical); false when it is over the limit. */
  take(ip: string, now = performance.now()): boolean {
    let bucket = this.buckets.get(ip);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxAddresses) this.prune(now);
      bucket = new TokenBucket(this.perMinute / 60, this.perMinute);
      this.buckets.set(ip, bucket);
    }
    return bucket.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [ip, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(ip);
    for (const ip of this.buckets.keys()) {
      if (this.buckets.size < this.maxAddresses) break;
      this.buckets.delete(ip);
    }
  }
}
