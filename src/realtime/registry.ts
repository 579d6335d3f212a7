/**
 * Live sessions of both transports: admission before the upgrade (admission.ts), listing for
 * `/v1/sessions`, the watchdog sweep (watchdog.ts) and draining on shutdown (SPEC §4.8).
 */
import {
  type Admission,
  type AdmissionPolicy,
  type Authorize,
  admit,
  type PipelineLookup,
  type UpgradeRequest,
} from './admission.js';
import { CloseCode } from './protocol.js';
import type { RealtimeDeps, StreamSession } from './session.js';
import { Watchdog } from './watchdog.js';

export class SessionRegistry {
  readonly sessions = new Map<string, StreamSession>();
  private draining = false;
  private readonly policy: AdmissionPolicy;
  private readonly watchdog: Watchdog;

  constructor(
    readonly deps: RealtimeDeps,
    lookup: PipelineLookup,
    authorize: Authorize,
  ) {
    this.policy = { config: deps.config, lookup, authorize };
    this.watchdog = new Watchdog(() => this.sessions.values());
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** SPEC §4.1: may this upgrade go ahead? (admission.ts) */
  admit(request: UpgradeRequest): Promise<Admission> {
    return admit(this.policy, this, request);
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
    this.watchdog.stop();
  }
}
