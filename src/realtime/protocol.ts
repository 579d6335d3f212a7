/**
 * The WebSocket wire protocol of docs/protocol.md: client messages (parsed with hard limits), server messages and
 * close codes. Transport-independent; `session.ts` drives it, `transports/*` carry it.
 */
import { z } from 'zod';
import type { ErrorCode } from '../errors.js';

/** RFC 6455 §7.4.1 close codes the protocol uses. */
export const CloseCode = {
  /** Normal closure: after `stop` (docs/protocol.md §5). */
  Normal: 1000,
  /** Going away: server shutdown (docs/protocol.md §6). */
  GoingAway: 1001,
  /** Invalid payload: a text message that is not UTF-8 (RFC 6455 §8.1, docs/errors.md). */
  InvalidPayload: 1007,
  /** Policy violation: binary before `start`, no `start` in time, rate limit, stalled reader (docs/protocol.md §6). */
  PolicyViolation: 1008,
  /** Message too big: over MAX_FRAME_BYTES (docs/protocol.md §6). */
  MessageTooBig: 1009,
  /** Internal error: the session's engine failed, e.g. a node panicked (docs/engine.md). */
  InternalError: 1011,
} as const;

/** Sample encodings: interleaved samples, any whole number of sample frames per message (docs/protocol.md §3). */
export const pcmEncodings = ['s16le', 'f32le', 'mulaw', 'alaw'] as const;
export type PcmEncoding = (typeof pcmEncodings)[number];

/** Every encoding of a streaming session's edges: the PCM ones, and `opus`, one Opus packet per message. */
export const encodings = [...pcmEncodings, 'opus'] as const;
export type WireEncoding = (typeof encodings)[number];

/** Bytes per sample of each PCM encoding. */
export const bytesPerSample: Record<PcmEncoding, number> = { s16le: 2, f32le: 4, mulaw: 1, alaw: 1 };

/** Most bytes per second an Opus stream takes: RFC 6716 §3.2.1 caps a 20 ms frame at 1275 bytes, plus its TOC byte. */
const OPUS_MAX_BYTES_PER_SECOND = 1276 * 50;

/** Bytes per second of a stream in `format` (for Opus, the most it can take). */
export function bytesPerSecond(format: StreamFormatMessage): number {
  if (format.encoding === 'opus') return OPUS_MAX_BYTES_PER_SECOND;
  return format.sample_rate * format.channels * bytesPerSample[format.encoding];
}

/** The byte that encodes silence in each encoding (ITU-T G.711: μ-law 0xFF, A-law 0xD5; PCM zero). */
export const silenceByte: Record<PcmEncoding, number> = { s16le: 0, f32le: 0, mulaw: 0xff, alaw: 0xd5 };

const encoding = z.enum(encodings);

const startMessage = z.strictObject({
  type: z.literal('start'),
  input: z.strictObject({
    encoding,
    sample_rate: z.number().int().min(8000).max(192000),
    channels: z.number().int().min(1).max(8),
  }),
  output: z.strictObject({ encoding }).optional(),
});

const paramsMessage = z.strictObject({
  type: z.literal('params'),
  node: z.string().min(1).max(64),
  params: z.record(z.string(), z.unknown()),
});

const simple = (type: 'flush' | 'stop' | 'ping') => z.strictObject({ type: z.literal(type) });

/** docs/protocol.md §8: picks a session whose socket dropped up on this socket. */
const resumeMessage = z.strictObject({
  type: z.literal('resume'),
  session_id: z.string().min(1).max(64),
  resume_token: z.string().min(1).max(128),
  /** Index of the last binary answer the client received; -1 for none. */
  last_answer: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER),
});

const clientMessage = z.discriminatedUnion('type', [
  startMessage,
  paramsMessage,
  simple('flush'),
  simple('stop'),
  simple('ping'),
  resumeMessage,
]);

export type ClientMessage = z.infer<typeof clientMessage>;
export type StartMessage = z.infer<typeof startMessage>;
export type ResumeMessage = z.infer<typeof resumeMessage>;

/**
 * Largest message a transport buffers before handing it over: twice MAX_FRAME_BYTES. The session closes
 * anything over MAX_FRAME_BYTES with 1009 on both transports alike; the headroom lets it see (and answer
 * the same way) a message that is somewhat too big. Over this cap `ws` closes 1009 by itself, while
 * uWebSockets.js drops the connection without a close frame (1006): it reserves 1006 for the messages it
 * refuses to buffer and offers no hook to do otherwise.
 */
export function transportMaxPayload(maxFrameBytes: number): number {
  return 2 * maxFrameBytes;
}

/** Longest text message accepted; control messages are tiny (docs/protocol.md §5). */
export const MAX_TEXT_BYTES = 16 * 1024;

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: ErrorCode; message: string };

/** Parses one text message. Never throws. */
export function parseClientMessage(text: string): ParseResult {
  if (text.length > MAX_TEXT_BYTES) {
    return {
      ok: false,
      code: 'RM_ERR_BAD_MESSAGE',
      message: `text messages are limited to ${MAX_TEXT_BYTES} bytes`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, code: 'RM_ERR_BAD_JSON', message: 'message is not valid JSON' };
  }
  const type = (json as { type?: unknown } | null)?.type;
  if (typeof json !== 'object' || json === null || typeof type !== 'string') {
    return {
      ok: false,
      code: 'RM_ERR_BAD_MESSAGE',
      message: 'message must be an object with a string "type"',
    };
  }
  if (!['start', 'params', 'flush', 'stop', 'ping', 'resume'].includes(type)) {
    return {
      ok: false,
      code: 'RM_ERR_UNKNOWN_MESSAGE',
      message: `unknown message type "${type.slice(0, 32)}"`,
    };
  }
  const parsed = clientMessage.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at /${issue.path.join('/')}` : '';
    return {
      ok: false,
      code: 'RM_ERR_BAD_MESSAGE',
      message: `${issue?.message ?? 'invalid message'}${where}`,
    };
  }
  return { ok: true, message: parsed.data };
}

export interface StreamFormatMessage {
  encoding: WireEncoding;
  sample_rate: number;
  channels: number;
}

export interface LatencySummary {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  count: number;
}

/** Server → client messages (docs/protocol.md §2–6). */
export type ServerMessage =
  | {
      type: 'ready';
      session_id: string;
      pipeline: { id: string; version: number };
      input: StreamFormatMessage;
      output: StreamFormatMessage;
      latency_ms: number;
      /** docs/protocol.md §8: present when RESUME_GRACE_MS is not 0. */
      resume_token?: string;
    }
  | { type: 'resumed'; next_frame: number }
  | { type: 'error'; code: string; message: string; frame?: number }
  | { type: 'dropped'; frames: number[] }
  | { type: 'params_applied'; node: string; params: Record<string, unknown> }
  | { type: 'flushed' }
  | { type: 'pong' }
  | { type: 'stats'; [key: string]: unknown };

export function encode(message: ServerMessage): string {
  return JSON.stringify(message);
}
