/**
 * One periodic sweep over the live sessions: a client that stops reading its answers is closed
 * (SPEC §4.7, 1008) before its unsent output grows without bound.
 */
import { CloseCode } from './protocol.js';
import type { StreamSession } from './session.js';

/** A client whose unsent output stays above this much audio is stalled. */
const STALL_SECONDS_OF_AUDIO = 2;
/** Floor of the stall limit in bytes, for low-rate outputs. */
const STALL_MIN_BYTES = 256 * 1024;
/** How long a client may stay stalled before it is closed (SPEC §4.7: "within 10 s"). */
export const STALL_TIMEOUT_MS = 5_000;
/** How often the sweep runs. */
const SWEEP_MS = 1_000;

export class Watchdog {
  private readonly timer: NodeJS.Timeout;
  /** When each session's send buffer first went over the stall limit. */
  private readonly stalledSince = new WeakMap<StreamSession, number>();

  constructor(private readonly sessions: () => Iterable<StreamSession>) {
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  /** Checks every session once. */
  sweep(now = Date.now()): void {
    for (const s of this.sessions()) {
      const limit = Math.max(STALL_MIN_BYTES, s.outputBytesPerSecond() * STALL_SECONDS_OF_AUDIO);
      const since = this.stalledSince.get(s);
      if (s.bufferedAmount() <= limit) {
        this.stalledSince.delete(s);
      } else if (since === undefined) {
        this.stalledSince.set(s, now);
      } else if (now - since >= STALL_TIMEOUT_MS) {
        s.kill(CloseCode.PolicyViolation, 'client is not reading');
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
