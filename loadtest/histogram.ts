/**
 * A log-linear latency histogram in microseconds (HDR-style, fixed memory, no allocation per value).
 *
 *   value µs:  0 ……… 127 | 128 … 255 | 256 … 511 | …          (up to 2^31 µs ≈ 35 min)
 *   buckets:   1 µs each  | 2 µs each | 4 µs each | …          64 buckets per power of two
 *
 * Every bucket is at most 1/64 of its value wide, so a percentile is within 1.6 % of the true one.
 */

const LINEAR = 128;
const SUB = 64;
const BUCKETS = LINEAR + (31 - 7) * SUB;

export interface Percentiles {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  mean_ms: number;
  count: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sumUs = 0;
  private maxUs = 0;

  /** Records one value in milliseconds. */
  record(ms: number): void {
    const us = ms <= 0 ? 0 : Math.min(0x7fffffff, Math.round(ms * 1000));
    let index: number;
    if (us < LINEAR) {
      index = us;
    } else {
      const exponent = 31 - Math.clz32(us); // 7 and up
      const shift = exponent - 6;
      index = LINEAR + (exponent - 7) * SUB + ((us >>> shift) - SUB);
    }
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The midpoint of a bucket, in µs. */
  private static valueOf(index: number): number {
    if (index < LINEAR) return index;
    const exponent = Math.floor((index - LINEAR) / SUB) + 7;
    const shift = exponent - 6;
    const sub = ((index - LINEAR) % SUB) + SUB;
    return sub * 2 ** shift + 2 ** shift / 2;
  }

  /** The value at percentile `p` (0..100), in milliseconds; 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(Histogram.valueOf(i), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] = (this.counts[i] ?? 0) + (other.counts[i] ?? 0);
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
  }

  summary(): Percentiles {
    const r = (ms: number) => Math.round(ms * 1000) / 1000;
    return {
      p50_ms: r(this.percentile(50)),
      p95_ms: r(this.percentile(95)),
      p99_ms: r(this.percentile(99)),
      p999_ms: r(this.percentile(99.9)),
      max_ms: r(this.maxUs / 1000),
      mean_ms: r(this.count === 0 ? 0 : this.sumUs / this.count / 1000),
      count: this.count,
    };
  }
}
