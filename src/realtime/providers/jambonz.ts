/**
 * jambonz `listen` (docs/telephony/README.md), as jambonz documents the verb (docs.jambonz.org/verbs/verbs/listen) and its
 * bidirectional streaming audio (docs "Bidirectional (streaming) audio", release 0.9.0 and later).
 *
 *   awaiting_metadata ──first text message (call attributes + sampleRate + mixType)──▶ streaming
 *
 * jambonz connects with the subprotocol `audio.jambonz.org` (the endpoint answers it; see the transports).
 * The first message is text: the call attributes of the webhook (`callSid`, `from`, `to`, …), `sampleRate`,
 * `mixType` and the verb's `metadata`. Then caller audio arrives as binary L16 at `sampleRate`
 * (`mixType: "stereo"` interleaves two channels). With `bidirectionalAudio: { enabled: true,
 * streaming: true, sampleRate }`, binary L16 sent back is played to the caller; JSON commands:
 * `{"type":"mark","data":{"name"}}` (answered `{"type":"mark","data":{"name","event":"playout"}}`, or
 * `"event":"cleared"` when a kill discards it), `{"type":"killAudio"}` and `{"type":"clearMarks"}`.
 * With `passDtmf: true`, digits arrive as `{"event":"dtmf","dtmf":"5","duration":"…"}`.
 */
import {
  type AudioFormat,
  bad,
  type CallInfo,
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

/** The WebSocket subprotocol jambonz asks for (RFC 6455 §1.9). */
export const JAMBONZ_SUBPROTOCOL = 'audio.jambonz.org';

/** listen `sampleRate`: "8000, 16000, 24000, 48000, or 64000". */
const RATES = new Set([8000, 16000, 24000, 48000, 64000]);

export class JambonzWire implements ProviderWire {
  readonly provider = 'jambonz' as const;
  private format: AudioFormat | undefined;

  text(message: string): Inbound {
    const parsed = parseJson(message);
    if (!parsed.ok) return parsed.error;
    const m = parsed.value;
    if (this.format === undefined) return this.metadata(m);
    if (m.event === 'dtmf') {
      const digit = dtmfDigit(m.dtmf);
      if (digit === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'dtmf needs a "dtmf" digit');
      return { kind: 'dtmf', digit, duration_ms: digits(m.duration) ?? null };
    }
    if (m.type === 'mark') {
      const data = m.data;
      const name = isObject(data) ? str(data.name, 256) : undefined;
      if (name === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'mark needs data.name');
      // A mark discarded by killAudio/clearMarks was not played.
      if (isObject(data) && data.event === 'cleared') return { kind: 'ignore' };
      return { kind: 'mark', name };
    }
    return bad('RM_ERR_PROVIDER_MESSAGE', 'unknown jambonz message');
  }

  private metadata(m: Record<string, unknown>): Inbound {
    const rate = digits(m.sampleRate);
    if (rate === undefined || !RATES.has(rate)) {
      return bad(
        'RM_ERR_PROVIDER_FORMAT',
        'metadata needs sampleRate 8000, 16000, 24000, 48000 or 64000',
        true,
      );
    }
    const mixType = m.mixType ?? 'mono';
    if (mixType !== 'mono' && mixType !== 'stereo' && mixType !== 'mixed') {
      return bad('RM_ERR_PROVIDER_FORMAT', 'mixType must be mono, stereo or mixed', true);
    }
    this.format = { encoding: 's16le', sample_rate: rate, channels: mixType === 'stereo' ? 2 : 1 };
    const call: CallInfo = {
      ...stringRecord(m, ['sampleRate', 'mixType', 'metadata', 'customerData']),
      metadata: stringRecord(m.metadata),
    };
    const callSid = str(m.callSid ?? m.call_sid, 128);
    if (callSid !== undefined) call.call_sid = callSid;
    // Playback is mono at the same rate: set bidirectionalAudio.sampleRate to the listen sampleRate.
    return { kind: 'start', call, input: this.format, output: { ...this.format, channels: 1 } };
  }

  binary(data: Uint8Array): Inbound {
    if (this.format === undefined)
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'binary audio before the metadata message', true);
    if (data.byteLength % (2 * this.format.channels) !== 0) {
      return bad('RM_ERR_PROVIDER_MESSAGE', 'L16 audio needs whole sample frames');
    }
    return { kind: 'media', audio: data };
  }

  media(chunk: Uint8Array): Outbound {
    return { binary: chunk };
  }

  mark(name: string): Outbound {
    return text({ type: 'mark', data: { name } });
  }

  clear(): Outbound[] {
    return [text({ type: 'killAudio' }), text({ type: 'clearMarks' })];
  }
}
