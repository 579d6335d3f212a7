import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableFaultNodes } from '../../src/native.js';
import type { Planner } from '../../src/realtime/session.js';
import { chunk, readFixtureWav } from '../support/audio.js';
import { asrFrontEnd, type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const speech = readFixtureWav('speech-48k-mono.wav');
const startMono = { type: 'start', input: { encoding: 's16le', sample_rate: 48000, channels: 1 } };
const frames20ms = chunk(speech.pcm, 2, 48000, 20);

/**
 * A session that streams the recording in real time (20 ms apart) while a test misbehaves on another
 * session of the same server; it must get every answer, in order, and a clean stop.
 */
async function bystander(url: string): Promise<() => Promise<void>> {
  const c = await TestClient.connect(url);
  c.send(startMono);
  await c.next('ready');
  let i = 0;
  const timer = setInterval(() => {
    const f = frames20ms[i++ % frames20ms.length];
    if (f) c.sendRaw(f, true);
  }, 20);
  return async () => {
    clearInterval(timer);
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    const stats = c.texts().find((t) => t.type === 'stats');
    expect(stats).toMatchObject({ frames_in: i, frames_out: i, frames_dropped: 0, frame_errors: 0 });
    expect(c.texts().filter((t) => t.type === 'error')).toEqual([]);
  };
}

describe.each(['ws', 'uws'] as const)('bad input over %s', (transport) => {
  let server: Running;
  let asrId: string;
  let faultyId: string;
  const url = (id: string, query = '') => `${server.base[transport]}/v1/pipelines/${id}/stream${query}`;

  beforeAll(async () => {
    // The bystander must not lose frames because this machine is busy (frames waiting longer than
    // SESSION_QUEUE_MS are dropped by design, and a worker recovering from a panic is slower still on a
    // loaded machine); that is not what these tests are about: the queue bound has tests of its own below.
    server = await startTestServer({ MAX_FRAME_BYTES: '8192', SESSION_QUEUE_MS: '5000' });
    asrId = await storePipeline(server.app, asrFrontEnd);
    faultyId = await storePipeline(server.app, { name: 'faulty', nodes: [{ id: 'g', type: 'gain' }] });
    // The fault-injection node is unknown to the document schema by design, so this one pipeline's
    // plan is written by hand; everything else (transport, session, engine) is the real path.
    enableFaultNodes();
    const deps = server.app.realtime.deps as { plan: Planner };
    const realPlan = deps.plan;
    deps.plan = (definition, input) =>
      (definition as { name?: string }).name === 'faulty'
        ? {
            ok: true,
            plan: {
              input,
              nodes: [{ id: 'boom', type: '__panic', params: { after_frames: 4800 }, input: null }],
              output: 'boom',
            },
          }
        : realPlan(definition, input);
  });
  afterAll(() => server.close());

  it('answers garbage, unknown and malformed messages with errors while another session streams on', async () => {
    const done = await bystander(url(asrId));
    const c = await TestClient.connect(url(asrId));
    c.sendRaw('{not json');
    c.sendRaw('{"type":"dance"}');
    c.sendRaw('[1,2]');
    c.send({ type: 'start', input: { encoding: 'vorbis', sample_rate: 48000, channels: 1 } });
    c.send({ type: 'flush' });
    await c.until((x) => x.texts().length >= 5);
    expect(c.texts().map((t) => t.code)).toEqual([
      'RM_ERR_BAD_JSON',
      'RM_ERR_UNKNOWN_MESSAGE',
      'RM_ERR_BAD_MESSAGE',
      'RM_ERR_BAD_MESSAGE',
      'RM_ERR_NOT_STARTED',
    ]);
    // The session is still usable.
    c.send(startMono);
    await c.next('ready');
    // An odd-length frame gets an error in place of its answer; the next frame is answered.
    c.sendRaw(Buffer.alloc(7), true);
    c.sendRaw(Buffer.alloc(960), true);
    await c.until((x) => x.binaries().length === 1);
    expect(c.texts().find((t) => t.code === 'RM_ERR_BAD_FRAME')).toMatchObject({ type: 'error', frame: 0 });
    c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 48000, channels: 1 } });
    expect((await c.next('error')).code).toBeDefined();
    c.close();
    await done();
  });

  it('closes binary-before-start with 1008 and oversized messages with 1009', async () => {
    const done = await bystander(url(asrId));
    const early = await TestClient.connect(url(asrId));
    early.sendRaw(Buffer.alloc(4), true);
    expect(await early.closed).toBe(1008);
    const big = await TestClient.connect(url(asrId));
    big.send(startMono);
    await big.next('ready');
    big.sendRaw(Buffer.alloc(8194), true);
    expect(await big.closed).toBe(1009);
    await done();
  });

  it('refuses unknown pipelines (404) before the upgrade', async () => {
    await expect(TestClient.connect(url('pl_doesnotexist0000'))).rejects.toMatchObject({ status: 404 });
  });

  it('closes only the session whose node panics, with 1011', async () => {
    const done = await bystander(url(asrId));
    const c = await TestClient.connect(url(faultyId));
    c.send(startMono);
    await c.next('ready');
    for (const f of frames20ms.slice(0, 10)) c.sendRaw(f, true);
    expect(await c.closed).toBe(1011);
    expect(c.texts().find((t) => t.type === 'error')).toMatchObject({ code: 'RM_ERR_SESSION_FAILED' });
    // 4800 frames = five 20 ms frames pass before the panic.
    expect(c.binaries()).toHaveLength(5);
    await done();
  });
});

