/**
 * Live sessions of both transports: admission before the upgrade (admission.ts), listing for
 * `/v1/sessions`, the watchdog sweep (watchdog.ts) and draining on shutdown (docs/protocol.md §6).
 */
import {
  type Admission,
  type AdmissionPolicy,
  type Authorize,
  admit,
  canonicalIp,
  type Occupancy,
  type PipelineLookup,
  type UpgradeHeaders,
  type UpgradeRequest,
} from './admission.js';
import { CloseCode } from './protocol.js';
import type { ProviderCall } from './providers/call.js';
import type { RealtimeDeps, StreamSession } from './session.js';
import { Watchdog } from './watchdog.js';

export class SessionRegistry implements Occupancy {
  readonly sessions = new Map<string, StreamSession>();
  /** The telephony calls among the sessions (docs/telephony/README.md), by session id, for `/v1/sessions/{id}/listen`. */
  readonly calls = new Map<string, ProviderCall>();
  /** Live sessions per canonical client IP (MAX_SESSIONS_PER_IP). */
  private readonly perIp = new Map<string, number>();
  /** Each live session's canonical client IP. */
  private readonly peers = new Map<string, string>();
  /** Parked sessions (docs/protocol.md §8): in total and per canonical client IP. */
  private readonly parked = new Set<string>();
  private readonly parkedPerIp = new Map<string, number>();
  private draining = false;
  private readonly policy: AdmissionPolicy;
  readonly watchdog: Watchdog;

  /** What sessions need; `findSession` lets a socket resume a parked session (docs/protocol.md §8). */
  readonly deps: RealtimeDeps;

  constructor(
    deps: RealtimeDeps,
    lookup: PipelineLookup,
    authorize: Authorize,
    shedding: Pick<AdmissionPolicy, 'upgradeRate' | 'overload'> = {},
  ) {
    this.deps = { ...deps, findSession: (id) => this.sessions.get(id) };
    this.policy = { config: deps.config, lookup, authorize, ...shedding };
    this.watchdog = new Watchdog(
      () => this.sessions.values(),
      deps.config,
      () => deps.engine.health(deps.config.workerStallMs).stalled,
    );
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get size(): number {
    return this.sessions.size;
  }

  sessionsFrom(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  get connected(): number {
    return this.sessions.size - this.parked.size;
  }

  connectedFrom(ip: string): number {
    return this.sessionsFrom(ip) - (this.parkedPerIp.get(ip) ?? 0);
  }

  /**
   * A session from `ip` is starting: while that puts the address or the server over its limit, the
   * oldest parked session (of that address, then any) ends to make room (docs/protocol.md §8).
   */
  private makeRoom(ip: string): void {
    while (this.sessionsFrom(ip) > this.deps.config.maxSessionsPerIp && this.evictParked(ip));
    while (this.sessions.size > this.deps.config.maxSessions && this.evictParked());
  }

  /** Ends the oldest parked session (of `ip` when given); false when there is none. */
  private evictParked(ip?: string): boolean {
    // Oldest first: a Set iterates in insertion order.
    for (const id of this.parked) {
      if (ip === undefined || this.peers.get(id) === ip) return this.sessions.get(id)?.evict() ?? false;
    }
    return false;
  }

  private countParked(id: string, peer: string, parked: boolean): void {
    if (parked === this.parked.has(id)) return;
    if (parked) this.parked.add(id);
    else this.parked.delete(id);
    const n = (this.parkedPerIp.get(peer) ?? 0) + (parked ? 1 : -1);
    if (n > 0) this.parkedPerIp.set(peer, n);
    else this.parkedPerIp.delete(peer);
  }

  /** docs/protocol.md §1: may this upgrade go ahead? (admission.ts; synchronous when it can be) */
  admit(request: UpgradeRequest): Admission | Promise<Admission> {
    return admit(this.policy, this, request);
  }
  /** Whether a request carries valid credentials (listeners, which are not admitted to a pipeline). */
  authorized(headers: UpgradeHeaders, url: string): boolean {
    return this.policy.authorize(headers, url);
  }

  /** Adds a session that a transport opened for a client at `ip` (after `admit`). */
  add(session: StreamSession, ip: string): void {
    const peer = canonicalIp(ip);
    this.sessions.set(session.id, session);
    this.peers.set(session.id, peer);
    this.perIp.set(peer, this.sessionsFrom(peer) + 1);
    const release = () => {
      this.countParked(session.id, peer, false);
      this.sessions.delete(session.id);
      this.peers.delete(session.id);
      this.calls.delete(session.id);
      const left = this.sessionsFrom(peer) - 1;
      if (left > 0) this.perIp.set(peer, left);
      else this.perIp.delete(peer);
    };
    session.onClosed = release;
    // The socket resumed another session, which it carries from now on: no session of its own ended.
    session.onDelegated = release;
    session.onParked = (parked) => this.countParked(session.id, peer, parked);
    session.onStarting = () => this.makeRoom(peer);
  }

  /** Adds a telephony call: its session like any other, and the call for listeners. */
  addCall(call: ProviderCall, ip: string): void {
    this.add(call.session, ip);
    this.calls.set(call.session.id, call);
  }

  get(id: string): StreamSession | undefined {
    return this.sessions.get(id);
  }

  /** Runs `fn` on every live session; one that throws is closed 1011 and the rest still get their turn. */
  private each(fn: (s: StreamSession) => void): void {
    for (const s of [...this.sessions.values()]) {
      try {
        fn(s);
      } catch (err) {
        this.deps.log?.warn({ err, session: s.id }, 'session failed while being ended');
        try {
          s.fail('RM_ERR_INTERNAL', 'the session failed while being ended');
        } catch {
          // Its socket is beyond use; forget the session so that drain does not wait for it.
          s.onClose();
        }
      }
    }
  }

  /** Refuses new upgrades (503 RM_ERR_DRAINING) and fails /readyz; running sessions go on. */
  stopAdmitting(): void {
    this.draining = true;
  }

  /**
   * docs/protocol.md §6: refuse new upgrades, flush every session, send its stats and close it with 1001.
   * Resolves when all sessions are closed or `graceMs` has passed (then the rest are closed at once).
   * Every session is reached whatever another one throws.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.each((s) => s.end(CloseCode.GoingAway, 'server shutting down'));
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.each((s) => s.kill(CloseCode.GoingAway, 'server shutting down'));
    this.watchdog.stop();
  }
}
