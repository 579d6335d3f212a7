/**
 * Live sessions of both transports: admission before the upgrade (SPEC §4.1), listing for
 * `/v1/sessions`, slow-reader detection and draining on shutdown (SPEC §4.8).
 */
import { originAllowed } from '../origins.js';
import { CloseCode } from './protocol.js';
import type { PipelineRef, RealtimeDeps, StreamSession } from './session.js';

/** Looks up the current version of a stored pipeline. */
export type PipelineLookup = (id: string) => PipelineRef | undefined;

export type Admission =
  | { ok: true; pipeline: PipelineRef }
  | { ok: false; status: number; code: string; message: string; retryAfter?: number };

/** A client whose unsent output stays above this much audio is stalled. */
const STALL_SECONDS_OF_AUDIO = 2;
/** Floor of the stall limit in bytes, for low-rate outputs. */
const STALL_MIN_BYTES = 256 * 1024;
/** How long a client may stay stalled before it is closed (SPEC issue: "within 10 s"). */
export const STALL_TIMEOUT_MS = 5_000;
const STALL_CHECK_MS = 1_000;

const streamPath = /^\/v1\/pipelines\/([^/?#]+)\/stream(?:[?#]|$)/;

/** The pipeline id of a stream URL, or undefined. */
export function pipelineIdOf(url: string): string | undefined {
  const m = streamPath.exec(url);
  return m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
}

export class SessionRegistry {
  readonly sessions = new Map<string, StreamSession>();
  private draining = false;
  private readonly stallTimer: NodeJS.Timeout;

  constructor(
    readonly deps: RealtimeDeps,
    private readonly lookup: PipelineLookup,
    private readonly authorize: (
      headers: Record<string, string | string[] | undefined>,
      url: string,
    ) => boolean,
  ) {
    this.stallTimer = setInterval(() => this.checkStalls(), STALL_CHECK_MS);
    this.stallTimer.unref();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * SPEC §4.1: auth, then 404 for an unknown pipeline and 503 over MAX_SESSIONS — all before the upgrade.
   * The Origin allowlist (ALLOWED_ORIGINS) comes first, as on every HTTP route.
   */
  admit(url: string, headers: Record<string, string | string[] | undefined>): Admission {
    if (!originAllowed(this.deps.config.allowedOrigins, headers)) {
      return { ok: false, status: 403, code: 'RM_ERR_ORIGIN', message: 'origin is not allowed' };
    }
    if (!this.authorize(headers, url)) {
      return { ok: false, status: 401, code: 'RM_ERR_UNAUTHORIZED', message: 'missing or invalid API key' };
    }
    const id = pipelineIdOf(url);
    const pipeline = id === undefined ? undefined : this.lookup(id);
    if (pipeline === undefined) {
      return {
        ok: false,
        status: 404,
        code: 'RM_ERR_PIPELINE_NOT_FOUND',
        message: `no pipeline '${id ?? ''}'`,
      };
    }
    if (this.draining) {
      return {
        ok: false,
        status: 503,
        code: 'RM_ERR_DRAINING',
        message: 'server is shutting down',
        retryAfter: 5,
      };
    }
    if (this.sessions.size >= this.deps.config.maxSessions) {
      return {
        ok: false,
        status: 503,
        code: 'RM_ERR_TOO_MANY_SESSIONS',
        message: `the server holds its maximum of ${this.deps.config.maxSessions} sessions`,
        retryAfter: 1,
      };
    }
    return { ok: true, pipeline };
  }

  add(session: StreamSession): void {
    this.sessions.set(session.id, session);
    session.onClosed = () => {
      this.sessions.delete(session.id);
      this.deps.metrics?.ended(session);
    };
  }

  get(id: string): StreamSession | undefined {
    return this.sessions.get(id);
  }

  private checkStalls(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      const limit = Math.max(STALL_MIN_BYTES, s.outputBytesPerSecond() * STALL_SECONDS_OF_AUDIO);
      if (s.bufferedAmount() <= limit) {
        s.stalledSince = undefined;
      } else if (s.stalledSince === undefined) {
        s.stalledSince = now;
      } else if (now - s.stalledSince >= STALL_TIMEOUT_MS) {
        s.kill(CloseCode.PolicyViolation, 'client is not reading');
      }
    }
  }

  /**
   * SPEC §4.8: refuse new upgrades, flush every session, send its stats and close it with 1001.
   * Resolves when all sessions are closed or `graceMs` has passed (then the rest are closed at once).
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const s of this.sessions.values()) s.end(CloseCode.GoingAway, 'server shutting down');
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const s of this.sessions.values()) s.kill(CloseCode.GoingAway, 'server shutting down');
    clearInterval(this.stallTimer);
  }
}
