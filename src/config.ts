/**
 * Process configuration (docs/configuration.md): environment variables and matching CLI flags, parsed once with zod
 * at boot and frozen. Flags win over the environment. A bad value stops boot with a ConfigError that
 * names the variable.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { RemoteMediaError } from './errors.js';
import type { PlanBounds } from './pipeline/bounds.js';

const MiB = 1024 * 1024;

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => ['true', '1', 'yes'].includes(v));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const port = int(0, 65535);
const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()))
  .transform((v) => v.filter((s) => s.length > 0));

/** Every setting: the variable name, its schema (parsing a string) and its default. */
const settings = {
  PORT: port.default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  RT_PORT: port.default(8081),
  DATA_DIR: z.string().min(1).default('./data'),
  WORKERS: int(1, 256).default(availableParallelism()),
  PIN_CORES: boolean.default(true),
  API_KEYS: list.default([]),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_SESSIONS: int(1, 1_000_000).default(1000),
  MAX_FRAME_BYTES: int(64, 16 * MiB).default(65536),
  SESSION_QUEUE_MS: int(1, 60_000).default(200),
  MAX_UPLOAD_BYTES: int(1024, 4096 * MiB).default(64 * MiB),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  MAX_MESSAGES_PER_SEC: int(1, 1_000_000).default(1000),
  MAX_BODY_BYTES: int(1024, 64 * MiB).default(MiB),
  REQUEST_TIMEOUT_MS: int(0, 3_600_000).default(120_000),
  RATE_LIMIT_PER_MIN: int(0, 100_000_000).default(6000),
  MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(1000),
  ALLOWED_ORIGINS: list.default([]),
  TWILIO_AUTH_TOKEN: z.string().max(256).default(''),
  SINK_ALLOWLIST: list.default([]),
  DRAIN_DELAY_MS: int(0, 600_000).default(0),
  RESUME_GRACE_MS: int(0, 3_600_000).default(30_000),
  RESUME_BUFFER_BYTES: int(1024, 256 * MiB).default(256 * 1024),
  STORE_URL: z
    .string()
    .regex(/^(?:postgres|postgresql):\/\/./, 'must be a postgres:// or postgresql:// URL')
    .or(z.literal(''))
    .default(''),
  STORE_POOL_MAX: int(1, 1000).default(10),
  STORE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(5000),
  STORE_CONNECT_TIMEOUT_MS: int(100, 600_000).default(5000),
  START_TIMEOUT_MS: int(0, 3_600_000).default(5000),
  IDLE_TIMEOUT_MS: int(0, 86_400_000).default(30_000),
  MAX_SESSIONS_PER_IP: int(1, 1_000_000).default(100),
  HEARTBEAT_MS: int(0, 3_600_000).default(15_000),
  WORKER_STALL_MS: int(200, 3_600_000).default(5000),
  MAX_SESSION_MEMORY_BYTES: int(MiB, 16384 * MiB).default(64 * MiB),
  MAX_SESSION_OPS_PER_SEC: int(1_000_000, 1e13).default(1_000_000_000),
  MAX_EVENTS_PER_SEC: int(1, 1_000_000).default(1000),
  MAX_CONCURRENT_JOBS: int(1, 100_000).optional(),
} as const;

export type SettingName = keyof typeof settings;

const schema = z.object(settings);

type Parsed = z.output<typeof schema>;

