import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testApp } from './support/app.js';

describe('app', () => {
  it('answers /healthz', async () => {
    const app = await testApp();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    await app.close();
  });

  it('answers unknown routes with problem+json', async () => {
    const app = await testApp();
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 404, code: 'RM_ERR_NOT_FOUND' });
    await app.close();
  });
});

/** Runs the built CLI (`dist/cli.js`) as a user would. */
function cli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['dist/cli.js', ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function collect(child: ChildProcess) {
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out.stderr += d.toString();
  });
  return out;
}

/** A port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('remotemedia serve', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('serves /healthz and exits 0 on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rm-serve-'));
    child = cli(['serve', '--port', '0', '--rt-port', '0', '--data-dir', dataDir]);
    const out = collect(child);
    const url = await new Promise<string>((resolve, reject) => {
      child?.stdout?.on('data', () => {
        const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(out.stdout);
        if (m?.[1]) resolve(m[1]);
      });
      child?.once('exit', (code) => reject(new Error(`exited ${code}: ${out.stderr}`)));
    });
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(out.stdout).toMatch(/API_KEYS is empty/);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  });

  it('refuses to boot on a bad value, naming the variable', async () => {
    child = cli(['serve'], { PORT: 'eighty' });
    const out = collect(child);
    expect(await exited(child)).toBe(1);
    expect(out.stderr).toMatch(/RM_ERR_CONFIG: .*PORT="eighty"/);
  });

  it('refuses to boot when RT_PORT is taken, like PORT, instead of sharing the port', async () => {
    const rtPort = await freePort();
    const serve = (dir: string) =>
      cli([
        'serve',
        '--port',
        '0',
        '--rt-port',
        String(rtPort),
        '--data-dir',
        mkdtempSync(join(tmpdir(), dir)),
      ]);
    const first = serve('rm-serve-a-');
    child = first;
    const firstOut = collect(first);
    await new Promise<void>((resolve, reject) => {
      first.stdout?.on('data', () => {
        if (firstOut.stdout.includes('uWebSockets.js realtime listener started')) resolve();
      });
      first.once('exit', (code) => reject(new Error(`exited ${code}: ${firstOut.stderr}`)));
    });
    const second = serve('rm-serve-b-');
    const out = collect(second);
    const code = await Promise.race([
      exited(second),
      new Promise<string>((r) => setTimeout(() => r('still running'), 10_000)),
    ]);
    second.kill('SIGKILL');
    expect(code).toBe(1);
    expect(out.stderr).toMatch(new RegExp(`EADDRINUSE.*:${rtPort} \\(RT_PORT\\)`));
  });

  it('prints help for the tool and for serve', async () => {
    child = cli(['--help']);
    const out = collect(child);
    expect(await exited(child)).toBe(0);
    expect(out.stdout).toMatch(/remotemedia serve/);
    expect(out.stdout).toMatch(/remotemedia process/);
    child = cli(['serve', '--help']);
    const serve = collect(child);
    expect(await exited(child)).toBe(0);
    expect(serve.stdout).toMatch(/--max-frame-bytes\s+MAX_FRAME_BYTES/);
  });
});
