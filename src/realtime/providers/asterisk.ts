/**
 * Asterisk `chan_websocket` (docs/telephony/README.md), as the Asterisk documentation describes the WebSocket channel
 * driver (docs.asterisk.org, Configuration / Channel Drivers / WebSocket, "Protocol"), for a dial string
 * such as `Dial(WebSocket/remotemedia/c(slin16))`.
 *
 *   awaiting_media_start ──MEDIA_START──▶ streaming
 *
 * Media is binary in the negotiated codec (`ulaw`, `alaw`, `slin` = 8 kHz, `slinNN` = NN kHz signed
 * linear); control is TEXT, either plain text (`MEDIA_START connection_id:… channel:… format:ulaw
 * optimal_frame_size:160 ptime:20`) or, with the `f(json)` dial option, JSON (`{"event":"MEDIA_START",…}`).
 * We answer in the form Asterisk used. Notifications we read: `MEDIA_START`, `DTMF_END digit:5`,
 * `MEDIA_XOFF` / `MEDIA_XON` (its queue is near its ~1000-frame limit / has drained below ~800),
 * `MEDIA_MARK_PROCESSED <id>` (answer to `MARK_MEDIA <id>`, sent when the queue reaches the mark);
 * `QUEUE_DRAINED`, `STATUS`, `MEDIA_BUFFERING_COMPLETED` and `ERROR` need nothing. Commands we send:
 * `MARK_MEDIA <id>` and `FLUSH_MEDIA` (drops queued media and queued marks; no answer). Commands are
 * case-sensitive and at most 128 bytes.
 */
import {
  type AudioFormat,
  bad,
  dtmfDigit,
  type Inbound,
  type Outbound,
  type ProviderWire,
  parseJson,
  str,
  stringRecord,
} from './wire.js';

/** chan_websocket reads at most 128 bytes of a TEXT message. */
const MAX_COMMAND = 128;

/** An Asterisk format name → our wire format (Asterisk slin is host-order PCM: little-endian on x86/ARM). */
function formatOf(name: string): AudioFormat | undefined {
  if (name === 'ulaw') return { encoding: 'mulaw', sample_rate: 8000, channels: 1 };
  if (name === 'alaw') return { encoding: 'alaw', sample_rate: 8000, channels: 1 };
  if (name === 'slin') return { encoding: 's16le', sample_rate: 8000, channels: 1 };
  const m = /^slin(12|16|24|32|44|48|96|192)$/.exec(name);
  if (m?.[1] === undefined) return undefined;
  const khz = Number(m[1]);
  return { encoding: 's16le', sample_rate: khz === 44 ? 44100 : khz * 1000, channels: 1 };
}

/** `NAME key:value key:value …` → { event, fields }; values hold no spaces in the documented messages. */
function parsePlain(message: string): { event: string; fields: Record<string, string>; rest: string } {
  const trimmed = message.trim();
  const space = trimmed.indexOf(' ');
  const event = space === -1 ? trimmed : trimmed.slice(0, space);
  const rest = space === -1 ? '' : trimmed.slice(space + 1).trim();
  const fields: Record<string, string> = {};
  for (const part of rest.split(/\s+/)) {
    const colon = part.indexOf(':');
    if (colon > 0) fields[part.slice(0, colon)] = part.slice(colon + 1);
  }
  return { event, fields, rest };
}

export class AsteriskWire implements ProviderWire {
  readonly provider = 'asterisk' as const;
  private format: AudioFormat | undefined;
  private json = false;

  text(message: string): Inbound {
    let event: string;
    let fields: Record<string, string>;
    let rest = '';
    if (message.trimStart().startsWith('{')) {
      const parsed = parseJson(message);
      if (!parsed.ok) return parsed.error;
      event = str(parsed.value.event, 64) ?? '';
      fields = stringRecord(parsed.value);
      if (this.format === undefined) this.json = true;
    } else {
      if (message.length > 4096)
        return bad('RM_ERR_PROVIDER_MESSAGE', 'control messages are limited to 4096 bytes');
      ({ event, fields, rest } = parsePlain(message));
    }
    switch (event) {
      case 'MEDIA_START':
        return this.mediaStart(fields);
      case 'DTMF_END': {
        const digit = dtmfDigit(fields.digit);
        if (digit === undefined) return bad('RM_ERR_PROVIDER_MESSAGE', 'DTMF_END needs digit:<key>');
        return { kind: 'dtmf', digit, duration_ms: null };
      }
      case 'MEDIA_XOFF':
        return { kind: 'flow', paused: true };
      case 'MEDIA_XON':
        return { kind: 'flow', paused: false };
      case 'MEDIA_MARK_PROCESSED': {
        // JSON: { "correlation_id": "<id>" }. Plain text appends the id to the event name, as the
        // documentation shows for `MEDIA_BUFFERING_COMPLETED <id>`; a `correlation_id:<id>` field is taken too.
        const name = this.json ? fields.correlation_id : (fields.correlation_id ?? rest.split(/\s+/)[0]);
        if (!name) return bad('RM_ERR_PROVIDER_MESSAGE', 'MEDIA_MARK_PROCESSED needs an id');
        return { kind: 'mark', name };
      }
      case 'QUEUE_DRAINED':
      case 'STATUS':
      case 'MEDIA_BUFFERING_COMPLETED':
      case 'ERROR':
        return { kind: 'ignore' };
      default:
        return bad('RM_ERR_PROVIDER_MESSAGE', `unknown notification "${event.slice(0, 32)}"`);
    }
  }

  private mediaStart(fields: Record<string, string>): Inbound {
    if (this.format !== undefined) return bad('RM_ERR_PROVIDER_SEQUENCE', 'a second MEDIA_START', true);
    const format = formatOf(fields.format ?? '');
    if (format === undefined) {
      return bad(
        'RM_ERR_PROVIDER_FORMAT',
        'format must be ulaw, alaw, slin or slinNN (dial with c(ulaw) or c(slin16))',
        true,
      );
    }
    this.format = format;
    const call = {
      connection_id: fields.connection_id ?? '',
      channel: fields.channel ?? '',
      ...(fields.channel_id ? { channel_id: fields.channel_id } : {}),
      format: fields.format ?? '',
    };
    return { kind: 'start', call, input: format, output: format };
  }

  binary(data: Uint8Array): Inbound {
    if (this.format === undefined)
      return bad('RM_ERR_PROVIDER_SEQUENCE', 'binary media before MEDIA_START', true);
    if (this.format.encoding === 's16le' && data.byteLength % 2 !== 0) {
      return bad('RM_ERR_PROVIDER_MESSAGE', 'signed linear media needs an even byte count');
    }
    return { kind: 'media', audio: data };
  }

  media(chunk: Uint8Array): Outbound {
    return { binary: chunk };
  }

  private command(command: string, id?: string): Outbound {
    if (this.json)
      return { text: JSON.stringify(id === undefined ? { command } : { command, correlation_id: id }) };
    return { text: (id === undefined ? command : `${command} ${id}`).slice(0, MAX_COMMAND) };
  }

  mark(name: string): Outbound {
    return this.command('MARK_MEDIA', name);
  }

  clear(): Outbound[] {
    return [this.command('FLUSH_MEDIA')];
  }
}
