/**
 * One periodic sweep over the live sessions, so that no client can hold a slot or memory forever:
 * - START_TIMEOUT_MS: an upgraded socket with no valid `start` in time is closed 1008;
 * - IDLE_TIMEOUT_MS: a session whose client sends nothing for that long is flushed and closed 1001 "idle";
 * - HEARTBEAT_MS: every socket is pinged; one that has not answered the previous ping is closed 1001;
 * - a client that stops reading its answers is closed 1008 (docs/protocol.md §6) before its unsent output
 *   grows without bound;
 * - WORKER_STALL_MS: sessions on a native worker that stopped beating (stuck in one item) are closed 1011.
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.js';
import { CloseCode } from './protocol.js';
import type { StreamSession } from './session.js';

/** A client whose unsent output stays above this much audio is stalled. */
const STALL_SECONDS_OF_AUDIO = 2;
/** Floor of the stall limit in bytes, for low-rate outputs. */
const STALL_MIN_BYTES = 256 * 1024;
/** How long a client may stay stalled before it is closed (docs/limits.md: 5 s). */
export const STALL_TIMEOUT_MS = 5_000;

export type WatchdogLimits = Pick<Config, 'startTimeoutMs' | 'idleTimeoutMs' | 'heartbeatMs'>;

/** Sweep often enough that every limit is enforced within a quarter of itself (at most once a second). */
function sweepInterval(limits: WatchdogLimits): number {
  const set = [limits.startTimeoutMs, limits.idleTimeoutMs, limits.heartbeatMs].filter((ms) => ms > 0);
  return Math.max(10, Math.min(1000, ...set.map((ms) => ms / 4)));
}

export class Watchdog {
  private readonly timer: NodeJS.Timeout;
  /** When each session's send buffer first went over the stall limit. */
  private readonly stalledSince = new WeakMap<StreamSession, number>();

  constructor(
    private readonly sessions: () => Iterable<StreamSession>,
    private readonly limits: WatchdogLimits,
    /** The native workers that have stopped beating. */
    private readonly stalledWorkers: () => number[] = () => [],
  ) {
    this.timer = setInterval(() => this.sweep(), sweepInterval(limits));
    this.timer.unref();
  }

  /** Checks every session once; one that throws does not stop the sweep. */
  sweep(now = performance.now()): void {
    const stalled = new Set(this.stalledWorkers());
    for (const s of [...this.sessions()]) {
      try {
        const worker = s.worker;
        if (worker !== undefined && stalled.has(worker)) {
          s.fail('RM_ERR_WORKER_STALLED', `native worker ${worker} stopped responding`);
          continue;
        }
        this.check(s, now);
      } catch {
        s.kill(CloseCode.InternalError, 'internal error');
      }
    }
  }

  private check(s: StreamSession, now: number): void {
    const { startTimeoutMs, idleTimeoutMs, heartbeatMs } = this.limits;
    const a = s.activity;
    // A parked session (docs/protocol.md §8) has no client to time: RESUME_GRACE_MS bounds it.
    if (s.state === 'closed' || s.parked) return;
    if (startTimeoutMs > 0 && s.state === 'awaiting_start' && now - a.openedAt >= startTimeoutMs) {
      s.refuse(
        'RM_ERR_START_TIMEOUT',
        `no valid start within ${startTimeoutMs} ms`,
        CloseCode.PolicyViolation,
        'no start in time',
      );
      return;
    }
    if (idleTimeoutMs > 0 && s.state !== 'stopping' && now - a.lastMessageAt >= idleTimeoutMs) {
      s.end(CloseCode.GoingAway, 'idle');
      return;
    }
    if (heartbeatMs > 0 && now - (a.pingedAt ?? a.openedAt) >= heartbeatMs) {
      if (a.pingedAt !== undefined && a.pongedAt < a.pingedAt) {
        s.kill(CloseCode.GoingAway, 'no pong');
        return;
      }
      s.ping();
    }
    this.checkStall(s, now);
  }

  private checkStall(s: StreamSession, now: number): void {
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

  stop(): void {
    clearInterval(this.timer);
  }
}
