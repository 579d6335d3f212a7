/**
 * Keeps the native load generator (`rm-loadgen`, native/loadgen) honest: short runs of a few sessions
 * against a real server (both transports) and a raw echo server must count every frame the server
 * answered, and report in the shape `npm run loadtest:stream` reads. Speed is measured by the load
 * test, never asserted here.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Echo, startEcho } from '../../loadtest/processes.js';
import { buildLoadgen, type LoadgenReport, runLoadgen } from '../../loadtest/stream/loadgen.js';
import { asrFrontEnd, type Running, startTestServer, storePipeline } from '../support/server.js';

let server: Running;
let echo: Echo;
let bin: string;

beforeAll(async () => {
  bin = buildLoadgen('dev');
  server = await startTestServer({ MAX_MESSAGES_PER_SEC: '100000' });
  echo = await startEcho('echo-uws');
}, 300_000);
afterAll(async () => {
  await echo?.stop();
  await server?.close();
});

async function generate(args: string[]): Promise<LoadgenReport> {
  return (await runLoadgen(args, null, 120, bin)).report;
}

/** Every frame sent was answered, none lost, dropped or in error; the report has its parts. */
function expectClean(r: LoadgenReport, sessions: number) {
  expect(r.sessions).toEqual({
    requested: sessions,
    opened: sessions,
    held: sessions,
    refused: {},
    connect_errors: 0,
    closed_early: {},
  });
  expect(r.frames).toMatchObject({ lost: 0, dropped: 0, frame_errors: 0, other_errors: 0, unexpected: 0 });
  expect(r.frames.sent).toBeGreaterThan(0);
  expect(r.frames.answered).toBe(r.frames.sent);
  expect(r.frame_bytes).toBe(3840);
  expect(r.input).toEqual({ sample_rate: 48000, channels: 2, file: null });
  expect(r.rtt.count).toBe(r.frames.answered);
  expect(r.rtt.p50_ms).toBeLessThanOrEqual(r.rtt.p99_ms);
  expect(r.rtt.p99_ms).toBeLessThanOrEqual(r.rtt.max_ms);
  // The timeline splits the same round trips by when each frame was sent (its histograms are coarser).
  expect(r.rtt_timeline.buckets.reduce((n, b) => n + b.count, 0)).toBe(r.rtt.count);
  const worst = Math.max(...r.rtt_timeline.buckets.map((b) => b.max_ms));
  expect(Math.abs(worst - r.rtt.max_ms)).toBeLessThanOrEqual(0.01 * r.rtt.max_ms + 0.002);
  expect(r.answered_per_s).toBeGreaterThan(0);
  expect(r.generator.cpu_s).toBeGreaterThanOrEqual(0);
  expect(r.generator.nofile_limit).toBeGreaterThanOrEqual(sessions);
}

it('paces sessions through a pipeline it creates over REST, and the server counts the same frames', async () => {
  const doc = join(tmpdir(), `rm-loadgen-test-${process.pid}.json`);
  writeFileSync(doc, JSON.stringify(asrFrontEnd));
  const api = server.base.ws.replace('ws://', 'http://');
  const r = await generate([
    ...['--url', `${server.base.uws}/v1/pipelines/{id}/stream`, '--create', doc, '--api', api],
    ...['--sessions', '3', '--duration', '1', '--timeline-ms', '250'],
  ]);
  expectClean(r, 3);
  expect(r.pipeline).toMatch(/^pl_/);
  // Paced: exactly one frame per 20 ms per session over the second, 12 or 13 of them in each quarter.
  expect(r.frames.sent).toBe(3 * 50);
  expect(r.rtt_timeline.bucket_ms).toBe(250);
  expect(r.rtt_timeline.buckets.map((b) => b.count >= 36 && b.count <= 39)).toEqual([true, true, true, true]);
  expect(r.send_lag?.count).toBe(r.frames.sent);
  expect(r.server).toMatchObject({ sessions: 3, frames_in: 150, frames_out: 150, frames_dropped: 0 });
});

it('keeps k frames in flight per session on the main port (closed loop)', async () => {
  const id = await storePipeline(server.app, {
    name: 'gain',
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
  });
  const r = await generate([
    ...['--url', `${server.base.ws}/v1/pipelines/${id}/stream`, '--pipeline', id],
    ...['--mode', 'closed', '--in-flight', '3', '--sessions', '2', '--duration', '1'],
  ]);
  expectClean(r, 2);
  expect(r).toMatchObject({ mode: 'closed', in_flight: 3, send_lag: null });
  expect(r.server).toMatchObject({ sessions: 2, frames_in: r.frames.sent, frames_out: r.frames.sent });
});

it('checks the order of raw echoes', async () => {
  const r = await generate([
    '--url',
    echo.url,
    '--protocol',
    'echo',
    '--mode',
    'closed',
    '--sessions',
    '2',
    '--duration',
    '1',
  ]);
  expectClean(r, 2);
  expect(r.frames.out_of_order).toBe(0);
  expect(r.server).toBeNull();
});

it('counts refused upgrades by status', async () => {
  const r = await generate([
    '--url',
    `${server.base.uws}/v1/pipelines/pl_missing/stream`,
    '--sessions',
    '2',
    '--duration',
    '1',
  ]);
  expect(r.sessions).toMatchObject({ requested: 2, opened: 0, held: 0, refused: { '404': 2 } });
  expect(r.frames.sent).toBe(0);
});
