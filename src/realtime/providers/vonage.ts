/**
 * Vonage Voice API WebSockets (docs/telephony/README.md), as Vonage documents them in "WebSockets in the Vonage Voice API"
 * (developer.vonage.com/en/voice/voice-api/concepts/websockets) and the NCCO `connect` action with a
 * `websocket` endpoint.
 *
 *   awaiting_connected ──{"event":"websocket:connected",…}──▶ streaming
 *
 * The first message is text: `event: "websocket:connected"`, the `content-type` of the endpoint
 * (`audio/l16;rate=16000` or `audio/l16;rate=8000`) and the endpoint's custom `headers`. After it, caller
 * audio is binary: 16-bit signed little-endian linear PCM, mono, one 20 ms message each (640 bytes at
 * 16 kHz, 320 at 8 kHz). Audio sent back is binary in the same format. Text commands back:
 * `{"action":"clear"}` (answered `websocket:cleared`) and `{"action":"notify","payload":{…}}` (answered
 * `websocket:notify` with the payload once the audio queued before it has played). DTMF arrives as
 * `websocket:dtmf`.
 */
import {
  type AudioFormat,
  bad,
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

/** `audio/l16;rate=16000` (parameters may carry spaces; media types are case-insensitive, RFC 2045 §5.1). */
const CONTENT_TYPE = /^\s*audio\/l16\s*;\s*rate\s*=\s*(8000|16000)\s*$/i;

export class VonageWire implements ProviderWire {
  readonly provider = 'vonage' as const;
  private format: AudioFormat | undefined;

  text(message: string): Inbound {
    const parsed = parseJson(message);
    if (!parsed.ok) return parsed.error;
    const m = parsed.value;
    switch (m.event) {
      case 'websocket:connected':
        return this.connected(m);
      case 'websocket:dtmf': {
        // { "event": "websocket:dtmf", "digit": "5", "duration": 260 }
        const digit = dtmfDigit(m.digit);
        if (digit === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'websocket:dtmf needs a digit');
        return { kind: 'dtmf', digit, duration_ms: digits(m.duration) ?? null };
      }
      case 'websocket:notify': {
        // Our notify payloads are { name }: Vonage returns the payload as it was sent.
        const name = isObject(m.payload) ? str(m.payload.name, 256) : undefined;
        if (name === undefined) return { kind: 'ignore' };
        return { kind: 'mark', name };
      }
      case 'websocket:cleared':
        return { kind: 'cleared' };
      default:
        return bad(
          'RM_ERR_PROVIDER_MESSAGE',
          typeof m.event === 'string'
            ? `unknown event "${m.event.slice(0, 32)}"`
            : 'message needs an "event"',
        );
    }
  }

  private connected(m: Record<string, unknown>): Inbound {
    if (this.format !== undefined)
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'a second websocket:connected', true);
    const contentType = str(m['content-type'], 64);
    const rate = contentType === undefined ? undefined : CONTENT_TYPE.exec(contentType)?.[1];
    if (rate === undefined) {
      return bad(
        'RM_ERR_PROVIDER_FORMAT',
        'content-type must be audio/l16;rate=16000 or audio/l16;rate=8000',
        true,
      );
    }
    this.format = { encoding: 's16le', sample_rate: Number(rate), channels: 1 };
    // Everything else in the first message is the endpoint's custom headers (NCCO `endpoint[].headers`).
    const headers = stringRecord(m, ['event', 'content-type']);
    const call = { ...(headers.uuid ? { uuid: headers.uuid } : {}), headers };
    return { kind: 'start', call, input: this.format, output: this.format };
  }

  binary(data: Uint8Array): Inbound {
    if (this.format === undefined) {
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'binary audio before websocket:connected', true);
    }
    // L16 is two bytes a sample; an odd length cannot be audio.
    if (data.byteLength % 2 !== 0)
      return bad('RM_ERR_PROVIDER_MESSAGE', 'L16 audio needs an even byte count');
    return { kind: 'media', audio: data };
  }

  media(chunk: Uint8Array): Outbound {
    return { binary: chunk };
  }

  mark(name: string): Outbound {
    return text({ action: 'notify', payload: { name } });
  }

  clear(): Outbound[] {
    return [text({ action: 'clear' })];
  }
}
