/**
 * Per-session timing: when each frame arrived (for end-to-end latency), and the mapping of the engine's
 * native counters and percentiles onto the wire shape of `stats` (docs/protocol.md §5) and `/v1/sessions` (docs/rest.md).
 */
import { performance } from 'node:perf_hooks';
import type { SessionStats } from '../native.js';
import type { LatencySummary } from './protocol.js';

/** Room a session's receive times start with: frames in flight at once (1.28 s of 20 ms frames). */
const FIRST_RING = 64;
/** Most frames in flight whose receive times are kept (8 MB); beyond, the oldest times are overwritten. */
export const MAX_RING = 1 << 20;

/**
 * Receive times of the frames in flight (received, not yet answered), indexed by frame number modulo
 * the ring size, which doubles when a frame arrives with a whole ring's worth still unanswered:
 *
 *   frame:  … 62 63 | 64 65 …
 *   slot:   … 62 63 |  0  1 …   (a slot is reused once its frame has been answered)
 *
 * Answers come in frame order (docs/protocol.md), so answering frame n settles every frame before it.
 * A session starts with 512 bytes here instead of a fixed 64 KiB ring: 500 sessions starting together
 * allocated 32 MB the garbage collector counted against its heap, and ~30 µs each on the JS thread.
 */
export class ReceiveTimes {
  private at = new Float64Array(FIRST_RING);
  /** Frames below this have been answered (or dropped). */
  private settled = 0;

  /** Remembers that `frame` arrived now. */
  mark(frame: number, now = performance.now()): void {
    if (frame - this.settled >= this.at.length && this.at.length < MAX_RING) this.grow(frame);
    this.at[frame % this.at.length] = now;
  }

  /** Milliseconds since `frame` arrived; the frames before it are settled. */
  elapsedMs(frame: number, now = performance.now()): number {
    if (frame >= this.settled) this.settled = frame + 1;
    return now - (this.at[frame % this.at.length] ?? 0);
  }

  /** Room for every frame in flight up to `frame`, each kept at its slot in the larger ring. */
  private grow(frame: number): void {
    let size = this.at.length * 2;
    while (frame - this.settled >= size && size < MAX_RING) size *= 2;
    const next = new Float64Array(size);
    for (let f = Math.max(this.settled, frame - this.at.length); f < frame; f++) {
      next[f % size] = this.at[f % this.at.length] ?? 0;
    }
    this.at = next;
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

/** What `stats` (docs/protocol.md §5) and `/v1/sessions` (docs/rest.md) both report. */
export function counters(s: SessionStats | undefined) {
  return {
    frames_in: s?.framesIn ?? 0,
    frames_out: s?.framesOut ?? 0,
    frames_dropped: s?.framesDropped ?? 0,
    frame_errors: s?.frameErrors ?? 0,
    events: s?.events ?? 0,
    // NaN/±Inf input samples the engine replaced by 0.
    non_finite_samples: s?.nonFiniteSamples ?? 0,
    latency: summary(s?.endToEnd),
    engine_latency: summary(s?.engine),
  };
}
