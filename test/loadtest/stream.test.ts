/**
 * Keeps the streaming load generator from rotting: a short run of a few paced sessions against both
 * product transports and a raw echo server must give a well-formed report with nothing lost.
 * Speed is measured by `npm run loadtest:stream`, never asserted here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ClientReport } from '../../loadtest/stream-client.js';
import { asrFrontEnd, type Running, startTestServer, storePipeline } from '../support/server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

let server: Running;
let pipelineId: string;
let echo: ChildProcess;
let echoPort: number;

beforeAll(async () => {
  server = await startTestServer();
  pipelineId = await storePipeline(server.app, asrFrontEnd);
  echo = spawn(process.execPath, ['--import', 'tsx', 'loadtest/echo-uws.ts', '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  echoPort = await new Promise<number>((resolve, reject) => {
    echo.stdout?.once('data', (d: Buffer) => resolve(JSON.parse(d.toString().split('\n')[0] ?? '').port));
    echo.once('exit', (code) => reject(new Error(`echo-uws exited with ${code}`)));
  });
});
afterAll(async () => {
  echo?.kill('SIGTERM');
  await server?.close();
});

function generate(url: string, protocol: 'product' | 'echo'): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'loadtest/stream-client.ts',
        ...['--url', url, '--protocol', protocol, '--sessions', '5', '--duration', '2'],
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out.trim()) as ClientReport);
      else reject(new Error(`stream-client exited with ${code}: ${err}`));
    });
  });
}

function expectClean(r: ClientReport) {
  expect(r.aborted).toBe(false);
  expect(r.sessions).toMatchObject({ requested: 5, opened: 5, held: 5, connect_errors: 0, refused: {} });
  // 2 s of 20 ms frames per session.
  expect(r.frames.sent).toBe(5 * 100);
  expect(r.frames.answered).toBe(r.frames.sent);
  expect(r.frames).toMatchObject({ lost: 0, dropped: 0, frame_errors: 0, unexpected: 0 });
  expect(r.frame_bytes).toBe(3840);
  expect(r.rtt.count).toBe(r.frames.answered);
  for (const k of ['p50_ms', 'p95_ms', 'p99_ms', 'p999_ms', 'max_ms'] as const) {
    expect(r.rtt[k]).toBeGreaterThan(0);
  }
  expect(r.rtt.p50_ms).toBeLessThanOrEqual(r.rtt.p99_ms);
  expect(r.rtt.p99_ms).toBeLessThanOrEqual(r.rtt.max_ms);
  expect(r.generator.cpu_pct).toBeGreaterThan(0);
  expect(r.generator.send_lag.count).toBeGreaterThan(0);
}

it('streams paced sessions over both transports and a raw echo server with nothing lost', async () => {
  const path = `/v1/pipelines/${pipelineId}/stream`;
  const [uws, ws, raw] = await Promise.all([
    generate(server.base.uws + path, 'product'),
    generate(server.base.ws + path, 'product'),
    generate(`ws://127.0.0.1:${echoPort}/echo`, 'echo'),
  ]);
  for (const r of [uws, ws]) {
    expectClean(r);
    expect(r.frames.reordered).toBeNull();
    // Every session ended with its stats, and the server counted every frame the client sent.
    expect(r.server).toMatchObject({ sessions: 5, frames_in: 500, frames_out: 500, frames_dropped: 0 });
    expect(r.server?.p99_ms_max).toBeGreaterThan(0);
  }
  expectClean(raw);
  expect(raw.frames.reordered).toBe(0);
  expect(raw.server).toBeNull();
});
