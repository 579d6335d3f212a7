/**
 * Twilio Media Streams (docs/telephony/README.md), as Twilio documents it in "Media Streams - WebSocket Messages"
 * (twilio.com/docs/voice/media-streams/websocket-messages). Every message is a JSON text message with an
 * `event`; Twilio sends `connected`, `start`, `media`, `dtmf`, `mark`, `stop`; a bidirectional stream
 * (`<Connect><Stream>`) accepts `media`, `mark` and `clear` back.
 *
 *   awaiting_start ──start──▶ streaming ──stop──▶ stopped
 *
 * Traps the docs spell out and users get wrong: `sequenceNumber`, `media.chunk` and `media.timestamp` are
 * strings of digits; `start.tracks` / `media.track` say `inbound` or `outbound` (a `track="both_tracks"`
 * stream sends both, and only the caller's `inbound` audio is processed); `dtmf.track` is `inbound_track`;
 * after a `clear`, Twilio echoes back every mark still queued — those marks were NOT played.
 */
import {
  type AudioFormat,
  bad,
  type CallInfo,
  decodeBase64,
  digits,
  dtmfDigit,
  type Inbound,
  isObject,
  type Outbound,
  type ProviderWire,
  parseJson,
  str,
  stringRecord,
  text,
} from './wire.js';

/** "mediaFormat": audio/x-mulaw, 8000 Hz, 1 channel — the only format Media Streams carries. */
const MULAW_8K: AudioFormat = { encoding: 'mulaw', sample_rate: 8000, channels: 1 };

export class TwilioWire implements ProviderWire {
  readonly provider = 'twilio' as const;
  private state: 'awaiting_start' | 'streaming' | 'stopped' = 'awaiting_start';
  private streamSid = '';
  /** Last inbound `media.chunk` processed: chunks are numbered from 1 and must not repeat. */
  private lastChunk = 0;

  text(message: string): Inbound {
    const parsed = parseJson(message);
    if (!parsed.ok) return parsed.error;
    const m = parsed.value;
    switch (m.event) {
      // "Connected message": the first message, { event, protocol: "Call", version: "1.0.0" }.
      case 'connected':
        return { kind: 'ignore' };
      case 'start':
        return this.start(m);
      case 'media':
        return this.inboundMedia(m);
      case 'dtmf':
        return this.dtmf(m);
      case 'mark': {
        // "Mark message": { event: "mark", sequenceNumber, streamSid, mark: { name } }.
        const name = isObject(m.mark) ? str(m.mark.name, 256) : undefined;
        if (name === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'mark needs mark.name');
        return { kind: 'mark', name };
      }
      case 'stop':
        // "Stop message": { event: "stop", sequenceNumber, streamSid, stop: { accountSid, callSid } }.
        this.state = 'stopped';
        return { kind: 'stop' };
      default:
        return bad(
          'RM_ERR_PROVIDER_MESSAGE',
          typeof m.event === 'string'
            ? `unknown event "${m.event.slice(0, 32)}"`
            : 'message needs an "event"',
        );
    }
  }

