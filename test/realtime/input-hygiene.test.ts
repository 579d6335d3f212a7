/**
 * docs/audio.md and §4.5 end to end on both transports: non-finite f32le input is replaced by 0 and counted,
 * never poisoning a filter; event `sample` positions go on counting across a flush.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

let server: Running;
let lowpassId: string;
let levelId: string;
beforeAll(async () => {
  server = await startTestServer();
  lowpassId = await storePipeline(server.app, {
    name: 'lp',
    nodes: [{ id: 'lp', type: 'biquad', params: { kind: 'lowpass', frequency: 1000 } }],
  });
  levelId = await storePipeline(server.app, {
    name: 'lv',
    nodes: [{ id: 'lv', type: 'level', params: { interval_ms: 100 } }],
  });
});
afterAll(async () => {
  await server.close();
});

function f32(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    b.writeFloatLE(v, i * 4);
  });
  return b;
}

describe.each(['ws', 'uws'] as const)('over %s', (transport) => {
  const url = (id: string) => `${server.base[transport]}/v1/pipelines/${id}/stream`;

  it('replaces NaN and ±Inf by 0, counts them, and the filter stays finite', async () => {
    const c = await TestClient.connect(url(lowpassId));
    c.send({
      type: 'start',
      input: { encoding: 'f32le', sample_rate: 48000, channels: 1 },
      output: { encoding: 'f32le' },
    });
    await c.next('ready');
    const poisoned = Array.from({ length: 480 }, () => 0.25);
    poisoned[5] = Number.NaN;
    poisoned[6] = Number.POSITIVE_INFINITY;
    poisoned[7] = Number.NEGATIVE_INFINITY;
    c.sendRaw(f32(poisoned), true);
    for (let i = 0; i < 4; i++) c.sendRaw(f32(Array.from({ length: 480 }, () => 0.25)), true);
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    const answers = c.binaries();
    expect(answers.length).toBeGreaterThanOrEqual(5);
    const last = answers[4] as Buffer;
    for (let i = 0; i < last.length; i += 4) expect(Number.isFinite(last.readFloatLE(i))).toBe(true);
    expect(last.readFloatLE(last.length - 4)).toBeCloseTo(0.25, 2);
    const stats = c.texts().find((t) => t.type === 'stats');
    expect(stats).toMatchObject({ non_finite_samples: 3 });
  });

  it('keeps counting event sample positions across a flush', async () => {
    const c = await TestClient.connect(url(levelId));
    c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 8000, channels: 1 } });
    await c.next('ready');
    const second = Buffer.alloc(2 * 8000);
    c.sendRaw(second, true);
    c.send({ type: 'flush' });
    await c.next('flushed');
    c.sendRaw(second, true);
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    const samples = c
      .texts()
      .filter((t) => t.type === 'event')
      .map((t) => Number(t.sample));
    expect(samples.length).toBeGreaterThan(10);
    // Non-decreasing from start to end: the second second's events lie after the first's.
    for (let i = 1; i < samples.length; i++)
      expect(samples[i]).toBeGreaterThanOrEqual(samples[i - 1] as number);
    expect(Math.max(...samples)).toBeGreaterThan(8000);
  });
});
