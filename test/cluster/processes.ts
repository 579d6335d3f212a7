/**
 * Real processes for the multi-instance test: server instances from `dist/` (as `npm start` runs them)
 * and Debian's HAProxy in front, all on loopback ports.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverNodeFlags } from '../../src/node-flags.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 50 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Instance {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  /** Everything it logged. */
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the server as `npm start` runs it, on a free port with `env`; resolves once /readyz answers 200. */
export async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [...serverNodeFlags, 'dist/cli.js', 'serve'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      RT_PORT: '0',
      WORKERS: '1',
      PIN_CORES: 'false',
      LOG_LEVEL: 'warn',
      DATA_DIR: mkdtempSync(join(tmpdir(), `rm-${name}-`)),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  await eventually(`${name} to be ready`, async () => {
    if (gone) throw new Error(`${name} exited: ${output}`);
    const res = await fetch(`${url}/readyz`);
    return res.status === 200 ? true : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${output}`);
  });
  return { name, port, url, child, log: () => output, exited };
}

export interface Balancer {
  port: number;
  url: string;
  child: ChildProcess;
  /** HAProxy's view of each server: status (UP, DOWN, …) and its last health check. */
  servers(): Promise<Map<string, { status: string; check: string; code: string }>>;
  stop(): Promise<void>;
}

/** The HAProxy binary, or undefined when it is not installed. */
export function haproxyPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The balancer configuration the README's deployment section describes: least connections, health
 * checks on /readyz every 250 ms (one failure takes a server out), WebSocket tunnels kept for an hour,
 * a refused connection retried on another server.
 */
export function haproxyConfig(
  port: number,
  statsPort: number,
  servers: { name: string; port: number }[],
): string {
  return `global
  maxconn 2000

defaults
  mode http
  option redispatch
  retries 2
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # A WebSocket stream is a tunnel once upgraded: keep it for as long as a session may pause.
  timeout tunnel 1h

frontend remotemedia
  bind 127.0.0.1:${port}
  default_backend instances

backend instances
  balance leastconn
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  default-server check inter 250ms fall 1 rise 2
${servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port}`).join('\n')}

frontend stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`;
}

export async function startBalancer(servers: { name: string; port: number }[]): Promise<Balancer> {
  const binary = haproxyPath();
  if (binary === undefined) throw new Error('haproxy is not installed (apt-get install haproxy)');
  const [port, statsPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'rm-haproxy-'));
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(config, haproxyConfig(port, statsPort, servers));
  const child = spawn(binary, ['-db', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const balancer: Balancer = {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    servers: async () => {
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
      const [header, ...rows] = csv.trim().split('\n');
      const columns = (header ?? '').replace(/^# /, '').split(',');
      const col = (name: string) => columns.indexOf(name);
      const out = new Map<string, { status: string; check: string; code: string }>();
      for (const row of rows) {
        const f = row.split(',');
        if (f[col('pxname')] !== 'instances' || f[col('svname')] === 'BACKEND') continue;
        out.set(f[col('svname')] ?? '', {
          status: f[col('status')] ?? '',
          check: f[col('check_status')] ?? '',
          code: f[col('check_code')] ?? '',
        });
      }
      return out;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
  await eventually(`haproxy to see every server up (${output})`, async () => {
    const states = await balancer.servers();
    return servers.every((s) => states.get(s.name)?.status === 'UP') ? true : undefined;
  });
  return balancer;
}