/** Sends `frames` at once, then stop; resolves with what came back once the session closed. */
async function blast(url: string, frames: Buffer[]) {
  const c = await TestClient.connect(url);
  c.send(startMono);
  await c.next('ready');
  for (const f of frames) c.sendRaw(f, true);
  c.send({ type: 'stop' });
  expect(await c.closed).toBe(1000);
  const dropped = c.texts().flatMap((t) => (t.type === 'dropped' ? (t.frames as number[]) : []));
  return {
    dropped,
    answered: c.binaries().length - 1, // minus the flush tail
    stats: c.texts().find((t) => t.type === 'stats'),
  };
}

describe.each(['ws', 'uws'] as const)(
  'the queue bound (docs/protocol.md (queue bound)) over %s',
  (transport) => {
    it('answers in full a burst the engine absorbs in time', async () => {
      const server = await startTestServer({});
      try {
        const id = await storePipeline(server.app, { name: 'light', nodes: [{ id: 'g', type: 'gain' }] });
        // Two seconds of audio at once: ten times SESSION_QUEUE_MS (200 ms) of audio queued.
        const frames = Array.from({ length: 100 }, (_, i) => frames20ms[i % frames20ms.length] as Buffer);
        const r = await blast(`${server.base[transport]}/v1/pipelines/${id}/stream`, frames);
        expect(r.dropped).toEqual([]);
        expect(r.answered).toBe(100);
        expect(r.stats).toMatchObject({ frames_in: 100, frames_out: 100, frames_dropped: 0 });
      } finally {
        await server.close();
      }
    });

    it('drops the frames that wait longer than SESSION_QUEUE_MS and says which', async () => {
      const server = await startTestServer({ SESSION_QUEUE_MS: '1', MAX_FRAME_BYTES: '65536' });
      try {
        const id = await storePipeline(server.app, asrFrontEnd);
        // 340 ms messages through the five-node pipeline: each takes the engine far longer than 1 ms.
        const long = chunk(speech.pcm, 2, 48000, 340);
        const n = 200;
        const frames = Array.from({ length: n }, (_, i) => long[i % long.length] as Buffer);
        const r = await blast(`${server.base[transport]}/v1/pipelines/${id}/stream`, frames);
        expect(r.dropped.length).toBeGreaterThan(0);
        expect(r.answered + r.dropped.length).toBe(n);
        expect(new Set(r.dropped).size).toBe(r.dropped.length);
        expect(r.dropped.every((f) => Number.isInteger(f) && f >= 0 && f < n)).toBe(true);
        expect(r.stats).toMatchObject({ frames_in: n, frames_dropped: r.dropped.length });
      } finally {
        await server.close();
      }
    });
  },
);

