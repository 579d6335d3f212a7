import { describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';
import { chunk, readFixtureWav } from '../support/audio.js';
import { connect, record, streamFrames, waitFor } from '../support/ws.js';

/** The value of one sample line of the exposition, or undefined. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('GET /metrics', () => {
  it('exposes process metrics and the remotemedia_* series, fed by HTTP requests and streaming sessions', async () => {
    const app = await testApp({ SESSION_QUEUE_MS: '60000' });
    try {
      const doc = {
        name: 'm',
        nodes: [
          { id: 'mono', type: 'downmix' },
          { id: 'lvl', type: 'level' },
        ],
        output: 'mono',
      };
      const { id } = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc })).json();
      const base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
      const { info, pcm } = readFixtureWav('tones-48k-stereo.wav');
      const frames = chunk(pcm.subarray(0, 48000 * 4), 4, info.sample_rate, 20);
      const streamed = await streamFrames(
        `${base}/v1/pipelines/${id}/stream`,
        { encoding: 's16le', sample_rate: 48000, channels: 2 },
        frames,
      );
      expect(streamed.close.code).toBe(1000);

      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const text = res.body;
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      expect(sample(text, 'remotemedia_frames_total{transport="ws"}')).toBe(frames.length);
      expect(sample(text, 'remotemedia_frames_dropped_total{transport="ws"}')).toBe(0);
      expect(sample(text, 'remotemedia_frame_latency_seconds_count{transport="ws"}')).toBe(frames.length);
      expect(text).toMatch(/remotemedia_frame_latency_seconds_bucket\{le="0\.0001",transport="ws"\}/);
      expect(sample(text, 'remotemedia_sessions_active{transport="ws"}')).toBe(0);
      expect(sample(text, 'remotemedia_sessions_active{transport="uws"}')).toBe(0);
      // Counted by the engine's workers as the frames went through.
      expect(sample(text, 'remotemedia_engine_queue_wait_seconds_count')).toBe(frames.length);
      expect(sample(text, 'remotemedia_engine_queue_wait_seconds_bucket{le="+Inf"}')).toBe(frames.length);
      // Exact buckets from the engine's histograms: every frame waited well under a second.
      expect(sample(text, 'remotemedia_engine_queue_wait_seconds_bucket{le="1"}')).toBe(frames.length);
      expect(sample(text, 'remotemedia_engine_queue_wait_seconds_sum')).toBeLessThan(frames.length);
      // Workers held up by the event loop, their batch of answers full (native tests force such waits).
      expect(text).toMatch(/^# TYPE remotemedia_engine_handback_wait_seconds histogram$/m);
      const held = sample(text, 'remotemedia_engine_handback_wait_seconds_count');
      expect(held).toBeGreaterThanOrEqual(0);
      expect(sample(text, 'remotemedia_engine_handback_wait_seconds_bucket{le="+Inf"}')).toBe(held);
      expect(text).toMatch(/^# TYPE remotemedia_node_process_seconds histogram$/m);
      expect(sample(text, 'remotemedia_node_process_seconds_count{node_type="downmix"}')).toBeGreaterThan(0);
      expect(sample(text, 'remotemedia_node_process_seconds_count{node_type="level"}')).toBeGreaterThan(0);
      expect(
        sample(
          text,
          'remotemedia_http_request_duration_seconds_count{method="POST",route="/v1/pipelines",status="201"}',
        ),
      ).toBe(1);

      // Buckets are cumulative and end at the count.
      const buckets = text
        .split('\n')
        .filter((l) => l.startsWith('remotemedia_engine_queue_wait_seconds_bucket'))
        .map((l) => Number(l.split(' ')[1]));
      expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);

      // A second scrape counts nothing twice.
      const again = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(sample(again, 'remotemedia_engine_queue_wait_seconds_count')).toBe(frames.length);
    } finally {
      await app.close();
    }
  });

  it("counts a session's frames while it still streams, with every scrape reading the engine's totals", async () => {
    const app = await testApp({ SESSION_QUEUE_MS: '60000' });
    try {
      const { id } = (
        await app.inject({
          method: 'POST',
          url: '/v1/pipelines',
          payload: { name: 'l', nodes: [{ id: 'lvl', type: 'level' }] },
        })
      ).json();
      const base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
      const ws = await connect(`${base}/v1/pipelines/${id}/stream`);
      const { record: rec } = record(ws);
      ws.send(
        JSON.stringify({ type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } }),
      );
      await waitFor(rec, 'ready');
      const scrape = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
      const count = (text: string, line: string) => sample(text, line) ?? 0;
      const before = await scrape();
      for (const n of [5, 12]) {
        while (rec.binary.length < n) {
          ws.send(Buffer.alloc(640), { binary: true });
          const want = rec.binary.length + 1;
          for (let i = 0; i < 400 && rec.binary.length < want; i++)
            await new Promise((r) => setTimeout(r, 5));
        }
        const text = await scrape();
        expect(count(text, 'remotemedia_engine_queue_wait_seconds_count')).toBe(n);
        expect(count(text, 'remotemedia_node_process_seconds_count{node_type="level"}')).toBe(n);
        expect(count(text, 'remotemedia_engine_queue_wait_seconds_bucket{le="+Inf"}')).toBe(n);
      }
      expect(count(before, 'remotemedia_engine_queue_wait_seconds_count')).toBe(0);
      expect(app.realtime.sessions.size).toBe(1);
      ws.close();
    } finally {
      await app.close();
    }
  });

  it('counts live sessions by transport', async () => {
    const app = await testApp();
    try {
      const { id } = (
        await app.inject({
          method: 'POST',
          url: '/v1/pipelines',
          payload: { name: 'g', nodes: [{ id: 'g', type: 'gain' }] },
        })
      ).json();
      const base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
      const { connect } = await import('../support/ws.js');
      const ws = await connect(`${base}/v1/pipelines/${id}/stream`);
      for (let i = 0; i < 200 && app.realtime.sessions.size === 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(sample(text, 'remotemedia_sessions_active{transport="ws"}')).toBe(1);
      ws.close();
    } finally {
      await app.close();
    }
  });
});