/** The frozen configuration every module receives. Names follow docs/configuration.md. */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** uWebSockets.js listener port; 0 turns it off. */
  readonly rtPort: number;
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly workers: number;
  readonly pinCores: boolean;
  readonly apiKeys: readonly string[];
  readonly logLevel: Parsed['LOG_LEVEL'];
  readonly maxSessions: number;
  readonly maxFrameBytes: number;
  readonly sessionQueueMs: number;
  readonly maxUploadBytes: number;
  /** How long a graceful shutdown may take before the process exits anyway. */
  readonly shutdownGraceMs: number;
  /** Per-session WebSocket message rate limit (token bucket, burst of one second). */
  readonly maxMessagesPerSec: number;
  /** Largest request body other than audio uploads (pipeline documents). */
  readonly maxBodyBytes: number;
  /** Time a whole HTTP request may take to arrive; 0 = no limit. */
  readonly requestTimeoutMs: number;
  /** HTTP requests per minute per client IP; 0 turns the limit off. */
  readonly rateLimitPerMin: number;
  /** Event-loop delay above which requests get 503 + Retry-After; 0 turns the check off. */
  readonly maxEventLoopDelayMs: number;
  /** Origins a request (or WebSocket upgrade) may come from; empty = no check. */
  readonly allowedOrigins: readonly string[];
  /** docs/telephony/README.md: when set, Twilio upgrades must carry a valid X-Twilio-Signature (else 403). */
  readonly twilioAuthToken: string | undefined;
  /** docs/telephony/README.md: hosts a pipeline's `sink.url` may name (`host`, `host:port` or `*.domain`); empty = no sinks. */
  readonly sinkAllowlist: readonly string[];
  /** How long a session whose socket dropped is kept for a resume (docs/protocol.md §8); 0 = no resume. */
  readonly resumeGraceMs: number;
  /** Output a session keeps for replay after a resume (per session). */
  readonly resumeBufferBytes: number;
  /** On SIGTERM, how long /readyz fails while sessions go on, before draining starts. */
  readonly drainDelayMs: number;
  /** `postgres://…`: pipelines live in PostgreSQL, shared by every instance (README.md "Deployment"); empty = SQLite. */
  readonly storeUrl: string;
  /** PostgreSQL connections per instance. */
  readonly storePoolMax: number;
  /** Longest a store statement may run (PostgreSQL statement_timeout, SQLite busy timeout). */
  readonly storeStatementTimeoutMs: number;
  /** Longest to wait for a PostgreSQL connection. */
  readonly storeConnectTimeoutMs: number;
  /** Time an upgraded socket has to send a valid `start` before it is closed 1008; 0 = no limit. */
  readonly startTimeoutMs: number;
  /** Time a session may send nothing before it is closed 1001 "idle"; 0 = no limit. */
  readonly idleTimeoutMs: number;
  /** Concurrent sessions from one client IP, both transports together. */
  readonly maxSessionsPerIp: number;
  /** Interval of WebSocket pings; a peer that has not answered the last one is closed; 0 = off. */
  readonly heartbeatMs: number;
  /** A native worker whose loop has not beaten for this long is stalled: /readyz 503, its sessions closed 1011. */
  readonly workerStallMs: number;
  /** docs/limits.md: most memory one session of a plan may hold (estimated at validation). */
  readonly maxSessionMemoryBytes: number;
  /** docs/limits.md: most estimated operations per second of audio one session may take. */
  readonly maxSessionOpsPerSec: number;
  /** docs/limits.md: most events per second of audio a plan may emit. */
  readonly maxEventsPerSec: number;
  /** Concurrent `/process` jobs; more get 503 + Retry-After. Default: twice the workers. */
  readonly maxConcurrentJobs: number;
}

/** `PORT` ↔ `--port`, `MAX_FRAME_BYTES` ↔ `--max-frame-bytes`. */
export function flagName(setting: SettingName): string {
  return `--${setting.toLowerCase().replaceAll('_', '-')}`;
}

export const settingNames = Object.keys(settings) as SettingName[];

export class ConfigError extends RemoteMediaError {
  constructor(message: string) {
    super('RM_ERR_CONFIG', message);
  }
}

/**
 * Reads `--flag value` / `--flag=value` pairs for known settings; anything else is an error naming it.
 */
function flagsToValues(argv: readonly string[]): Partial<Record<SettingName, string>> {
  const byFlag = new Map(settingNames.map((name) => [flagName(name), name]));
  const out: Partial<Record<SettingName, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const name = byFlag.get(flag);
    if (name === undefined) throw new ConfigError(`unknown option ${arg}`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`${flag} (${name}) needs a value`);
    out[name] = value;
  }
  return out;
}