describe.each(['ws', 'uws'] as const)('admission and limits over %s', (transport) => {
  it('checks API keys (header or ?token=) and MAX_SESSIONS before the upgrade', async () => {
    const server = await startTestServer({ API_KEYS: 'k1,k2', MAX_SESSIONS: '1' });
    try {
      const id = await storePipeline(server.app, asrFrontEnd);
      const url = `${server.base[transport]}/v1/pipelines/${id}/stream`;
      await expect(TestClient.connect(url)).rejects.toMatchObject({ status: 401 });
      await expect(TestClient.connect(url, { authorization: 'Bearer nope' })).rejects.toMatchObject({
        status: 401,
      });
      const a = await TestClient.connect(url, { authorization: 'Bearer k2' });
      await expect(TestClient.connect(`${url}?token=k1`)).rejects.toMatchObject({ status: 503 });
      a.close();
      await a.closed;
      await new Promise((r) => setTimeout(r, 50));
      const b = await TestClient.connect(`${url}?token=k1`);
      b.close();
    } finally {
      await server.close();
    }
  });

  it('closes a session that exceeds the message rate limit with 1008', async () => {
    const server = await startTestServer({ MAX_MESSAGES_PER_SEC: '50' });
    try {
      const id = await storePipeline(server.app, asrFrontEnd);
      const c = await TestClient.connect(`${server.base[transport]}/v1/pipelines/${id}/stream`);
      for (let i = 0; i < 200; i++) c.send({ type: 'ping' });
      expect(await c.closed).toBe(1008);
      expect(c.texts().some((t) => t.code === 'RM_ERR_RATE_LIMITED')).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('drains on shutdown: flush, stats, close 1001, and no new upgrades', async () => {
    const server = await startTestServer({ SESSION_QUEUE_MS: '60000' });
    const id = await storePipeline(server.app, asrFrontEnd);
    const url = `${server.base[transport]}/v1/pipelines/${id}/stream`;
    const c = await TestClient.connect(url);
    c.send(startMono);
    await c.next('ready');
    for (const f of frames20ms.slice(0, 20)) c.sendRaw(f, true);
    await c.until((x) => x.binaries().length === 20);
    const closing = server.close();
    // Draining: readiness fails and new upgrades are refused while sessions flush.
    while (!server.app.realtime.isDraining) await new Promise((r) => setTimeout(r, 1));
    expect(
      await server.app.realtime.admit({ url: `/v1/pipelines/${id}/stream`, headers: {}, ip: '127.0.0.1' }),
    ).toMatchObject({
      ok: false,
      status: 503,
    });
    expect(await c.closed).toBe(1001);
    await closing;
    const texts = c.texts();
    expect(texts.at(-2)).toMatchObject({ type: 'flushed' });
    expect(texts.at(-1)).toMatchObject({ type: 'stats', frames_in: 20, frames_out: 20 });
    expect(c.binaries()).toHaveLength(21);
  });
});

describe.each(['ws', 'uws'] as const)('slow readers over %s', (transport) => {
  it('closes a client that stops reading with 1008 within 10 s', async () => {
    const server = await startTestServer({
      SESSION_QUEUE_MS: '60000',
      MAX_FRAME_BYTES: '65536',
      MAX_MESSAGES_PER_SEC: '1000000',
    });
    try {
      const id = await storePipeline(server.app, {
        name: 'wide',
        nodes: [{ id: 'up', type: 'upmix', params: { channels: 8 } }],
      });
      const c = await TestClient.connect(`${server.base[transport]}/v1/pipelines/${id}/stream`);
      c.send({
        type: 'start',
        input: { encoding: 's16le', sample_rate: 48000, channels: 1 },
        output: { encoding: 'f32le' },
      });
      await c.next('ready');
      // Stop reading, then make the server produce far more than the socket buffers hold (~30 KB per answer).
      const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      // Read again the moment the server gives up: the session leaves the registry just before its socket
      // is closed. uWS drops a socket whose output has not started to drain by its next timeout tick
      // (within 4 s of the close), so a client that came back later could get 1006 there instead.
      const [session] = server.app.realtime.sessions.values();
      const leave = session?.onClosed;
      let gaveUpAt: number | undefined;
      if (session) {
        session.onClosed = () => {
          gaveUpAt = Date.now();
          socket.resume();
          leave?.();
        };
      }
      const began = Date.now();
      for (let i = 0; i < 1500; i++) c.sendRaw(frames20ms[i % frames20ms.length] as Buffer, true);
      while (gaveUpAt === undefined) {
        expect(Date.now() - began).toBeLessThan(10_000);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(gaveUpAt - began).toBeGreaterThan(4_000);
      expect(gaveUpAt - began).toBeLessThan(10_000);
      expect(server.app.realtime.sessions.size).toBe(0);
      expect(await c.closed).toBe(1008);
      expect(c.closeReason).toBe('client is not reading');
    } finally {
      await server.close();
    }
  }, 20_000);
});
