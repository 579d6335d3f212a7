/**
 * Worker health (docs/limits.md): a native worker that stops beating — here one stuck in a node for seconds —
 * makes /readyz answer 503 and its sessions are closed 1011; once it beats again, the server is ready.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableFaultNodes } from '../../src/native.js';
import type { Planner } from '../../src/realtime/session.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const start = { type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } };
let server: Running;
let stallId: string;

beforeAll(async () => {
  server = await startTestServer({ WORKER_STALL_MS: '300' });
  stallId = await storePipeline(server.app, { name: 'stall', nodes: [{ id: 'g', type: 'gain' }] });
  // The fault node is unknown to the document schema by design, so this pipeline's plan is written by
  // hand; the transport, session, engine and worker are the real ones.
  enableFaultNodes();
  const deps = server.app.realtime.deps as { plan: Planner };
  const realPlan = deps.plan;
  deps.plan = (definition, input) =>
    (definition as { name?: string }).name === 'stall'
      ? {
          ok: true,
          plan: {
            input,
            nodes: [{ id: 's', type: '__stall', params: { after_frames: 0, ms: 2500 }, input: null }],
            output: 's',
          },
        }
      : realPlan(definition, input);
});
afterAll(() => server.close());

const readyz = async () => {
  const res = await server.app.inject({ method: 'GET', url: '/readyz' });
  return { status: res.statusCode, code: res.json().code as string | undefined };
};

describe('a stuck native worker', () => {
  it('fails /readyz and has its sessions closed 1011 until it beats again', async () => {
    expect((await readyz()).status).toBe(200);
    const c = await TestClient.connect(`${server.base.uws}/v1/pipelines/${stallId}/stream`);
    c.send(start);
    await c.next('ready');
    c.sendRaw(Buffer.alloc(640), true);
    let seen = await readyz();
    for (let i = 0; i < 100 && seen.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      seen = await readyz();
    }
    expect(seen).toEqual({ status: 503, code: 'RM_ERR_WORKER_STALLED' });
    expect(await c.closed).toBe(1011);
    expect(c.texts().at(-1)).toMatchObject({ type: 'error', code: 'RM_ERR_WORKER_STALLED' });
    // The stall ends after 2.5 s; the worker beats again and serves new sessions.
    while ((await readyz()).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const next = await TestClient.connect(`${server.base.ws}/v1/pipelines/${stallId}/stream`);
    next.close();
  });
});
