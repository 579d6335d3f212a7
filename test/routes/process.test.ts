import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav, wavHeader } from '../../src/native.js';
import { testApp } from '../support/app.js';
import { chunk, fixtureWavBytes, readFixtureWav } from '../support/audio.js';
import { streamFrames } from '../support/ws.js';

const asrDoc = {
  name: 'gain-downmix-resample',
  nodes: [
    { id: 'gain', type: 'gain', params: { db: -3 } },
    { id: 'mono', type: 'downmix' },
    { id: 'rs', type: 'resample', params: { sample_rate: 16000, quality: 'high' } },
  ],
};

const dtmfDoc = { name: 'dtmf', nodes: [{ id: 'keys', type: 'dtmf' }] };

let app: FastifyInstance;
let asrId: string;
let dtmfId: string;

beforeAll(async () => {
  // Frames are sent as fast as possible: a long queue bound keeps them all (no drops, docs/protocol.md §6).
  app = await testApp({ SESSION_QUEUE_MS: '60000' });
  asrId = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: asrDoc })).json().id;
  dtmfId = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: dtmfDoc })).json().id;
});
afterAll(async () => {
  await app.close();
});

function processWav(id: string, wav: Buffer, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: `/v1/pipelines/${id}/process`,
    payload: wav,
    headers: { 'content-type': 'audio/wav', ...headers },
  });
}

