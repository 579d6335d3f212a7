/**
 * The processes a load run starts: the product (`dist/cli.js serve`, both realtime
 * transports) and the raw echo baselines (loadtest/echo-uws.ts, loadtest/echo-ws.ts), each on free
 * loopback ports, each killed when this process ends however it ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverNodeFlags } from '../src/node-flags.js';

export const root = fileURLToPath(new URL('..', import.meta.url));

export interface Running {
  pid: number;
  stop(): Promise<void>;
}

export interface Product extends Running {
  /** http://127.0.0.1:PORT (REST and the `ws` transport). */
  api: string;
  /** ws:// bases of the two transports. */
  base: { ws: string; uws: string };
}

export interface Echo extends Running {
  url: string;
}

const children = new Set<ChildProcess>();

function killAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Spawns a child that is killed with this process; keeps the tail of its output for errors. */
export function track(child: ChildProcess): { log: () => string; stop: () => Promise<void> } {
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(d.toString());
    if (lines.length > 100) lines.shift();
  };
  child.stderr?.on('data', keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { log: () => lines.join(''), stop };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready within ${ms} ms`);
}

/**
 * The product from the built dist/, run as `npm start` runs it (with `serverNodeFlags`), on two free ports,
 * with an empty data directory. `nodeArgs` go before the script (e.g. `--cpu-prof`), after `nodeFlags`
 * (for an A/B of those); `env` adds or overrides settings.
 */
export async function startProduct(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  nodeFlags: readonly string[] = serverNodeFlags,
): Promise<Product> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rm-loadtest-'));
  const [port, rtPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [...nodeFlags, ...nodeArgs, join(root, 'dist/cli.js'), 'serve'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      RT_PORT: String(rtPort),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      API_KEYS: '',
      MAX_SESSIONS: '100000',
      MAX_SESSIONS_PER_IP: '100000',
      // Closed-loop sessions send far faster than real time; the per-session rate limit is not under test.
      MAX_MESSAGES_PER_SEC: '1000000',
      RATE_LIMIT_PER_MIN: '0',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      SHUTDOWN_GRACE_MS: '3000',
      ...env,
    },
  });
  const t = track(child);
  if (child.pid === undefined) throw new Error('the product did not start');
  try {
    await waitFor('product /readyz', 30_000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    });
    await waitFor('product RT_PORT', 10_000, () => tcpOpen(rtPort));
  } catch (err) {
    process.stderr.write(t.log());
    await t.stop();
    throw err;
  }
  return {
    pid: child.pid,
    api: `http://127.0.0.1:${port}`,
    base: { ws: `ws://127.0.0.1:${port}`, uws: `ws://127.0.0.1:${rtPort}` },
    stop: async () => {
      await t.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A raw echo server (`echo-uws` or `echo-ws`) on a free port. */
export async function startEcho(kind: 'echo-uws' | 'echo-ws'): Promise<Echo> {
  const child = spawn(
    process.execPath,
    // With the product's V8 flags: the baseline runs the same Node as what it is the baseline for.
    [...serverNodeFlags, '--import', 'tsx', join(root, `loadtest/${kind}.ts`), '--port', '0'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const t = track(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not report its port`)), 20_000);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => reject(new Error(`${kind} exited (${code}): ${t.log()}`)));
  });
  if (child.pid === undefined) throw new Error(`${kind} did not start`);
  return { pid: child.pid, url: `ws://127.0.0.1:${port}/echo`, stop: t.stop };
}
