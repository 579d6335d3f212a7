/** The provider wire adapters of docs/telephony/README.md, message by message, as each provider documents its protocol. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AsteriskWire } from '../../src/realtime/providers/asterisk.js';
import { JambonzWire } from '../../src/realtime/providers/jambonz.js';
import { TwilioWire } from '../../src/realtime/providers/twilio.js';
import { VonageWire } from '../../src/realtime/providers/vonage.js';
import { MAX_PROVIDER_TEXT } from '../../src/realtime/providers/wire.js';

const twilioStart = {
  event: 'start',
  sequenceNumber: '1',
  start: {
    accountSid: 'AC123',
    streamSid: 'MZ123',
    callSid: 'CA123',
    tracks: ['inbound', 'outbound'],
    customParameters: { caller: 'ada', lang: 'en' },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
  streamSid: 'MZ123',
};
const media = (chunk: string, track = 'inbound', bytes = 160) => ({
  event: 'media',
  sequenceNumber: String(Number(chunk) + 1),
  media: {
    track,
    chunk,
    timestamp: String(Number(chunk) * 20),
    payload: Buffer.alloc(bytes, 0xff).toString('base64'),
  },
  streamSid: 'MZ123',
});

describe('Twilio Media Streams', () => {
  it('maps connected, start, media, dtmf, mark and stop as Twilio documents them (numbers as strings)', () => {
    const w = new TwilioWire();
    expect(w.text(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }))).toEqual({
      kind: 'ignore',
    });
    const start = w.text(JSON.stringify(twilioStart));
    expect(start).toMatchObject({
      kind: 'start',
      call: {
        stream_sid: 'MZ123',
        call_sid: 'CA123',
        account_sid: 'AC123',
        custom_parameters: { caller: 'ada', lang: 'en' },
      },
      input: { encoding: 'mulaw', sample_rate: 8000, channels: 1 },
    });
    const m = w.text(JSON.stringify(media('1')));
    expect(m.kind).toBe('media');
    if (m.kind === 'media') expect(Buffer.from(m.audio).equals(Buffer.alloc(160, 0xff))).toBe(true);
    // both_tracks: the outbound track is what the caller hears; it is not processed.
    expect(w.text(JSON.stringify(media('1', 'outbound')))).toEqual({ kind: 'ignore' });
    expect(
      w.text(
        JSON.stringify({
          event: 'dtmf',
          streamSid: 'MZ123',
          sequenceNumber: '5',
          dtmf: { track: 'inbound_track', digit: '#' },
        }),
      ),
    ).toEqual({ kind: 'dtmf', digit: '#', duration_ms: null });
    expect(
      w.text(
        JSON.stringify({ event: 'mark', sequenceNumber: '6', streamSid: 'MZ123', mark: { name: 'm1' } }),
      ),
    ).toEqual({
      kind: 'mark',
      name: 'm1',
    });
    expect(
      w.text(
        JSON.stringify({
          event: 'stop',
          sequenceNumber: '7',
          streamSid: 'MZ123',
          stop: { accountSid: 'AC123', callSid: 'CA123' },
        }),
      ),
    ).toEqual({ kind: 'stop' });
  });

  it('encodes media, mark and clear with the stream sid and base64 μ-law', () => {
    const w = new TwilioWire();
    w.text(JSON.stringify(twilioStart));
    expect(JSON.parse((w.media(new Uint8Array([1, 2, 3])) as { text: string }).text)).toEqual({
      event: 'media',
      streamSid: 'MZ123',
      media: { payload: 'AQID' },
    });
    expect(JSON.parse((w.mark('a') as { text: string }).text)).toEqual({
      event: 'mark',
      streamSid: 'MZ123',
      mark: { name: 'a' },
    });
    expect(w.clear().map((o) => JSON.parse((o as { text: string }).text))).toEqual([
      { event: 'clear', streamSid: 'MZ123' },
    ]);
  });

  it('refuses media before start (fatal), repeated chunks, bad base64 and a second start', () => {
    const w = new TwilioWire();
    expect(w.text(JSON.stringify(media('1')))).toMatchObject({
      kind: 'error',
      code: 'RM_ERR_PROVIDER_SEQUENCE',
      fatal: true,
    });
    w.text(JSON.stringify(twilioStart));
    expect(w.text(JSON.stringify(media('1'))).kind).toBe('media');
    expect(w.text(JSON.stringify(media('1')))).toMatchObject({
      kind: 'error',
      code: 'RM_ERR_PROVIDER_SEQUENCE',
      fatal: false,
    });
    const bad64 = media('2');
    bad64.media.payload = '@@@';
    expect(w.text(JSON.stringify(bad64))).toMatchObject({
      kind: 'error',
      code: 'RM_ERR_PROVIDER_MESSAGE',
      fatal: false,
    });
    expect(w.text(JSON.stringify(twilioStart))).toMatchObject({
      kind: 'error',
      code: 'RM_ERR_PROVIDER_SEQUENCE',
      fatal: true,
    });
    expect(w.text('{')).toMatchObject({ code: 'RM_ERR_PROVIDER_MESSAGE' });
    expect(w.text('x'.repeat(MAX_PROVIDER_TEXT + 1))).toMatchObject({ code: 'RM_ERR_PROVIDER_MESSAGE' });
    expect(w.binary()).toMatchObject({ code: 'RM_ERR_PROVIDER_MESSAGE' });
  });

  it('refuses a media format other than μ-law 8 kHz mono', () => {
    const w = new TwilioWire();
    const start = structuredClone(twilioStart);
    start.start.mediaFormat.sampleRate = 16000;
    expect(w.text(JSON.stringify(start))).toMatchObject({ code: 'RM_ERR_PROVIDER_FORMAT', fatal: true });
  });
});

describe('Vonage WebSockets', () => {
  it('reads the rate from the first message and keeps its custom headers', () => {
    const w = new VonageWire();
    expect(w.binary(new Uint8Array(640))).toMatchObject({ code: 'RM_ERR_PROVIDER_SEQUENCE', fatal: true });
    const start = w.text(
      JSON.stringify({
        event: 'websocket:connected',
        'content-type': 'audio/l16;rate=16000',
        uuid: 'u1',
        caller: 'ada',
      }),
    );
    expect(start).toMatchObject({
      kind: 'start',
      call: { uuid: 'u1', headers: { uuid: 'u1', caller: 'ada' } },
      input: { encoding: 's16le', sample_rate: 16000, channels: 1 },
    });
    expect(w.binary(new Uint8Array(640)).kind).toBe('media');
    expect(w.binary(new Uint8Array(3))).toMatchObject({ code: 'RM_ERR_PROVIDER_MESSAGE', fatal: false });
    expect(w.text(JSON.stringify({ event: 'websocket:dtmf', digit: '5', duration: 260 }))).toEqual({
      kind: 'dtmf',
      digit: '5',
      duration_ms: 260,
    });
    expect(w.text(JSON.stringify({ event: 'websocket:notify', payload: { name: 'm' } }))).toEqual({
      kind: 'mark',
      name: 'm',
    });
    expect(w.text(JSON.stringify({ event: 'websocket:cleared' }))).toEqual({ kind: 'cleared' });
    expect(JSON.parse((w.mark('m') as { text: string }).text)).toEqual({
      action: 'notify',
      payload: { name: 'm' },
    });
    expect(w.clear().map((o) => JSON.parse((o as { text: string }).text))).toEqual([{ action: 'clear' }]);
  });

  it('refuses rates other than 8000 and 16000', () => {
    const w = new VonageWire();
    expect(
      w.text(JSON.stringify({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=24000' })),
    ).toMatchObject({
      code: 'RM_ERR_PROVIDER_FORMAT',
      fatal: true,
    });
  });
});

describe('jambonz listen', () => {
  it('reads call attributes, sampleRate and mixType from the first text message', () => {
    const w = new JambonzWire();
    const start = w.text(
      JSON.stringify({
        callSid: 'c1',
        from: '+1555',
        to: '+1666',
        sampleRate: 16000,
        mixType: 'mono',
        metadata: { bot: 'x' },
      }),
    );
    expect(start).toMatchObject({
      kind: 'start',
      call: { callSid: 'c1', call_sid: 'c1', from: '+1555', metadata: { bot: 'x' } },
      input: { encoding: 's16le', sample_rate: 16000, channels: 1 },
    });
    expect(w.binary(new Uint8Array(640)).kind).toBe('media');
    expect(w.text(JSON.stringify({ event: 'dtmf', dtmf: '7', duration: '1600' }))).toEqual({
      kind: 'dtmf',
      digit: '7',
      duration_ms: 1600,
    });
    expect(w.text(JSON.stringify({ type: 'mark', data: { name: 'm', event: 'playout' } }))).toEqual({
      kind: 'mark',
      name: 'm',
    });
    expect(w.text(JSON.stringify({ type: 'mark', data: { name: 'm', event: 'cleared' } }))).toEqual({
      kind: 'ignore',
    });
    expect(w.clear().map((o) => JSON.parse((o as { text: string }).text))).toEqual([
      { type: 'killAudio' },
      { type: 'clearMarks' },
    ]);
  });

  it('takes stereo as two interleaved channels and refuses other rates', () => {
    const stereo = new JambonzWire();
    expect(stereo.text(JSON.stringify({ callSid: 'c', sampleRate: 8000, mixType: 'stereo' }))).toMatchObject({
      input: { channels: 2 },
    });
    expect(stereo.binary(new Uint8Array(6))).toMatchObject({ code: 'RM_ERR_PROVIDER_MESSAGE' });
    expect(new JambonzWire().text(JSON.stringify({ sampleRate: 11025 }))).toMatchObject({
      code: 'RM_ERR_PROVIDER_FORMAT',
      fatal: true,
    });
  });
});

describe('Asterisk chan_websocket', () => {
  it('reads plain-text MEDIA_START and answers in plain text', () => {
    const w = new AsteriskWire();
    expect(w.binary(new Uint8Array(160))).toMatchObject({ code: 'RM_ERR_PROVIDER_SEQUENCE', fatal: true });
    const start = w.text(
      'MEDIA_START connection_id:abc channel:WebSocket/abc/0x1 channel_id:1.1 format:slin16 optimal_frame_size:640 ptime:20',
    );
    expect(start).toMatchObject({
      kind: 'start',
      call: { connection_id: 'abc', channel: 'WebSocket/abc/0x1', channel_id: '1.1' },
      input: { encoding: 's16le', sample_rate: 16000, channels: 1 },
    });
    expect(w.text('DTMF_END digit:9 channel_id:1.1')).toEqual({
      kind: 'dtmf',
      digit: '9',
      duration_ms: null,
    });
    expect(w.text('MEDIA_XOFF')).toEqual({ kind: 'flow', paused: true });
    expect(w.text('MEDIA_XON')).toEqual({ kind: 'flow', paused: false });
    expect(w.text('MEDIA_MARK_PROCESSED m3')).toEqual({ kind: 'mark', name: 'm3' });
    expect(w.text('MEDIA_MARK_PROCESSED correlation_id:m4')).toEqual({ kind: 'mark', name: 'm4' });
    expect(w.text('QUEUE_DRAINED')).toEqual({ kind: 'ignore' });
    expect(w.mark('m3')).toEqual({ text: 'MARK_MEDIA m3' });
    expect(w.clear()).toEqual([{ text: 'FLUSH_MEDIA' }]);
  });

  it('reads JSON MEDIA_START (f(json)) and answers in JSON', () => {
    const w = new AsteriskWire();
    w.text(
      JSON.stringify({
        event: 'MEDIA_START',
        connection_id: 'c',
        channel: 'WebSocket/c',
        format: 'ulaw',
        optimal_frame_size: 160,
        ptime: 20,
      }),
    );
    expect(
      w.text(JSON.stringify({ event: 'MEDIA_MARK_PROCESSED', channel_id: '1', correlation_id: 'k' })),
    ).toEqual({ kind: 'mark', name: 'k' });
    expect(JSON.parse((w.mark('k') as { text: string }).text)).toEqual({
      command: 'MARK_MEDIA',
      correlation_id: 'k',
    });
  });

  it('refuses codecs it cannot reframe (opus)', () => {
    expect(
      new AsteriskWire().text('MEDIA_START connection_id:a channel:b format:opus optimal_frame_size:0'),
    ).toMatchObject({
      code: 'RM_ERR_PROVIDER_FORMAT',
      fatal: true,
    });
  });
});

describe.each([
  ['twilio', () => new TwilioWire()],
  ['vonage', () => new VonageWire()],
  ['jambonz', () => new JambonzWire()],
  ['asterisk', () => new AsteriskWire()],
])('%s parser on hostile input', (_name, make) => {
  it('never throws and answers every message with a result', () => {
    const w = make();
    const inputs = [
      '',
      ' ',
      'null',
      '[]',
      '1',
      '"x"',
      '{"event":null}',
      '{"__proto__":{"x":1}}',
      '{"event":"start","start":[]}',
      '\u0000\uffff',
      'MEDIA_START format:',
      '{"type":"mark","data":null}',
      'x'.repeat(MAX_PROVIDER_TEXT * 2),
    ];
    for (const input of inputs) expect(() => w.text(input)).not.toThrow();
    for (const n of [0, 1, 3, 65536]) expect(() => w.binary(new Uint8Array(n))).not.toThrow();
  });
});

describe('provider parsers under random input (fast-check)', () => {
  const events = [
    'connected',
    'start',
    'media',
    'dtmf',
    'mark',
    'stop',
    'websocket:connected',
    'websocket:dtmf',
    'websocket:notify',
    'websocket:cleared',
  ];
  const value = fc.letrec((tie) => ({
    any: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('any'), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 12 }), tie('any'), { maxKeys: 6 }),
    ),
  })).any;
  const message = fc.record({
    event: fc.oneof(fc.constantFrom(...events), fc.string()),
    type: fc.constantFrom('mark', 'killAudio', undefined),
    start: value,
    media: value,
    dtmf: value,
    mark: value,
    data: value,
    payload: value,
    sampleRate: fc.oneof(fc.constantFrom(8000, 16000, '16000'), value),
    'content-type': fc.oneof(fc.constant('audio/l16;rate=16000'), fc.string()),
  });

  it.each([
    ['twilio', () => new TwilioWire()],
    ['vonage', () => new VonageWire()],
    ['jambonz', () => new JambonzWire()],
    ['asterisk', () => new AsteriskWire()],
  ] as const)('%s: every message gets a result, none throws', (_name, make) => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            message.map((m) => JSON.stringify(m)),
            fc.string(),
            fc.uint8Array({ maxLength: 700 }),
          ),
          { maxLength: 20 },
        ),
        (inputs) => {
          const wire = make();
          for (const input of inputs) {
            const result = typeof input === 'string' ? wire.text(input) : wire.binary(input);
            expect(typeof result.kind).toBe('string');
          }
        },
      ),
      { numRuns: 300, seed: 14 },
    );
  });
});
