import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LIST_CHUNK } from '../../src/routes/sessions/index.js';
import { testApp } from '../support/app.js';
import { connect, record, waitFor } from '../support/ws.js';

const doc = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };
const input = { encoding: 's16le', sample_rate: 16000, channels: 1 };
/** 20 ms of 16 kHz mono s16le. */
const frame = Buffer.alloc(640, 1);

let app: FastifyInstance;
let base: string;
beforeAll(async () => {
  app = await testApp();
  base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
});
afterAll(async () => {
  await app.close();
});

async function until(check: () => boolean) {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe('sessions', () => {
  it('lists and shows a live session, keeps it on its version after the pipeline is deleted, and ends it', async () => {
    const { id } = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc })).json();
    const ws = await connect(`${base}/v1/pipelines/${id}/stream`);
    const { record: rec, closed } = record(ws);
    ws.send(JSON.stringify({ type: 'start', input }));
    const ready = await waitFor(rec, 'ready');
    const sessionId = ready.session_id as string;
    for (let i = 0; i < 3; i++) ws.send(frame);
    await until(() => rec.binary.length === 3);

    const list = await app.inject({ method: 'GET', url: '/v1/sessions' });
    expect(list.statusCode).toBe(200);
    expect(list.json().items).toContainEqual(
      expect.objectContaining({
        id: sessionId,
        state: 'streaming',
        transport: 'ws',
        pipeline: { id, version: 1 },
      }),
    );
    const one = await app.inject({ method: 'GET', url: `/v1/sessions/${sessionId}` });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      id: sessionId,
      frames_in: 3,
      frames_out: 3,
      input,
      output: { sample_rate: 16000 },
    });
    expect(one.json().latency.count).toBe(3);

    // docs/rest.md: sessions already running keep their version when the pipeline is deleted.
    expect((await app.inject({ method: 'DELETE', url: `/v1/pipelines/${id}` })).statusCode).toBe(204);
    ws.send(frame);
    await until(() => rec.binary.length === 4);
    expect(rec.binary).toHaveLength(4);
    expect(rec.binary[3]?.readInt16LE(0)).toBe(rec.binary[0]?.readInt16LE(0));

    const ended = await app.inject({ method: 'DELETE', url: `/v1/sessions/${sessionId}` });
    expect(ended.statusCode).toBe(202);
    expect(ended.json().id).toBe(sessionId);
    const final = await closed;
    expect(final.close).toEqual({ code: 1000, reason: 'ended by API' });
    expect(final.text.map((m) => m.type)).toEqual(['ready', 'flushed', 'stats']);
    expect(final.text[2]).toMatchObject({ session_id: sessionId, frames_in: 4, frames_out: 4 });
    await until(() => app.realtime.sessions.size === 0);
    expect((await app.inject({ method: 'GET', url: `/v1/sessions/${sessionId}` })).statusCode).toBe(404);
  });

  it('answers 404 for unknown sessions and an empty list when none run', async () => {
    const list = await app.inject({ method: 'GET', url: '/v1/sessions' });
    expect(list.json()).toEqual({ items: [] });
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/v1/sessions/ss_nope' });
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('RM_ERR_SESSION_NOT_FOUND');
    }
  });

  it('ends a session that has not started at once', async () => {
    const { id } = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc })).json();
    const ws = await connect(`${base}/v1/pipelines/${id}/stream`);
    const { closed } = record(ws);
    await until(() => app.realtime.sessions.size === 1);
    const [session] = app.realtime.sessions.values();
    const res = await app.inject({ method: 'DELETE', url: `/v1/sessions/${session?.id}` });
    expect(res.statusCode).toBe(202);
    expect((await closed).close.code).toBe(1000);
  });

  it('lists every session when there are more than it describes per turn, leaving out one that ends meanwhile', async () => {
    const { id } = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc })).json();
    const n = 2 * LIST_CHUNK + 3;
    const sockets = await Promise.all(
      Array.from({ length: n }, async () => {
        const ws = await connect(`${base}/v1/pipelines/${id}/stream`);
        const { record: rec } = record(ws);
        ws.send(JSON.stringify({ type: 'start', input }));
        await waitFor(rec, 'ready');
        ws.send(frame);
        return ws;
      }),
    );
    try {
      const live = [...app.realtime.sessions.values()];
      expect(live).toHaveLength(n);
      const listed = (await app.inject({ method: 'GET', url: '/v1/sessions' })).json().items;
      expect(listed.map((i: { id: string }) => i.id).sort()).toEqual(live.map((s) => s.id).sort());
      expect(listed.every((i: { state: string }) => i.state === 'streaming')).toBe(true);

      // The last session ends while the first is being described: it is not listed.
      const [first, last] = [live[0], live[n - 1]];
      if (first === undefined || last === undefined) throw new Error('no sessions');
      const describe = first.info.bind(first);
      vi.spyOn(first, 'info').mockImplementationOnce(() => {
        last.kill(1000, 'ended by test');
        return describe();
      });
      const after = (await app.inject({ method: 'GET', url: '/v1/sessions' }))
        .json()
        .items.map((i: { id: string }) => i.id);
      expect(after).toHaveLength(n - 1);
      expect(after).not.toContain(last.id);
    } finally {
      for (const s of app.realtime.sessions.values()) s.kill(1000, 'done');
      for (const ws of sockets) ws.close();
    }
    await until(() => app.realtime.sessions.size === 0);
    expect(app.realtime.sessions.size).toBe(0);
  });
});