/** Parses the environment and CLI flags into a frozen Config, or throws a ConfigError naming the bad setting. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
): Readonly<Config> {
  const raw: Partial<Record<SettingName, string>> = {};
  for (const name of settingNames) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  Object.assign(raw, flagsToValues(argv));
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `${name}=${JSON.stringify(raw[name as SettingName])}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const v = result.data;
  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    rtPort: v.RT_PORT,
    dataDir: resolve(v.DATA_DIR),
    workers: v.WORKERS,
    pinCores: v.PIN_CORES,
    apiKeys: Object.freeze(v.API_KEYS),
    logLevel: v.LOG_LEVEL,
    maxSessions: v.MAX_SESSIONS,
    maxFrameBytes: v.MAX_FRAME_BYTES,
    sessionQueueMs: v.SESSION_QUEUE_MS,
    maxUploadBytes: v.MAX_UPLOAD_BYTES,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    maxMessagesPerSec: v.MAX_MESSAGES_PER_SEC,
    maxBodyBytes: v.MAX_BODY_BYTES,
    requestTimeoutMs: v.REQUEST_TIMEOUT_MS,
    rateLimitPerMin: v.RATE_LIMIT_PER_MIN,
    maxEventLoopDelayMs: v.MAX_EVENT_LOOP_DELAY_MS,
    allowedOrigins: Object.freeze(v.ALLOWED_ORIGINS),
    twilioAuthToken: v.TWILIO_AUTH_TOKEN === '' ? undefined : v.TWILIO_AUTH_TOKEN,
    sinkAllowlist: Object.freeze(v.SINK_ALLOWLIST),
    drainDelayMs: v.DRAIN_DELAY_MS,
    resumeGraceMs: v.RESUME_GRACE_MS,
    resumeBufferBytes: v.RESUME_BUFFER_BYTES,
    storeUrl: v.STORE_URL,
    storePoolMax: v.STORE_POOL_MAX,
    storeStatementTimeoutMs: v.STORE_STATEMENT_TIMEOUT_MS,
    storeConnectTimeoutMs: v.STORE_CONNECT_TIMEOUT_MS,
    startTimeoutMs: v.START_TIMEOUT_MS,
    idleTimeoutMs: v.IDLE_TIMEOUT_MS,
    maxSessionsPerIp: v.MAX_SESSIONS_PER_IP,
    heartbeatMs: v.HEARTBEAT_MS,
    workerStallMs: v.WORKER_STALL_MS,
    maxSessionMemoryBytes: v.MAX_SESSION_MEMORY_BYTES,
    maxSessionOpsPerSec: v.MAX_SESSION_OPS_PER_SEC,
    maxEventsPerSec: v.MAX_EVENTS_PER_SEC,
    maxConcurrentJobs: v.MAX_CONCURRENT_JOBS ?? v.WORKERS * 2,
  });
}

/** Human description of every setting, for `--help` and the README table. */
export const settingHelp: Record<SettingName, string> = {
  PORT: 'HTTP + WebSocket port (default 8080)',
  HOST: 'address to listen on (default 127.0.0.1)',
  RT_PORT: 'uWebSockets.js realtime listener port; 0 turns it off (default 8081)',
  DATA_DIR: 'directory of the embedded SQLite store (default ./data)',
  WORKERS: 'native DSP worker threads (default: CPU cores)',
  PIN_CORES:
    'pin each worker to a core; with fewer WORKERS than cores the JS thread keeps the rest; failure is logged, not fatal (default true)',
  API_KEYS: 'comma-separated Bearer keys; empty = no auth, with a warning (default empty)',
  LOG_LEVEL: 'fatal | error | warn | info | debug | trace | silent (default info)',
  MAX_SESSIONS: 'concurrent streaming sessions admitted (default 1000)',
  MAX_FRAME_BYTES: 'largest binary WebSocket message (default 65536)',
  SESSION_QUEUE_MS: 'longest a frame may wait for the engine before it is dropped, ms (default 200)',
  MAX_UPLOAD_BYTES: 'largest audio upload, e.g. a WAV to /process; larger gets 413 (default 64 MiB)',
  SHUTDOWN_GRACE_MS: 'time a graceful shutdown may take before exit is forced (default 10000)',
  MAX_MESSAGES_PER_SEC: 'WebSocket messages per second one session may send (default 1000)',
  MAX_BODY_BYTES: 'largest request body other than an audio upload, e.g. a pipeline document (default 1 MiB)',
  REQUEST_TIMEOUT_MS: 'time a whole HTTP request may take to arrive; 0 = no limit (default 120000)',
  RATE_LIMIT_PER_MIN:
    'HTTP requests per minute per client IP, health and metrics exempt; 0 = off (default 6000)',
  MAX_EVENT_LOOP_DELAY_MS:
    'event-loop delay above which requests get 503 + Retry-After; 0 = off (default 1000)',
  ALLOWED_ORIGINS:
    'comma-separated Origins allowed for HTTP and WebSocket requests; empty = no check (default empty)',
  TWILIO_AUTH_TOKEN:
    'Twilio auth token; when set, /twilio upgrades need a valid X-Twilio-Signature, else 403 (default empty)',
  SINK_ALLOWLIST:
    'comma-separated hosts a pipeline sink may dial (host, host:port or *.domain); empty = no sinks (default empty)',
  RESUME_GRACE_MS:
    'how long a session whose socket dropped (no stop) is kept, with its DSP state and unsent answers, for a resume; 0 = off (default 30000)',
  RESUME_BUFFER_BYTES:
    'output each session keeps to replay after a resume; older answers cannot be replayed (default 262144)',
  DRAIN_DELAY_MS:
    'on SIGTERM, time /readyz answers 503 and new sessions are refused while running ones go on, before they are drained (default 0)',
  STORE_URL:
    'postgres://user:password@host:5432/db: keep pipelines in PostgreSQL, shared by every instance; empty = SQLite in DATA_DIR (default empty)',
  STORE_POOL_MAX: 'PostgreSQL connections per instance (default 10)',
  STORE_STATEMENT_TIMEOUT_MS:
    'longest one store statement may run or wait for a lock before 503 RM_ERR_STORE_BUSY (default 5000)',
  STORE_CONNECT_TIMEOUT_MS:
    'longest to wait for a PostgreSQL connection before 503 RM_ERR_STORE_BUSY (default 5000)',
  START_TIMEOUT_MS:
    'time an upgraded WebSocket has to send a valid start before it is closed 1008; 0 = off (default 5000)',
  IDLE_TIMEOUT_MS: 'time a session may send nothing before it is closed 1001 "idle"; 0 = off (default 30000)',
  MAX_SESSIONS_PER_IP: 'concurrent streaming sessions from one client IP, both transports (default 100)',
  HEARTBEAT_MS:
    'WebSocket ping interval; a peer that has not answered the previous ping is closed; 0 = off (default 15000)',
  WORKER_STALL_MS:
    'a native worker stuck this long in one item fails /readyz and its sessions are closed 1011 (default 5000)',
  MAX_SESSION_MEMORY_BYTES:
    'most memory one session of a pipeline may hold, estimated from its plan; more is refused with 422 RM_PIPE_MEMORY_BOUND (default 64 MiB)',
  MAX_SESSION_OPS_PER_SEC:
    'most estimated operations per second of audio one session may take; more is refused with 422 RM_PIPE_WORK_BOUND (default 1e9)',
  MAX_EVENTS_PER_SEC:
    'most events per second of audio a pipeline may emit; more is refused with 422 RM_PIPE_EVENT_RATE (default 1000)',
  MAX_CONCURRENT_JOBS:
    'concurrent /process requests; more get 503 RM_ERR_TOO_MANY_JOBS + Retry-After (default 2 × WORKERS)',
};

/** The plan bounds of docs/limits.md this configuration sets (see pipeline/bounds.ts). */
export function planBounds(config: Config): PlanBounds {
  return {
    maxSessionMemoryBytes: config.maxSessionMemoryBytes,
    maxOpsPerSecond: config.maxSessionOpsPerSec,
    maxEventsPerSecond: config.maxEventsPerSec,
    maxFrameBytes: config.maxFrameBytes,
  };
}
