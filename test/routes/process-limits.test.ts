/**
 * `/process` limits (docs/configuration.md `MAX_CONCURRENT_JOBS`, docs/limits.md): concurrent jobs over the bound get 503 +
 * Retry-After; a job whose result would be too large is refused before it runs; the plan cache is
 * bounded by bytes.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { wavHeader } from '../../src/native.js';
import { PLAN_CACHE_BYTES, planCacheBytes, planWithEngine } from '../../src/planner.js';
import { testApp } from '../support/app.js';

/** A WAV of `seconds` of a quiet ramp, s16 mono at `rate`. */
function wav(seconds: number, rate = 8000): Buffer {
  const pcm = Buffer.alloc(2 * Math.round(seconds * rate));
  for (let i = 0; i < pcm.length / 2; i++) pcm.writeInt16LE((i % 200) - 100, 2 * i);
  return Buffer.concat([Buffer.from(wavHeader(rate, 1, 's16le', pcm.length)), pcm]);
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function store(doc: object): Promise<string> {
  const res = await (app as FastifyInstance).inject({ method: 'POST', url: '/v1/pipelines', payload: doc });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

function processOnce(id: string, body: Buffer) {
  return (app as FastifyInstance).inject({
    method: 'POST',
    url: `/v1/pipelines/${id}/process`,
    payload: body,
    headers: { 'content-type': 'audio/wav' },
  });
}

describe('MAX_CONCURRENT_JOBS', () => {
  it('answers 503 + Retry-After over the bound, and frees the slot when a job ends', async () => {
    app = await testApp({ MAX_CONCURRENT_JOBS: '1' });
    const id = await store({
      name: 'slow',
      nodes: [{ id: 'r', type: 'resample', params: { sample_rate: 48000, quality: 'high' } }],
    });
    const body = wav(20);
    const results = await Promise.all([processOnce(id, body), processOnce(id, body), processOnce(id, body)]);
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, 503, 503]);
    for (const r of results.filter((x) => x.statusCode === 503)) {
      expect(r.json().code).toBe('RM_ERR_TOO_MANY_JOBS');
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect((await processOnce(id, wav(0.1))).statusCode).toBe(200);
    // A refused request (bad content) gives its slot back too.
    expect((await processOnce(id, Buffer.from('not a wav'))).statusCode).toBeGreaterThanOrEqual(400);
    expect((await processOnce(id, wav(0.1))).statusCode).toBe(200);
  });

  it('defaults to twice the workers', async () => {
    app = await testApp({ WORKERS: '3' });
    expect(app.config.maxConcurrentJobs).toBe(6);
  });
});

describe('the result size of /process', () => {
  it('is refused before any work when it would exceed 4 × MAX_UPLOAD_BYTES', async () => {
    app = await testApp({ MAX_UPLOAD_BYTES: String(128 * 1024) });
    const id = await store({
      name: 'grow',
      nodes: [
        { id: 'mono', type: 'downmix' },
        { id: 'up', type: 'upmix', params: { channels: 4 } },
        { id: 'r', type: 'resample', params: { sample_rate: 96000, quality: 'fast' } },
      ],
    });
    const res = await processOnce(id, wav(4)); // 64 KB in, ~3 MB out
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('RM_ERR_OUTPUT_TOO_LARGE');
    expect((await processOnce(id, wav(0.05))).statusCode).toBe(200);
  });
});

describe('the plan cache', () => {
  it('is bounded by bytes, not entries', () => {
    const big = 'x'.repeat(400_000);
    for (let i = 0; i < 120; i++) {
      const planned = planWithEngine({
        name: `big${i}`,
        description: big,
        nodes: [{ id: 'g', type: 'gain', params: { db: -1 } }],
      });
      expect(planned.ok).toBe(true);
    }
    expect(planCacheBytes()).toBeGreaterThan(0);
    expect(planCacheBytes()).toBeLessThanOrEqual(PLAN_CACHE_BYTES);
  });
});