  /** "Start message": sent once, right after `connected`. */
  private start(m: Record<string, unknown>): Inbound {
    if (this.state !== 'awaiting_start') {
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'a second start message', true);
    }
    const s = m.start;
    if (!isObject(s)) return bad('RM_ERR_PROVIDER_MESSAGE', 'start needs a start object', true);
    const streamSid = str(s.streamSid, 128) ?? str(m.streamSid, 128);
    const callSid = str(s.callSid, 128);
    if (streamSid === undefined || callSid === undefined) {
      return bad('RM_ERR_PROVIDER_MESSAGE', 'start needs start.streamSid and start.callSid', true);
    }
    // "start.mediaFormat": encoding "audio/x-mulaw", sampleRate 8000, channels 1 (numbers, not strings).
    const f = s.mediaFormat;
    if (
      isObject(f) &&
      (f.encoding !== 'audio/x-mulaw' || Number(f.sampleRate) !== 8000 || Number(f.channels ?? 1) !== 1)
    ) {
      return bad('RM_ERR_PROVIDER_FORMAT', 'Media Streams carry audio/x-mulaw at 8000 Hz, mono', true);
    }
    const tracks = Array.isArray(s.tracks) ? s.tracks.filter((t): t is string => typeof t === 'string') : [];
    if (tracks.length > 0 && !tracks.includes('inbound')) {
      return bad(
        'RM_ERR_PROVIDER_FORMAT',
        'the stream carries no inbound track (use track="inbound_track" or "both_tracks")',
        true,
      );
    }
    this.streamSid = streamSid;
    this.state = 'streaming';
    const call: CallInfo = {
      stream_sid: streamSid,
      call_sid: callSid,
      account_sid: str(s.accountSid, 128) ?? '',
      tracks: tracks.slice(0, 2).join(','),
      custom_parameters: stringRecord(s.customParameters),
    };
    return { kind: 'start', call, input: MULAW_8K, output: MULAW_8K };
  }

  /** "Media message": { event, sequenceNumber, media: { track, chunk, timestamp, payload }, streamSid }. */
  private inboundMedia(m: Record<string, unknown>): Inbound {
    if (this.state !== 'streaming') {
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'media before start', this.state === 'awaiting_start');
    }
    const media = m.media;
    if (!isObject(media)) return bad('RM_ERR_PROVIDER_MESSAGE', 'media needs a media object');
    // "media.track": inbound or outbound. Outbound is what the caller hears (both_tracks); not ours to process.
    if (media.track === 'outbound') return { kind: 'ignore' };
    if (media.track !== undefined && media.track !== 'inbound') {
      return bad('RM_ERR_PROVIDER_MESSAGE', 'media.track must be "inbound" or "outbound"');
    }
    const chunk = digits(media.chunk);
    if (media.chunk !== undefined && chunk === undefined) {
      return bad('RM_ERR_PROVIDER_MESSAGE', 'media.chunk must be a string of digits');
    }
    const audio = decodeBase64(media.payload);
    if (audio === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'media.payload must be base64');
    if (chunk !== undefined) {
      // Chunks count from "1"; a repeated or older chunk would be processed twice or out of order.
      if (chunk <= this.lastChunk)
        return bad('RM_ERR_PROVIDER_SEQUENCE', `media chunk ${chunk} repeats or is out of order`);
      this.lastChunk = chunk;
    }
    return { kind: 'media', audio };
  }

  /** "DTMF message": { event: "dtmf", streamSid, sequenceNumber, dtmf: { track: "inbound_track", digit } }. */
  private dtmf(m: Record<string, unknown>): Inbound {
    const digit = isObject(m.dtmf) ? dtmfDigit(m.dtmf.digit) : undefined;
    if (digit === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'dtmf needs dtmf.digit (0-9, *, #, A-D)');
    return { kind: 'dtmf', digit, duration_ms: null };
  }

  binary(): Inbound {
    // Media Streams send no binary messages.
    return bad('RM_ERR_PROVIDER_MESSAGE', 'Twilio Media Streams send JSON text messages only');
  }

  /** "Send a media message": { event: "media", streamSid, media: { payload } } — base64 μ-law 8 kHz. */
  media(chunk: Uint8Array): Outbound {
    return text({
      event: 'media',
      streamSid: this.streamSid,
      media: { payload: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64') },
    });
  }

  /** "Send a mark message": { event: "mark", streamSid, mark: { name } }; Twilio echoes it once played. */
  mark(name: string): Outbound {
    return text({ event: 'mark', streamSid: this.streamSid, mark: { name } });
  }

  /** "Send a clear message": { event: "clear", streamSid } — empties Twilio's buffer, echoes pending marks. */
  clear(): Outbound[] {
    return [text({ event: 'clear', streamSid: this.streamSid })];
  }
}