describe('POST /v1/pipelines/{id}/process', () => {
  it('answers a WAV in the pipeline output format, with latency and event headers', async () => {
    const wav = fixtureWavBytes('tones-48k-stereo.wav');
    const res = await processWav(asrId, wav);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(Number(res.headers['x-remotemedia-latency-ms'])).toBeGreaterThan(0);
    expect(res.headers['x-remotemedia-events']).toBe('0');
    const out = parseWav(res.rawPayload);
    expect(out).toMatchObject({ sample_rate: 16000, channels: 1, encoding: 's16le' });
    const inFrames = parseWav(wav).data_bytes / 4;
    // Resampled to a third, within the filter's tail.
    expect(Math.abs(out.data_bytes / 2 - inFrames / 3)).toBeLessThan(200);
  });

  it('answers JSON with Accept: application/json, events included (dtmf-8k-159.wav decodes 1, 5, 9)', async () => {
    const res = await processWav(dtmfId, fixtureWavBytes('dtmf-8k-159.wav'), { accept: 'application/json' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.format).toEqual({ sample_rate: 8000, channels: 1, encoding: 's16le' });
    expect(body.latency_ms).toBe(0);
    const digits = body.events
      .filter((e: { name: string }) => e.name === 'digit')
      .map((e: { data: { digit: string } }) => e.data.digit);
    expect(digits).toEqual(['1', '5', '9']);
    // dtmf passes audio through untouched.
    expect(Buffer.from(body.audio_base64, 'base64').equals(readFixtureWav('dtmf-8k-159.wav').pcm)).toBe(true);
    expect(res.headers['x-remotemedia-events']).toBe(String(body.events.length));
  });

  it('keeps the sample encoding: f32le in, f32le out', async () => {
    const { pcm } = readFixtureWav('speech-16k-mono.wav');
    const floats = Buffer.alloc((pcm.length / 2) * 4);
    for (let i = 0; i < pcm.length / 2; i++) floats.writeFloatLE(pcm.readInt16LE(i * 2) / 32768, i * 4);
    const wav = Buffer.concat([wavHeader(16000, 1, 'f32le', floats.length), floats]);
    const gain = (
      await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: { name: 'g', nodes: [{ id: 'g', type: 'gain', params: { db: 0.5 } }] },
      })
    ).json().id;
    const res = await processWav(gain, wav, { 'content-type': 'application/octet-stream' });
    expect(res.statusCode).toBe(200);
    expect(parseWav(res.rawPayload)).toMatchObject({ sample_rate: 16000, channels: 1, encoding: 'f32le' });
  });

  it.each(['audio/x-wav', 'audio/wave'])('takes %s', async (type) => {
    const res = await processWav(dtmfId, fixtureWavBytes('dtmf-8k-159.wav'), { 'content-type': type });
    expect(res.statusCode).toBe(200);
  });

  it('answers 415 for what is not a supported WAV, 400 for an empty upload, 415 for other content types, 413 over MAX_UPLOAD_BYTES', async () => {
    const garbage = await processWav(asrId, Buffer.from('RIFF....WAVEfmt nope'));
    expect(garbage.statusCode).toBe(415);
    expect(garbage.json().code).toBe('RM_ERR_BAD_WAV');
    const empty = await processWav(asrId, Buffer.alloc(0));
    expect(empty.statusCode).toBe(400);
    expect(empty.json().code).toBe('RM_ERR_EMPTY_AUDIO');
    // 8-bit PCM: a WAV, but not an encoding the server takes.
    const header = Buffer.from(wavHeader(8000, 1, 's16le', 100));
    header.writeUInt16LE(8, 34);
    header.writeUInt16LE(1, 32);
    header.writeUInt32LE(8000, 28);
    const eightBit = await processWav(asrId, Buffer.concat([header, Buffer.alloc(100)]));
    expect(eightBit.statusCode).toBe(415);
    const json = await app.inject({
      method: 'POST',
      url: `/v1/pipelines/${asrId}/process`,
      payload: { a: 1 },
    });
    expect(json.statusCode).toBe(415);
    expect(json.json().code).toBe('RM_ERR_UNSUPPORTED_MEDIA_TYPE');
    const none = await app.inject({ method: 'POST', url: `/v1/pipelines/${asrId}/process` });
    expect(none.statusCode).toBe(415);

    const small = await testApp({ MAX_UPLOAD_BYTES: '2048' });
    try {
      const id = (await small.inject({ method: 'POST', url: '/v1/pipelines', payload: dtmfDoc })).json().id;
      const big = await small.inject({
        method: 'POST',
        url: `/v1/pipelines/${id}/process`,
        payload: fixtureWavBytes('dtmf-8k-159.wav'),
        headers: { 'content-type': 'audio/wav' },
      });
      expect(big.statusCode).toBe(413);
      expect(big.json().code).toBe('RM_ERR_PAYLOAD_TOO_LARGE');
    } finally {
      await small.close();
    }
  });

  it('answers 404 for an unknown pipeline and 422 when the pipeline cannot take the file format', async () => {
    const missing = await processWav('pl_aaaaaaaaaaaaaaaa', fixtureWavBytes('dtmf-8k-159.wav'));
    expect(missing.statusCode).toBe(404);
    const denoise = (
      await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: { name: 'dn', nodes: [{ id: 'd', type: 'denoise' }] },
      })
    ).json().id;
    const conflict = await processWav(denoise, fixtureWavBytes('speech-16k-mono.wav'));
    expect(conflict.statusCode).toBe(422);
    // The same code as a streaming `start` the pipeline cannot take; the details point at the node.
    expect(conflict.json().code).toBe('RM_ERR_FORMAT_CONFLICT');
    expect(conflict.json().errors[0]).toMatchObject({ code: 'RM_PIPE_FORMAT_CONFLICT', path: '/nodes/0' });
  });

  it('gives the same audio and events as streaming the same file over a WebSocket (docs/rest.md)', async () => {
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const wsUrl = `${url.replace('http', 'ws')}/v1/pipelines/${asrId}/stream`;
    const { info, pcm } = readFixtureWav('tones-48k-stereo.wav');
    const offline = await processWav(asrId, fixtureWavBytes('tones-48k-stereo.wav'), {
      accept: 'application/json',
    });
    const offlineAudio = Buffer.from(offline.json().audio_base64, 'base64');
    for (const ms of [20, 37]) {
      const frames = chunk(pcm, 4, info.sample_rate, ms);
      const streamed = await streamFrames(
        wsUrl,
        { encoding: 's16le', sample_rate: 48000, channels: 2 },
        frames,
      );
      expect(streamed.close.code).toBe(1000);
      expect(streamed.text.filter((m) => m.type === 'dropped' || m.type === 'error')).toEqual([]);
      // One answer per frame, then the flushed tail (docs/protocol.md §3, §5).
      expect(streamed.binary.length).toBe(frames.length + 1);
      expect(Buffer.concat(streamed.binary).equals(offlineAudio)).toBe(true);
    }
  });
});
