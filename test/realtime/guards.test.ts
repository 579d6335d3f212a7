/**
 * Nothing a client does, and no exception while serving one session, ends the process or disturbs
 * another session (SPEC §9): every transport callback and every output handler is guarded.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { Engine, type EngineOutput, OutputKind } from '../../src/native.js';
import type { StreamSession } from '../../src/realtime/session.js';
import { testConfig } from '../support/app.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const start = { type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } };
const gain = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };
const frame = Buffer.alloc(640);
const transports = ['ws', 'uws'] as const;

const plan = {
  input: { sample_rate: 16000, channels: 1 },
  nodes: [{ id: 'g', type: 'gain', params: { db: -6 }, input: null }],
  output: 'g',
};
const format = { encoding: 's16le', sample_rate: 16000, channels: 1 } as const;

describe('Engine.dispatch', () => {
  const engine = new Engine({ workers: 1, pinCores: false });
  afterAll(() => engine.shutdown());

  it('survives a handler that throws: that session is closed and counted, the others get their outputs', async () => {
    const options = { maxMessageBytes: 4096, queueLimitMs: null };
    const good: EngineOutput[] = [];
    let stopped: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      stopped = resolve;
    });
    const s = engine.createSession(plan, format, { encoding: 's16le' }, options, (o) => {
      good.push(o);
      if (o.kind === OutputKind.Stopped) stopped();
    });
    const bad = engine.createSession(plan, format, { encoding: 's16le' }, options, () => {
      throw new Error('a handler bug');
    });
    for (let i = 0; i < 5; i++) {
      bad.push(frame);
      s.push(frame);
    }
    s.stop();
    await done;
    expect(good.filter((o) => o.kind === OutputKind.Audio)).toHaveLength(5);
    expect(engine.dispatchErrors).toBe(1);
    expect(bad.closed).toBe(true);
  });
});

describe.each(transports)('over %s', (transport) => {
  let server: Running;
  let url: string;
  afterEach(async () => {
    await server?.close();
  });

  async function serve(env: Record<string, string> = {}) {
    server = await startTestServer(env);
    url = `${server.base[transport]}/v1/pipelines/${storePipeline(server.app, gain)}/stream`;
  }

  async function started(): Promise<TestClient> {
    const c = await TestClient.connect(url);
    c.send(start);
    await c.next('ready');
    return c;
  }

  const sessionOf = (index: number) => [...server.app.realtime.sessions.values()][index] as StreamSession;

  it('answers a malformed percent-escape in the pipeline id with 400, and goes on serving', async () => {
    await serve();
    const bad = `${server.base[transport]}/v1/pipelines/%E0%A4%A/stream`;
    const refused = (await TestClient.connect(bad).catch((e: unknown) => e)) as {
      status: number;
      body: string;
    };
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'RM_ERR_BAD_REQUEST', title: 'Invalid request' });
    const c = await started();
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
  });

  it('closes 1011 (and counts) a session whose answer fails to send; another session streams on', async () => {
    await serve();
    const victim = await started();
    const bystander = await started();
    // A transport failure while answering the first session: its socket throws on send.
    const socket = (sessionOf(0) as unknown as { socket: { sendBinary: () => void } }).socket;
    socket.sendBinary = () => {
      throw new Error('send failed');
    };
    victim.sendRaw(frame, true);
    expect(await victim.closed).toBe(1011);
    expect(victim.texts().at(-1)).toMatchObject({ type: 'error', code: 'RM_ERR_INTERNAL' });
    for (let i = 0; i < 3; i++) bystander.sendRaw(frame, true);
    await bystander.until((c) => c.binaries().length === 3);
    bystander.send({ type: 'stop' });
    expect(await bystander.closed).toBe(1000);
    const metrics = await server.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      new RegExp(`remotemedia_session_handler_errors_total\\{transport="${transport}"\\} 1`),
    );
  });

  it('drain reaches every session even when ending one of them throws', async () => {
    await serve();
    const clients = [await started(), await started(), await started()];
    sessionOf(0).end = () => {
      throw new Error('end failed');
    };
    await server.close();
    const codes = await Promise.all(clients.map((c) => c.closed));
    expect(codes[0]).toBe(1011);
    for (const c of clients.slice(1)) {
      expect(c.closeCode).toBe(1001);
      expect(c.texts().at(-1)).toMatchObject({ type: 'stats' });
    }
    server = undefined as unknown as Running;
  });
});

describe('logging', () => {
  it('a client sending malformed frames cannot fill the log with error-level stack traces', async () => {
    const lines: Array<{ level: number }> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const app = await buildApp(testConfig(), { logger: { level: 'debug', stream } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const id = storePipeline(app, gain);
    for (let i = 0; i < 5; i++) {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/pipelines/${id}/stream`);
      c.sendRaw(Buffer.from([0x7b, 0xff, 0x7d]), false);
      expect(await c.closed).toBe(1007);
    }
    await app.close();
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
