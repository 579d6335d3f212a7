import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planWithEngine } from '../../src/planner.js';
import { uwsIsNative } from '../../src/realtime/transports/uws.js';
import { chunk, readFixtureWav } from '../support/audio.js';
import { asrFrontEnd, type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

let server: Running;
let asrId: string;
let gainId: string;

beforeAll(async () => {
  // Tests send whole files at once, far faster than real time: queue all of it (drops are tested apart).
  server = await startTestServer({ SESSION_QUEUE_MS: '60000' });
  asrId = await storePipeline(server.app, asrFrontEnd);
  gainId = await storePipeline(server.app, {
    name: 'gain',
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
  });
});
afterAll(() => server.close());

const speech = readFixtureWav('speech-48k-mono.wav');
const tones = readFixtureWav('tones-48k-stereo.wav');

/** Streams `messages` on a fresh session and returns the client after `stop` closed it. */
async function streamAll(url: string, start: object, messages: Buffer[]): Promise<TestClient> {
  const c = await TestClient.connect(url);
  c.send(start);
  await c.next('ready');
  for (const m of messages) c.sendRaw(m, true);
  c.send({ type: 'stop' });
  await c.closed;
  return c;
}

const start48kStereo = { type: 'start', input: { encoding: 's16le', sample_rate: 48000, channels: 2 } };

it('loads the native uWebSockets.js addon, not its JavaScript fallback', () => {
  // The package ships binaries for Node 20's ABI (115) only; elsewhere it falls back by design.
  if (process.versions.modules !== '115') return;
  expect(uwsIsNative).toBe(true);
});

describe.each(['ws', 'uws'] as const)('streaming over %s', (transport) => {
  const url = (id: string) => `${server.base[transport]}/v1/pipelines/${id}/stream`;

  it('answers ready with the negotiated output format and latency', async () => {
    const c = await TestClient.connect(url(asrId));
    c.send(start48kStereo);
    const ready = await c.next('ready');
    expect(ready).toMatchObject({
      type: 'ready',
      pipeline: { id: asrId, version: 1 },
      input: { encoding: 's16le', sample_rate: 48000, channels: 2 },
      output: { encoding: 's16le', sample_rate: 16000, channels: 1 },
    });
    expect(ready.latency_ms).toBeGreaterThan(0);
    // resample `high` (SPEC §6 round 2, flat to 0.9 × Nyquist) delays 94 frames at 16 kHz.
    expect(ready.latency_ms).toBeLessThanOrEqual(6);
    c.close();
  });

  it('streams a recording in 20 ms frames to exactly what batch processing gives, events included', async () => {
    const messages = chunk(tones.pcm, 4, 48000, 20);
    const c = await streamAll(url(asrId), start48kStereo, messages);
    const binaries = c.binaries();
    // One answer per frame, then the flush tail.
    expect(binaries).toHaveLength(messages.length + 1);
    const planned = planWithEngine(asrFrontEnd, { inputFormat: { sample_rate: 48000, channels: 2 } });
    if (!planned.ok) throw new Error('plan failed');
    const batch = await server.app.engine.processBatch(
      planned.plan,
      { encoding: 's16le', sample_rate: 48000, channels: 2 },
      tones.pcm,
      's16le',
    );
    expect(Buffer.concat(binaries).equals(batch.audio)).toBe(true);
    // `frame` is the message an event came with (SPEC §4.5): 20 ms messages here, one-second ones in
    // the batch; everything else, the sample position included, must match.
    const withoutFrame = (events: readonly Record<string, unknown>[]) =>
      events.map(({ frame: _frame, ...rest }) => rest);
    const events = c.texts().filter((t) => t.type === 'event');
    expect(withoutFrame(events)).toEqual(withoutFrame(batch.events));
    const stats = c.texts().find((t) => t.type === 'stats');
    expect(stats).toMatchObject({
      frames_in: messages.length,
      frames_out: messages.length,
      frames_dropped: 0,
    });
    expect(c.closeCode).toBe(1000);
  });

  it('gives the same output for 10, 20 and 37 ms frames', async () => {
    const start = { type: 'start', input: { encoding: 's16le', sample_rate: 48000, channels: 1 } };
    const outputs: Buffer[] = [];
    for (const ms of [10, 20, 37]) {
      const c = await streamAll(url(asrId), start, chunk(speech.pcm, 2, 48000, ms));
      outputs.push(Buffer.concat(c.binaries()));
    }
    expect(outputs[1]?.equals(outputs[0] as Buffer)).toBe(true);
    expect(outputs[2]?.equals(outputs[0] as Buffer)).toBe(true);
  });

  it('detects speech in a recording and reports events with frame and sample positions', async () => {
    const start = { type: 'start', input: { encoding: 's16le', sample_rate: 48000, channels: 1 } };
    const c = await streamAll(url(asrId), start, chunk(speech.pcm, 2, 48000, 20));
    const vad = c.texts().filter((t) => t.type === 'event' && t.node === 'vad');
    expect(vad.map((e) => e.name)).toContain('speech_start');
    expect(vad.at(-1)?.name).toBe('speech_end');
    for (const e of vad) {
      expect(e.frame).toBeTypeOf('number');
      // 20 ms frames at 48 kHz are 960 input sample frames: an event lies in or before its frame.
      expect(e.sample as number).toBeLessThanOrEqual(((e.frame as number) + 1) * 960);
    }
  });

  it('converts encodings at both edges (mulaw in, f32le out)', async () => {
    const c = await TestClient.connect(url(gainId));
    c.send({
      type: 'start',
      input: { encoding: 'mulaw', sample_rate: 8000, channels: 1 },
      output: { encoding: 'f32le' },
    });
    expect(await c.next('ready')).toMatchObject({
      output: { encoding: 'f32le', sample_rate: 8000, channels: 1 },
    });
    // μ-law 0x80 is +32124/32768; -6 dB gain halves it.
    c.sendRaw(Buffer.from([0x80, 0x00, 0xff]), true);
    await c.until((x) => x.binaries().length === 1);
    const out = c.binaries()[0] as Buffer;
    expect(out.length).toBe(12);
    expect(out.readFloatLE(0)).toBeCloseTo((32124 / 32768) * 10 ** (-6 / 20), 5);
    expect(out.readFloatLE(4)).toBeCloseTo((-32124 / 32768) * 10 ** (-6 / 20), 5);
    expect(out.readFloatLE(8)).toBe(0);
    c.close();
  });

  it('applies params, flush and ping', async () => {
    const c = await TestClient.connect(url(gainId));
    c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 8000, channels: 1 } });
    await c.next('ready');
    c.send({ type: 'ping' });
    await c.next('pong');
    c.send({ type: 'params', node: 'g', params: { db: 0 } });
    expect(await c.next('params_applied')).toEqual({ type: 'params_applied', node: 'g', params: { db: 0 } });
    c.send({ type: 'params', node: 'nope', params: { db: 0 } });
    expect((await c.next('error')).code).toBe('RM_ERR_BAD_PARAMS');
    c.send({ type: 'flush' });
    await c.next('flushed');
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    expect(c.texts().find((t) => t.type === 'stats')).toBeDefined();
  });
});
