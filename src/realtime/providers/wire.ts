/**
 * What every telephony provider adapter (docs/telephony/README.md) has in common: the normalised inbound events a
 * provider's messages map to, the outbound messages a playback asks for, and small parsing helpers with
 * hard limits. Each provider module (`twilio.ts`, `vonage.ts`, `jambonz.ts`, `asterisk.ts`) is a pure
 * state machine over one connection: no sockets, no timers, never throws.
 */
import type { ErrorCode } from '../../errors.js';
import type { PcmEncoding } from '../protocol.js';

export const providerNames = ['twilio', 'vonage', 'jambonz', 'asterisk'] as const;
export type ProviderName = (typeof providerNames)[number];

/** A mono or stereo PCM / G.711 format, as the session protocol (docs/protocol.md) names it. */
export interface AudioFormat {
  encoding: PcmEncoding;
  sample_rate: number;
  channels: number;
}

/** Ids and custom parameters of a call, as the provider sent them (strings only, bounded). */
export type CallInfo = Record<string, string | Record<string, string>>;

/** What one provider message means. */
export type Inbound =
  /** The call's media starts: `input` is what the provider sends, `output` what it plays back. */
  | { kind: 'start'; call: CallInfo; input: AudioFormat; output: AudioFormat }
  /** One message of caller audio in the `input` format. */
  | { kind: 'media'; audio: Uint8Array }
  | { kind: 'dtmf'; digit: string; duration_ms: number | null }
  /** The provider reached a mark we sent (played, or — for some providers — discarded by a clear). */
  | { kind: 'mark'; name: string }
  /** The provider confirms a clear. */
  | { kind: 'cleared' }
  /** Flow control: the provider asks us to pause (true) or resume (false) sending media. */
  | { kind: 'flow'; paused: boolean }
  /** The provider ends the stream. */
  | { kind: 'stop' }
  /** A valid message that needs nothing from us (e.g. Twilio `connected`, outbound-track media). */
  | { kind: 'ignore' }
  /**
   * A bad message. `fatal` ones (out of order, unsupported format) end the call with 1008; the others are
   * counted and reported, and the call goes on (docs/limits.md).
   */
  | { kind: 'error'; code: ErrorCode; message: string; fatal: boolean };

/** One message to send to the provider. */
export type Outbound = { text: string } | { binary: Uint8Array };

/** One connection's worth of a provider protocol. */
export interface ProviderWire {
  readonly provider: ProviderName;
  /** A text message from the provider. */
  text(text: string): Inbound;
  /** A binary message from the provider. */
  binary(data: Uint8Array): Inbound;
  /** One chunk of playback audio, already in the `output` format of `start`. */
  media(chunk: Uint8Array): Outbound;
  /** A mark after the media sent so far; the provider reports it back as `{kind:'mark'}`. */
  mark(name: string): Outbound;
  /** Empties the provider's playback buffer. */
  clear(): Outbound[];
}

/** Longest text message any provider sends us (Twilio `start` with custom parameters is the largest). */
export const MAX_PROVIDER_TEXT = 32 * 1024;
/** Custom parameters / headers kept per call, and their sizes. */
const MAX_CALL_FIELDS = 64;
const MAX_CALL_KEY = 128;
const MAX_CALL_VALUE = 1024;

export function bad(code: ErrorCode, message: string, fatal = false): Inbound {
  return { kind: 'error', code, message, fatal };
}

/** Parses a provider's JSON text message with the size limit. Never throws. */
export function parseJson(
  text: string,
): { ok: true; value: Record<string, unknown> } | { ok: false; error: Inbound } {
  if (text.length > MAX_PROVIDER_TEXT) {
    return {
      ok: false,
      error: bad('RM_ERR_PROVIDER_MESSAGE', `text messages are limited to ${MAX_PROVIDER_TEXT} bytes`),
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: bad('RM_ERR_PROVIDER_MESSAGE', 'message is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: bad('RM_ERR_PROVIDER_MESSAGE', 'message must be a JSON object') };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short printable string field, or undefined. */
export function str(v: unknown, max = MAX_CALL_VALUE): string | undefined {
  return typeof v === 'string' && v.length <= max ? v : undefined;
}

/**
 * A provider number that the provider documents as a string of digits (Twilio `chunk`, `timestamp`,
 * `sequenceNumber`; jambonz DTMF `duration`). A JSON number is taken too; anything else is undefined.
 */
export function digits(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

/** RFC 4733 §3.2 events 0–15: the sixteen DTMF keys, as the `dtmf` node names them. */
export function dtmfDigit(v: unknown): string | undefined {
  return typeof v === 'string' && /^[0-9*#A-D]$/.test(v) ? v : undefined;
}

/** Copies string-valued entries of a provider object (custom parameters, headers), bounded in count and size. */
export function stringRecord(v: unknown, skip: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  let n = 0;
  for (const [key, value] of Object.entries(v)) {
    if (n >= MAX_CALL_FIELDS) break;
    if (skip.includes(key) || key.length > MAX_CALL_KEY) continue;
    if (typeof value === 'string' && value.length <= MAX_CALL_VALUE) out[key] = value;
    else if ((typeof value === 'number' || typeof value === 'boolean') && Number.isFinite(Number(value)))
      out[key] = String(value);
    else continue;
    n++;
  }
  return out;
}

/** RFC 4648 §4 base64, strict: the alphabet, padding only at the end, a multiple of four characters. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64(v: unknown): Uint8Array | undefined {
  if (typeof v !== 'string' || v.length > MAX_PROVIDER_TEXT || !BASE64.test(v)) return undefined;
  return Buffer.from(v, 'base64');
}

export function text(value: unknown): Outbound {
  return { text: JSON.stringify(value) };
}
