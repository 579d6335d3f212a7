/**
 * Per-session timing: when each frame arrived (for end-to-end latency), and the mapping of the engine's
 * native counters and percentiles onto the wire shape of `stats` (SPEC §4.6) and `/v1/sessions` (SPEC §3).
 */
import { performance } from 'node:perf_hooks';
import type { SessionStats } from '../native.js';
import type { LatencySummary } from './protocol.js';

/** Frames whose receive time is remembered for latency: far more than any queue holds. */
const TIMING_RING = 8192;

/**
 * Receive times of the last TIMING_RING frames, indexed by frame number modulo the ring size:
 *
 *   frame:  … 8190 8191 | 8192 8193 …
 *   slot:   … 8190 8191 |    0    1 …   (a slot is overwritten TIMING_RING frames later)
 */
export class ReceiveTimes {
  private readonly at = new Float64Array(TIMING_RING);

  /** Remembers that `frame` arrived now. */
  mark(frame: number, now = performance.now()): void {
    this.at[frame % TIMING_RING] = now;
  }

  /** Milliseconds since `frame` arrived. */
  elapsedMs(frame: number, now = performance.now()): number {
    return now - (this.at[frame % TIMING_RING] ?? 0);
  }
}

/** Native microsecond percentiles as milliseconds, rounded to the nanosecond. */
export function summary(p: SessionStats['process'] | undefined): LatencySummary {
  const ms = (us: number | undefined) => Math.round((us ?? 0) * 1000) / 1e6;
  return {
    p50_ms: ms(p?.p50Us),
    p95_ms: ms(p?.p95Us),
    p99_ms: ms(p?.p99Us),
    max_ms: ms(p?.maxUs),
    count: p?.count ?? 0,
  };
}

/** What `stats` (SPEC §4.6) and `/v1/sessions` (SPEC §3) both report. */
export function counters(s: SessionStats | undefined) {
  return {
    frames_in: s?.framesIn ?? 0,
    frames_out: s?.framesOut ?? 0,
    frames_dropped: s?.framesDropped ?? 0,
    frame_errors: s?.frameErrors ?? 0,
    events: s?.events ?? 0,
    latency: summary(s?.endToEnd),
    engine_latency: summary(s?.engine),
  };
}
