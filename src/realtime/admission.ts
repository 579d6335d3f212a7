/**
 * Admission before the upgrade (docs/protocol.md §1), the same for both transports: Origin allowlist, auth,
 * 404 for an unknown pipeline, 503 while draining or over MAX_SESSIONS. A refused client never gets a
 * WebSocket: it gets a problem+json answer with a code from the catalog.
 */
import type { Config } from '../config.js';
import { type ErrorCode, errorCatalog, RemoteMediaError } from '../errors.js';
import { originAllowed } from '../origins.js';
import { verifyTwilioUpgrade } from './providers/twilio-signature.js';
import type { ProviderName } from './providers/wire.js';
import type { UpgradeRate } from './ratelimit.js';
import type { PipelineRef } from './session.js';

/** The realtime endpoints of a pipeline: the protocol of docs/protocol.md, or a telephony provider's (docs/telephony/README.md). */
export type Endpoint = 'stream' | ProviderName;

/**
 * One spelling per address, so that a client is counted once across both transports: IPv4 dotted
 * (also for IPv4-mapped IPv6, RFC 4291 §2.5.5.2), IPv6 in its RFC 5952 form.
 */
export function canonicalIp(address: string): string {
  if (!address.includes(':')) return address;
  let v6: string;
  try {
    v6 = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (mapped === null) return v6;
  const hi = Number.parseInt(mapped[1] ?? '0', 16);
  const lo = Number.parseInt(mapped[2] ?? '0', 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** Request headers as both transports can give them. */
export type UpgradeHeaders = Record<string, string | string[] | undefined>;

/** What a transport knows about an upgrade request before it answers it. */
export interface UpgradeRequest {
  /** Path and query, as received (still percent-encoded). */
  url: string;
  headers: UpgradeHeaders;
  /** The peer's IP address (any spelling; see `canonicalIp`). */
  ip: string;
  /** The route the transport matched (default `stream`). */
  endpoint?: Endpoint;
}

/**
 * Looks up the current version of a stored pipeline: from memory when it can (current-pipelines.ts), else
 * from the store (asynchronous, off the audio path).
 */
export type PipelineLookup = (id: string) => PipelineRef | undefined | Promise<PipelineRef | undefined>;

/** Decides whether a request may use the route it targets (see plugins/auth.ts). */
export type Authorize = (headers: UpgradeHeaders, url: string) => boolean;

export interface AdmissionPolicy {
  config: Config;
  lookup: PipelineLookup;
  authorize: Authorize;
  /** Upgrades per client address (RATE_LIMIT_PER_MIN), both listeners together; absent when off. */
  upgradeRate?: UpgradeRate;
  /** Whether the server sheds new work (MAX_EVENT_LOOP_DELAY_MS), as the main port does for HTTP. */
  overload?: { active: () => boolean; retryAfterS: number };
}

/** How full the server is, as the registry counts it. */
export interface Occupancy {
  readonly isDraining: boolean;
  /**
   * Sessions with a client connected (all but the parked ones, docs/protocol.md §8): in total and from one
   * (canonical) client IP, both transports together. A parked session makes way when a new one starts.
   */
  readonly connected: number;
  connectedFrom(ip: string): number;
}

export type Admission =
  | { ok: true; pipeline: PipelineRef }
  | { ok: false; status: number; code: ErrorCode; message: string; retryAfter?: number };

const realtimePath = /^\/v1\/pipelines\/([^/?#]+)\/(stream|twilio|vonage|jambonz|asterisk)(?:[?#]|$)/;

/**
 * The pipeline id of a realtime URL (`/stream` or a provider endpoint): undefined when the URL is not a
 * realtime path, null when its id is not valid percent-encoding (RFC 3986 §2.1) — a bad request, never an
 * exception.
 */
export function pipelineIdOf(url: string): string | null | undefined {
  const m = realtimePath.exec(url);
  if (m?.[1] === undefined) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

/**
 * docs/protocol.md §1: the Origin allowlist, auth, then 404, draining and capacity — all before the upgrade.
 * Synchronous when the pipeline is known in memory (the transport can answer inside its own callback);
 * otherwise draining and capacity are checked after the store answered, so they hold when the answer goes out.
 */
export function admit(
  policy: AdmissionPolicy,
  occupancy: Occupancy,
  request: UpgradeRequest,
): Admission | Promise<Admission> {
  const id = precheck(policy, request);
  if (typeof id !== 'string') return id;
  let found: ReturnType<PipelineLookup>;
  try {
    found = policy.lookup(id);
  } catch (err) {
    return storeRefusal(err);
  }
  if (found instanceof Promise) {
    return found.then((pipeline) => decide(policy.config, occupancy, request, id, pipeline), storeRefusal);
  }
  return decide(policy.config, occupancy, request, id, found);
}

/** What can be refused without the store; else the pipeline id the request names. */
function precheck(policy: AdmissionPolicy, request: UpgradeRequest): Admission | string {
  const { config } = policy;
  const { url, headers } = request;
  if (!originAllowed(config.allowedOrigins, headers)) {
    return { ok: false, status: 403, code: 'RM_ERR_ORIGIN', message: 'origin is not allowed' };
  }
  if (!policy.authorize(headers, url)) {
    return { ok: false, status: 401, code: 'RM_ERR_UNAUTHORIZED', message: 'missing or invalid API key' };
  }
  if (policy.upgradeRate !== undefined && !policy.upgradeRate.take(canonicalIp(request.ip))) {
    return {
      ok: false,
      status: 429,
      code: 'RM_ERR_RATE_LIMITED',
      message: `more than ${config.rateLimitPerMin} upgrades per minute from this address`,
      retryAfter: Math.max(1, Math.ceil(60 / config.rateLimitPerMin)),
    };
  }
  if (policy.overload?.active() === true) {
    return {
      ok: false,
      status: 503,
      code: 'RM_ERR_OVERLOADED',
      message: 'server is overloaded',
      retryAfter: policy.overload.retryAfterS,
    };
  }
  // docs/telephony/README.md: with TWILIO_AUTH_TOKEN set, a Twilio upgrade must be signed by Twilio.
  if (
    request.endpoint === 'twilio' &&
    config.twilioAuthToken !== undefined &&
    !verifyTwilioUpgrade(config.twilioAuthToken, headers, url)
  ) {
    return {
      ok: false,
      status: 403,
      code: 'RM_ERR_TWILIO_SIGNATURE',
      message: 'missing or invalid X-Twilio-Signature',
    };
  }
  const id = pipelineIdOf(url);
  if (id === null) {
    // As the main port's router answers a path it cannot decode.
    return {
      ok: false,
      status: 400,
      code: 'RM_ERR_BAD_REQUEST',
      message: `malformed URL ${url.slice(0, 200)}`,
    };
  }
  if (id === undefined) return notFound('');
  return id;
}

/** The store is busy or down (RM_ERR_STORE_BUSY, 503): refuse this upgrade, keep every session. */
function storeRefusal(err: unknown): Admission {
  const code: ErrorCode = err instanceof RemoteMediaError ? err.code : 'RM_ERR_STORE';
  const message = err instanceof Error ? err.message : String(err);
  return { ok: false, status: errorCatalog[code].status, code, message, retryAfter: 1 };
}

function notFound(id: string): Admission {
  return { ok: false, status: 404, code: 'RM_ERR_PIPELINE_NOT_FOUND', message: `no pipeline '${id}'` };
}

/**
 * 404, draining and capacity. Parked sessions are not counted here: the socket may be the one that
 * resumes them, and one that starts a new session instead makes the oldest of them end (registry.ts).
 */
function decide(
  config: Config,
  occupancy: Occupancy,
  request: UpgradeRequest,
  id: string,
  pipeline: PipelineRef | undefined,
): Admission {
  if (pipeline === undefined) return notFound(id);
  if (occupancy.isDraining) {
    return {
      ok: false,
      status: 503,
      code: 'RM_ERR_DRAINING',
      message: 'server is shutting down',
      retryAfter: 5,
    };
  }
  const ip = canonicalIp(request.ip);
  if (occupancy.connectedFrom(ip) >= config.maxSessionsPerIp) {
    return {
      ok: false,
      status: 429,
      code: 'RM_ERR_TOO_MANY_SESSIONS_PER_IP',
      message: `this address holds its maximum of ${config.maxSessionsPerIp} sessions`,
      retryAfter: 1,
    };
  }
  if (occupancy.connected >= config.maxSessions) {
    return {
      ok: false,
      status: 503,
      code: 'RM_ERR_TOO_MANY_SESSIONS',
      message: `the server holds its maximum of ${config.maxSessions} sessions`,
      retryAfter: 1,
    };
  }
  return { ok: true, pipeline };
}
