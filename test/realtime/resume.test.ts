/**
 * Resume (docs/protocol.md §8) on both transports, with real sockets killed at random points: a stream whose
 * socket drops (several times) and is resumed gives byte for byte the output of the same stream without a
 * drop. A wrong token is refused with 1008; after RESUME_GRACE_MS the session is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { asrFrontEnd, type Running, startTestServer, storePipeline } from '../support/server.js';
import { connect, record, type StreamRecord, streamFrames, waitFor } from '../support/ws.js';

const input = { encoding: 's16le', sample_rate: 48000, channels: 2 };
const FRAMES = 80;
const transports = ['ws', 'uws'] as const;

/** mulberry32: reproducible noise and kill points. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 20 ms frames of 48 kHz stereo noise (the resampler and normalizer carry state across them). */
function frames(seed: number): Buffer[] {
  const random = prng(seed);
  return Array.from({ length: FRAMES }, () => {
    const samples = new Int16Array(960 * 2);
    for (let i = 0; i < samples.length; i++) samples[i] = Math.round((random() * 2 - 1) * 12000);
    return Buffer.from(samples.buffer);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: Running | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Connection {
  ws: WebSocket;
  rec: StreamRecord;
  closed: Promise<StreamRecord>;
}

async function open(url: string): Promise<Connection> {
  const ws = await connect(url);
  const { record: rec, closed } = record(ws);
  return { ws, rec, closed };
}

/** The `resume` message a client sends for `ready`'s session (docs/protocol.md §8). */
function resumeMessage(
  ready: Record<string, unknown>,
  lastAnswer: number,
  token = ready.resume_token,
): string {
  return JSON.stringify({
    type: 'resume',
    session_id: ready.session_id,
    resume_token: token,
    last_answer: lastAnswer,
  });
}

/**
 * Resumes `ready`'s session on a new socket, as a client would: a reconnect that itself dies before
 * `resumed` (the network is still bad) is retried, up to three times, and said so.
 */
async function resumeOn(
  url: string,
  ready: Record<string, unknown>,
  lastAnswer: number,
): Promise<{ connection: Connection; nextFrame: number }> {
  for (let attempt = 1; ; attempt++) {
    const connection = await open(url);
    connection.ws.send(resumeMessage(ready, lastAnswer));
    const outcome = await Promise.race([
      waitFor(connection.rec, 'resumed'),
      connection.closed.then((rec) => rec.close),
    ]);
    if ('type' in outcome) return { connection, nextFrame: outcome.next_frame as number };
    console.warn(
      `resume attempt ${attempt} on ${url}: the new socket closed first (${JSON.stringify(outcome)})`,
    );
    if (attempt === 3) throw new Error(`no resume in ${attempt} attempts: ${JSON.stringify(outcome)}`);
  }
}

describe.each(transports)('resume over %s', (transport) => {
  async function serve(env: Record<string, string> = {}) {
    // Frames go out faster than real time: a long queue bound keeps them all (no drops to compare).
    server = await startTestServer({ SESSION_QUEUE_MS: '60000', ...env });
    const id = await storePipeline(server.app, asrFrontEnd);
    return `${server.base[transport]}/v1/pipelines/${id}/stream`;
  }

  it.each([1, 2, 3])(
    'streams byte for byte as without a drop, sockets killed at random points (seed %i)',
    async (seed) => {
      const url = await serve();
      const audio = frames(seed);
      const reference = await streamFrames(url, input, audio);
      expect(reference.close.code).toBe(1000);

      const random = prng(seed * 7919);
      const cuts = [10 + Math.floor(random() * 20), 40 + Math.floor(random() * 25)];
      const received: Buffer[] = [];
      let c = await open(url);
      c.ws.send(JSON.stringify({ type: 'start', input }));
      const ready = await waitFor(c.rec, 'ready');
      expect(ready.resume_token).toEqual(expect.any(String));
      let next = 0;
      for (const cut of cuts) {
        for (; next < cut; next++) c.ws.send(audio[next] as Buffer);
        // Let some answers come back, some not: the kill lands anywhere in the flow.
        await sleep(Math.floor(random() * 30));
        c.ws.terminate();
        await c.closed;
        received.push(...c.rec.binary);

        const resumed = await resumeOn(url, ready, received.length - 1);
        c = resumed.connection;
        next = resumed.nextFrame;
        expect(next).toBeLessThanOrEqual(cut);
        expect(next).toBeGreaterThanOrEqual(received.length);
      }
      for (; next < FRAMES; next++) c.ws.send(audio[next] as Buffer);
      c.ws.send(JSON.stringify({ type: 'stop' }));
      const last = await c.closed;
      expect(last.close.code).toBe(1000);
      expect(last.text.find((m) => m.type === 'stats')).toMatchObject({ session_id: ready.session_id });
      received.push(...last.binary);

      expect(received.length).toBe(reference.binary.length);
      expect(Buffer.concat(received).equals(Buffer.concat(reference.binary))).toBe(true);
    },
  );

  it('refuses a wrong token with 1008, and the session stays resumable', async () => {
    const url = await serve();
    const c = await open(url);
    c.ws.send(JSON.stringify({ type: 'start', input }));
    const ready = await waitFor(c.rec, 'ready');
    c.ws.send(frames(9)[0] as Buffer);
    await sleep(50);
    c.ws.terminate();
    await c.closed;

    const thief = await open(url);
    thief.ws.send(resumeMessage(ready, -1, 'x'.repeat(24)));
    const refused = await thief.closed;
    expect(refused.close.code).toBe(1008);
    expect(refused.text[0]).toMatchObject({ type: 'error', code: 'RM_ERR_BAD_RESUME_TOKEN' });

    const owner = await open(url);
    owner.ws.send(resumeMessage(ready, -1));
    expect(await waitFor(owner.rec, 'resumed')).toEqual({ type: 'resumed', next_frame: 1 });
    owner.ws.close();
    expect((await owner.closed).close.code).toBe(1005);
    // The client closed without stop: the session is parked again, resumable once more.
    expect(server?.app.realtime.get(ready.session_id as string)?.parked).toBe(true);
  });

  it('forgets a dropped session after RESUME_GRACE_MS: RM_ERR_SESSION_GONE', async () => {
    const url = await serve({ RESUME_GRACE_MS: '200' });
    const c = await open(url);
    c.ws.send(JSON.stringify({ type: 'start', input }));
    const ready = await waitFor(c.rec, 'ready');
    c.ws.terminate();
    await c.closed;
    await sleep(150);
    expect(server?.app.realtime.get(ready.session_id as string)?.parked).toBe(true);
    await sleep(300);
    expect(server?.app.realtime.get(ready.session_id as string)).toBeUndefined();

    const late = await open(url);
    late.ws.send(resumeMessage(ready, -1));
    const gone = await late.closed;
    expect(gone.close.code).toBe(1008);
    expect(gone.text[0]).toMatchObject({ type: 'error', code: 'RM_ERR_SESSION_GONE' });
  });

  it('refuses a resume that needs more than RESUME_BUFFER_BYTES kept, and takes one within it', async () => {
    // 4 KiB: six answers of 640 bytes (20 ms of 16 kHz mono s16) and the text between them.
    const url = await serve({ RESUME_BUFFER_BYTES: '4096' });
    const audio = frames(4);
    const reference = await streamFrames(url, input, audio);
    const c = await open(url);
    c.ws.send(JSON.stringify({ type: 'start', input }));
    const ready = await waitFor(c.rec, 'ready');
    for (const frame of audio) c.ws.send(frame);
    for (let waited = 0; c.rec.binary.length < FRAMES && waited < 10_000; waited += 5) await sleep(5);
    expect(c.rec.binary.length).toBe(FRAMES);
    c.ws.terminate();
    await c.closed;

    const early = await open(url);
    early.ws.send(resumeMessage(ready, 9));
    const refused = await early.closed;
    expect(refused.close.code).toBe(1008);
    expect(refused.text[0]).toMatchObject({
      type: 'error',
      code: 'RM_ERR_SESSION_GONE',
      message: 'answers after 9 can no longer be replayed',
    });
    // The session is still parked: a client that missed only what the buffer holds gets it byte for byte.
    const { connection } = await resumeOn(url, ready, FRAMES - 4);
    connection.ws.send(JSON.stringify({ type: 'stop' }));
    const last = await connection.closed;
    expect(last.close.code).toBe(1000);
    expect(Buffer.concat(last.binary.slice(0, 3)).equals(Buffer.concat(reference.binary.slice(-4, -1)))).toBe(
      true,
    );
  });

  it('has no resume with RESUME_GRACE_MS=0: no token, a dropped session ends at once', async () => {
    const url = await serve({ RESUME_GRACE_MS: '0' });
    const c = await open(url);
    c.ws.send(JSON.stringify({ type: 'start', input }));
    const ready = await waitFor(c.rec, 'ready');
    expect(ready.resume_token).toBeUndefined();
    c.ws.terminate();
    await c.closed;
    await sleep(100);
    expect(server?.app.realtime.get(ready.session_id as string)).toBeUndefined();
  });
});
