/**
 * docs/limits.md: validation refuses, with 422 and a code naming the bound, any pipeline whose per-session
 * memory or per-frame work exceeds the configured bounds; and no plan can end the process.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';

/** Resamples bouncing between the extreme rates, unfused and unfolded (each one a step). */
function bouncing(count: number) {
  return {
    name: 'bounce',
    optimization: { enable_fusion: false, constant_folding: false, remove_dead_code: false },
    nodes: Array.from({ length: count }, (_, i) => ({
      id: `r${i}`,
      type: 'resample',
      params: { sample_rate: i % 2 === 0 ? 192000 : 8000, quality: 'high' },
    })),
  };
}

function spectrum(params: Record<string, unknown>) {
  return { name: 'spec', nodes: [{ id: 's', type: 'spectrum', params }] };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function plan(doc: object, query = '?sample_rate=8000&channels=8') {
  const res = await (app as FastifyInstance).inject({
    method: 'POST',
    url: `/v1/plan${query}`,
    payload: doc,
  });
  return { status: res.statusCode, body: res.json() };
}

function codes(body: { errors?: Array<{ code: string }> }): string[] {
  return (body.errors ?? []).map((e) => e.code);
}

describe('plan bounds at validation', () => {
  it('refuses chains of resamples between extreme rates (memory and work)', async () => {
    app = await testApp();
    const res = await plan(bouncing(40));
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('RM_ERR_INVALID_PIPELINE');
    expect(codes(res.body)).toEqual(expect.arrayContaining(['RM_PIPE_MEMORY_BOUND', 'RM_PIPE_WORK_BOUND']));
    // The same refusal when storing it (planned for 48 kHz stereo).
    const stored = await app.inject({ method: 'POST', url: '/v1/pipelines', payload: bouncing(40) });
    expect(stored.statusCode).toBe(422);
    expect(codes(stored.json())).toContain('RM_PIPE_WORK_BOUND');
  });

  it('accepts a short resample chain', async () => {
    app = await testApp();
    expect((await plan(bouncing(2), '?sample_rate=8000&channels=1')).status).toBe(200);
  });

  it('refuses a spectrum with a tiny hop (work and event rate), accepts a sane one', async () => {
    app = await testApp();
    const flood = await plan(spectrum({ fft_size: 8192, hop: 1, bands: 0 }), '?sample_rate=48000&channels=1');
    expect(flood.status).toBe(422);
    expect(codes(flood.body)).toEqual(expect.arrayContaining(['RM_PIPE_WORK_BOUND', 'RM_PIPE_EVENT_RATE']));
    const sane = await plan(spectrum({ fft_size: 1024, hop: 512 }), '?sample_rate=48000&channels=1');
    expect(sane.status).toBe(200);
  });

  it('refuses event text per answer above what the engine sends, even under the event rate', async () => {
    app = await testApp({ MAX_EVENTS_PER_SEC: '1000000', MAX_SESSION_OPS_PER_SEC: '10000000000000' });
    const res = await plan(spectrum({ fft_size: 8192, hop: 64, bands: 0 }), '?sample_rate=48000&channels=1');
    expect(res.status).toBe(422);
    expect(codes(res.body)).toEqual(['RM_PIPE_EVENT_RATE']);
  });

  it('takes its bounds from the configuration', async () => {
    const doc = spectrum({ fft_size: 1024, hop: 256 }); // 187.5 events per second at 48 kHz
    app = await testApp({ MAX_EVENTS_PER_SEC: '100' });
    const res = await plan(doc, '?sample_rate=48000&channels=1');
    expect(res.status).toBe(422);
    expect(codes(res.body)).toEqual(['RM_PIPE_EVENT_RATE']);
    await app.close();
    app = await testApp({ MAX_EVENTS_PER_SEC: '200' });
    expect((await plan(doc, '?sample_rate=48000&channels=1')).status).toBe(200);
    await app.close();
    app = await testApp({ MAX_SESSION_MEMORY_BYTES: String(1024 * 1024) });
    const small = await plan(bouncing(2), '?sample_rate=8000&channels=8');
    expect(codes(small.body)).toContain('RM_PIPE_MEMORY_BOUND');
  });

  it('with the bounds lifted, the engine still refuses what it cannot hold (and the process lives)', async () => {
    app = await testApp({
      MAX_SESSION_MEMORY_BYTES: String(16384 * 1024 * 1024),
      MAX_SESSION_OPS_PER_SEC: '10000000000000',
    });
    const res = await plan(bouncing(100));
    expect([200, 422]).toContain(res.status);
    if (res.status === 422) expect(codes(res.body)).toEqual(['RM_PIPE_ENGINE_REJECTED']);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});
