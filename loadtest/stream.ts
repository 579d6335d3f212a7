/**
 * `npm run loadtest:stream`: streaming load against both realtime transports of the product and
 * against raw echo servers on the same machine, in the same run, so the ratios say what the product
 * costs over the bare WebSocket library.
 *
 *   targets   uws       product, uWebSockets.js listener (RT_PORT)
 *             ws        product, @fastify/websocket on PORT
 *             echo-uws  raw uWebSockets.js echo (loadtest/echo-uws.ts)
 *             echo-ws   raw ws echo (loadtest/echo-ws.ts)
 *
 * Each target gets the same load from a separate generator process (loadtest/stream-client.ts):
 * N sessions of 48 kHz stereo s16 in 20 ms frames, paced in real time or closed-loop, on the
 * five-node `asrFrontEnd` pipeline. `--capacity` searches, per product transport, the largest N whose
 * client round-trip p99 stays under one frame period with zero loss, shows one step past it, then
 * checks admission control with MAX_SESSIONS at that capacity.
 *
 * Everything listens on and talks to 127.0.0.1 only; every generator run, server start and the
 * search itself are bounded in time and count.
 *
 *   npm run loadtest:stream -- [--sessions 100] [--duration 10] [--mode paced|closed]
 *                              [--targets echo-uws,uws,echo-ws,ws] [--capacity] [--cpu-prof]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SyncSqliteStore } from '../src/store/index.js';
import { asrFrontEnd } from '../test/support/pipelines.js';
import { renderChart, type Series } from './chart.js';
import type { ClientReport } from './stream-client.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = (p: string) => join(root, p);

const allTargets = ['echo-uws', 'uws', 'echo-ws', 'ws'] as const;
type Target = (typeof allTargets)[number];

const { values: flags } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'paced' },
    targets: { type: 'string', default: allTargets.join(',') },
    'frame-ms': { type: 'string', default: '20' },
    capacity: { type: 'boolean', default: false },
    /** Session counts to sweep, e.g. `25,50,100,200`: renders bench/latency-vs-sessions.svg. */
    sweep: { type: 'string' },
    'capacity-start': { type: 'string', default: '250' },
    'capacity-max': { type: 'string', default: '4000' },
    'capacity-duration': { type: 'string', default: '8' },
    'capacity-steps': { type: 'string', default: '8' },
    workers: { type: 'string' },
    /** Extra product server settings, e.g. `--env PIN_CORES=false` (repeatable). */
    env: { type: 'string', multiple: true, default: [] },
    repeat: { type: 'string', default: '1' },
    'cpu-prof': { type: 'boolean', default: false },
    out: { type: 'string', default: here('bench/stream.json') },
  },
});

const sessions = Number(flags.sessions);
const durationS = Number(flags.duration);
const frameMs = Number(flags['frame-ms']);
const mode = flags.mode;
if (mode !== 'paced' && mode !== 'closed') throw new Error('--mode is paced or closed');
if (!(sessions >= 1 && sessions <= 20_000)) throw new Error('--sessions must be 1..20000');
if (!(durationS > 0 && durationS <= 600)) throw new Error('--duration must be in (0, 600] seconds');
const targets = flags.targets.split(',').map((t) => t.trim()) as Target[];
for (const t of targets) if (!allTargets.includes(t)) throw new Error(`unknown target ${t}`);

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>();
function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready within ${ms} ms`);
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

interface Server {
  name: string;
  child: ChildProcess;
  pid: number;
  /** ws:// URL per target this server serves. */
  urls: Partial<Record<Target, string>>;
  log: string[];
  probe(cmd: 'reset' | 'report'): Promise<{ eld_ms: { p50: number; p99: number; max: number } } | null>;
  stop(): Promise<void>;
}

function track(name: string, child: ChildProcess): Pick<Server, 'child' | 'pid' | 'log' | 'probe' | 'stop'> {
  children.add(child);
  const log: string[] = [];
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 200) log.shift();
  };
  child.stderr?.on('data', keep);
  child.on('exit', () => children.delete(child));
  const probe = (cmd: 'reset' | 'report') =>
    new Promise<{ eld_ms: { p50: number; p99: number; max: number } } | null>((resolve) => {
      if (!child.connected) return resolve(null);
      const timer = setTimeout(() => resolve(null), 2000);
      if (cmd === 'reset') {
        child.send({ probe: 'reset' });
        clearTimeout(timer);
        return resolve(null);
      }
      child.once('message', (m: { probe?: string; eld_ms: { p50: number; p99: number; max: number } }) => {
        clearTimeout(timer);
        resolve(m?.probe === 'report' ? m : null);
      });
      child.send({ probe: 'report' });
    });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return { child, pid: child.pid, log, probe, stop };
}

const probeArgs = ['--import', here('loadtest/probe.mjs')];

async function startProduct(maxSessions: number, label: string): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rm-loadtest-'));
  const store = SyncSqliteStore.open(dataDir);
  const pipelineId = store.create({
    name: asrFrontEnd.name,
    definition: asrFrontEnd,
    source: JSON.stringify(asrFrontEnd),
    contentType: 'application/json',
  }).id;
  store.close();
  const port = await freePort();
  const rtPort = await freePort();
  const profDir = here('bench/cpuprof');
  if (flags['cpu-prof']) mkdirSync(profDir, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      ...probeArgs,
      ...(flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
      here('dist/cli.js'),
      'serve',
    ],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        RT_PORT: String(rtPort),
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        API_KEYS: '',
        MAX_SESSIONS: String(maxSessions),
        // Closed-loop sessions send far more than real time; the per-session rate limit is not under test.
        MAX_MESSAGES_PER_SEC: '1000000',
        SHUTDOWN_GRACE_MS: '3000',
        ...(flags.workers ? { WORKERS: flags.workers } : {}),
        ...Object.fromEntries(
          flags.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        ),
      },
    },
  );
  const t = track(label, child);
  child.stdout?.on('data', (d: Buffer) => t.log.push(d.toString()));
  const path = `/v1/pipelines/${pipelineId}/stream`;
  try {
    await waitFor(`${label} /readyz`, 30_000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    });
    await waitFor(`${label} RT_PORT`, 10_000, () => tcpOpen(rtPort));
  } catch (err) {
    process.stderr.write(t.log.join(''));
    throw err;
  }
  return {
    name: label,
    ...t,
    urls: { uws: `ws://127.0.0.1:${rtPort}${path}`, ws: `ws://127.0.0.1:${port}${path}` },
    stop: async () => {
      await t.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function startEcho(target: 'echo-uws' | 'echo-ws'): Promise<Server> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ...probeArgs, here(`loadtest/${target}.ts`), '--port', '0'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  const t = track(target, child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${target} did not report its port`)), 20_000);
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n') && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => reject(new Error(`${target} exited (${code}): ${t.log.join('')}`)));
  });
  return { name: target, ...t, urls: { [target]: `ws://127.0.0.1:${port}/echo` } };
}

// ---------------------------------------------------------------------------------------------
// /proc: CPU of a whole process and of its threads by name, and RSS

const CLK_TCK = 100;

interface ProcSample {
  at: number;
  ticks: number;
  threads: Map<string, number>;
  rssMb: number;
}

function procSample(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the comm: state(3) … utime(14) stime(15) … rss(24), numbered from 1 in proc(5).
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssMb = (Number(fields[21]) * 4096) / 2 ** 20;
    const threads = new Map<string, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = t
          .slice(t.indexOf('(') + 1, t.lastIndexOf(')'))
          .replace(/\d+$/, '')
          .replace(/-$/, '');
        const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
        threads.set(name, (threads.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return { at: performance.now(), ticks, threads, rssMb };
  } catch {
    return null;
  }
}

interface ServerUsage {
  cpu_pct: number;
  rss_mb: number;
  /** % of one core by thread name (the JS main thread is `node`; native workers `rm-worker`). */
  threads_pct: Record<string, number>;
  eld_ms: { p50: number; p99: number; max: number } | null;
}

function usageBetween(a: ProcSample | null, b: ProcSample | null): Omit<ServerUsage, 'eld_ms'> {
  if (a === null || b === null) return { cpu_pct: 0, rss_mb: 0, threads_pct: {} };
  const seconds = (b.at - a.at) / 1000;
  const pct = (ticks: number) => Math.round((ticks / CLK_TCK / seconds) * 1000) / 10;
  const threads_pct: Record<string, number> = {};
  for (const [name, ticks] of b.threads) {
    const p = pct(ticks - (a.threads.get(name) ?? 0));
    if (p >= 0.5) threads_pct[name] = p;
  }
  return { cpu_pct: pct(b.ticks - a.ticks), rss_mb: Math.round(b.rssMb), threads_pct };
}

// ---------------------------------------------------------------------------------------------
// One generator run

interface Run {
  target: Target;
  report: ClientReport;
  server: ServerUsage;
}

async function runGenerator(
  target: Target,
  server: Server,
  n: number,
  seconds: number,
  runMode: 'paced' | 'closed',
): Promise<Run> {
  const url = server.urls[target];
  if (url === undefined) throw new Error(`${server.name} does not serve ${target}`);
  const args = [
    '--import',
    'tsx',
    here('loadtest/stream-client.ts'),
    '--url',
    url,
    '--protocol',
    target.startsWith('echo') ? 'echo' : 'product',
    '--mode',
    runMode,
    '--sessions',
    String(n),
    '--duration',
    String(seconds),
    '--frame-ms',
    String(frameMs),
    '--label',
    target,
    '--progress',
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  // The generator bounds itself; this is the backstop.
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60 + n / 20) * 1000);
  let before: ProcSample | null = null;
  let after: ProcSample | null = null;
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let pending = '';
  child.stderr?.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
      if (line.startsWith('{"progress"')) {
        const p = JSON.parse(line).progress;
        if (before === null) {
          // The first progress line comes one second into streaming: measure the server from there.
          before = procSample(server.pid);
          void server.probe('reset');
        }
        process.stdout.write(
          `  [${target} ${runMode} n=${n} ${String(p.t_s).padStart(4)}s] held ${p.held} sent ${p.sent} ` +
            `answered ${p.answered} closed_early ${p.closed_early} rtt p99 ${p.rtt_p99_ms} ms ` +
            `send lag p99 ${p.send_lag_p99_ms} ms gen eld p99 ${p.eld_p99_ms} ms\n`,
        );
        if (after === null && p.t_s >= seconds - 0.5) after = procSample(server.pid);
      } else if (line.length > 0) {
        err += `${line}\n`;
      }
    }
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(killer);
  children.delete(child);
  const lastLine = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !lastLine.startsWith('{')) {
    throw new Error(`generator for ${target} failed (exit ${code}): ${err.slice(-2000)}`);
  }
  after ??= procSample(server.pid);
  const eld = await server.probe('report');
  return {
    target,
    report: JSON.parse(lastLine) as ClientReport,
    server: { ...usageBetween(before, after), eld_ms: eld?.eld_ms ?? null },
  };
}

// ---------------------------------------------------------------------------------------------
// Output

function table(runs: Run[]): string {
  const head = [
    'target',
    'held',
    'sent',
    'answered',
    'lost',
    'drop',
    'reord',
    'ans/s',
    'rtt p50',
    'p95',
    'p99',
    'p99.9',
    'max',
    'srv p50',
    'srv p99',
    'srv p99max',
    'gen cpu%',
    'gen eld99',
    'lag p99',
    'srv cpu%',
    'srv js%',
    'srv rss',
    'srv eld99',
  ];
  const rows = runs.map(({ target, report: r, server: s }) => [
    target,
    `${r.sessions.held}/${r.sessions.requested}`,
    String(r.frames.sent),
    String(r.frames.answered),
    String(r.frames.lost),
    String(r.frames.dropped),
    r.frames.reordered === null ? '-' : String(r.frames.reordered),
    String(Math.round(r.answered_per_s)),
    r.rtt.p50_ms.toFixed(2),
    r.rtt.p95_ms.toFixed(2),
    r.rtt.p99_ms.toFixed(2),
    r.rtt.p999_ms.toFixed(2),
    r.rtt.max_ms.toFixed(1),
    r.server ? r.server.p50_ms_median.toFixed(3) : '-',
    r.server ? r.server.p99_ms_median.toFixed(3) : '-',
    r.server ? r.server.p99_ms_max.toFixed(2) : '-',
    r.generator.cpu_pct.toFixed(0),
    r.generator.eld_ms.p99.toFixed(1),
    r.generator.send_lag.p99_ms.toFixed(1),
    s.cpu_pct.toFixed(0),
    (s.threads_pct.node ?? s.threads_pct.MainThread ?? 0).toFixed(0),
    `${s.rss_mb}M`,
    s.eld_ms ? s.eld_ms.p99.toFixed(1) : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

interface Ratios {
  [pair: string]: { rtt_p99: number; rtt_p50: number; answered_per_s: number };
}

function ratios(runs: Run[]): Ratios {
  const by = new Map(runs.map((r) => [r.target, r.report]));
  const out: Ratios = {};
  for (const [product, raw] of [
    ['uws', 'echo-uws'],
    ['ws', 'echo-ws'],
  ] as const) {
    const p = by.get(product);
    const r = by.get(raw);
    if (!p || !r) continue;
    const q = (a: number, b: number) => (b === 0 ? 0 : Math.round((a / b) * 100) / 100);
    out[`${product}/${raw}`] = {
      rtt_p50: q(p.rtt.p50_ms, r.rtt.p50_ms),
      rtt_p99: q(p.rtt.p99_ms, r.rtt.p99_ms),
      answered_per_s: q(p.answered_per_s, r.answered_per_s),
    };
  }
  return out;
}

function threadsLine(runs: Run[]): string {
  return runs
    .map(
      (r) =>
        `  ${r.target.padEnd(8)} server threads (% of one core): ${Object.entries(r.server.threads_pct)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    )
    .join('\n');
}

function save(key: string, value: unknown): void {
  const file = flags.out;
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // A first run starts the file.
  }
  all[key] = value;
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  process.stdout.write(`wrote ${file} [${key}]\n`);
}

const machine = () => ({
  cpus: availableParallelism(),
  node: process.version,
  at: new Date().toISOString(),
});

function passes(r: ClientReport, n: number): boolean {
  return (
    r.sessions.held === n &&
    r.frames.lost === 0 &&
    r.frames.dropped === 0 &&
    r.frames.frame_errors === 0 &&
    r.rtt.p99_ms < frameMs
  );
}

// ---------------------------------------------------------------------------------------------
// Main

/** Median of every numeric leaf at the same path across runs; other leaves from the first run. */
function medianOf<T>(items: T[]): T {
  const first = items[0] as T;
  if (typeof first === 'number') {
    const sorted = (items as number[]).slice().sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] as T;
  }
  if (first === null || typeof first !== 'object' || Array.isArray(first)) return first;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) {
    out[key] = medianOf(items.map((i) => (i as Record<string, unknown>)[key]));
  }
  return out as T;
}

async function comparison(): Promise<void> {
  const repeat = Math.max(1, Math.min(10, Number(flags.repeat)));
  const servers = new Map<Target, Server>();
  const product = targets.some((t) => t === 'uws' || t === 'ws')
    ? await startProduct(100_000, 'product')
    : undefined;
  for (const t of targets) {
    if (t === 'uws' || t === 'ws') servers.set(t, product as Server);
    else servers.set(t, await startEcho(t));
  }
  process.stdout.write(
    `${mode} ${sessions} sessions × ${durationS} s, ${frameMs} ms frames of 48 kHz stereo s16, ` +
      `targets ${targets.join(', ')}, ${repeat} round(s) interleaved; ${availableParallelism()} CPUs, ` +
      'generator and servers on one machine\n',
  );
  const rounds: Run[][] = [];
  try {
    for (let round = 0; round < repeat; round++) {
      const runs: Run[] = [];
      for (const t of targets) {
        runs.push(await runGenerator(t, servers.get(t) as Server, sessions, durationS, mode as 'paced'));
        await sleep(1000);
      }
      rounds.push(runs);
      if (repeat > 1) process.stdout.write(`\nround ${round + 1}\n${table(runs)}\n${threadsLine(runs)}\n`);
    }
  } finally {
    for (const s of new Set(servers.values())) await s.stop();
  }
  // With several rounds, the summary is the median of each number per target over the rounds.
  const summary = targets.map((t) => medianOf(rounds.map((runs) => runs.find((r) => r.target === t) as Run)));
  const perRound = rounds.map(ratios);
  const rs = repeat > 1 ? medianOf(perRound) : (perRound[0] as Ratios);
  process.stdout.write(
    `\n${repeat > 1 ? `median over ${repeat} rounds` : 'result'}\n${table(summary)}\n${threadsLine(summary)}\n`,
  );
  for (const [pair, r] of Object.entries(rs)) {
    process.stdout.write(
      `  ratio ${pair}${repeat > 1 ? ' (median of same-round ratios)' : ''}: rtt p50 ×${r.rtt_p50}, ` +
        `rtt p99 ×${r.rtt_p99}, answered/s ×${r.answered_per_s}\n`,
    );
  }
  save(`${mode}-${sessions}`, {
    machine: machine(),
    options: { mode, sessions, duration_s: durationS, frame_ms: frameMs, targets, repeat, env: flags.env },
    median: summary,
    ratios: rs,
    rounds,
    ratios_per_round: perRound,
  });
}

async function capacity(): Promise<void> {
  const start = Number(flags['capacity-start']);
  const max = Number(flags['capacity-max']);
  const stepS = Number(flags['capacity-duration']);
  const maxSteps = Number(flags['capacity-steps']);
  const result: Record<string, unknown> = { machine: machine(), frame_ms: frameMs, step_s: stepS };
  for (const transport of targets.filter((t): t is 'uws' | 'ws' => t === 'uws' || t === 'ws')) {
    process.stdout.write(`\ncapacity search on ${transport}: p99 < ${frameMs} ms, zero loss\n`);
    const server = await startProduct(100_000, `product-${transport}`);
    const steps: Run[] = [];
    let lo = 0;
    let hi: number | undefined;
    let n = start;
    try {
      for (let i = 0; i < maxSteps; i++) {
        let run = await runGenerator(transport, server, n, stepS, 'paced');
        steps.push(run);
        let ok = passes(run.report, n);
        if (!ok && i + 1 < maxSteps) {
          // On a shared machine one stall can fail a step: a failure counts only when it repeats.
          process.stdout.write(`  n=${n} failed (rtt p99 ${run.report.rtt.p99_ms} ms); confirming\n`);
          i++;
          await sleep(2000);
          run = await runGenerator(transport, server, n, stepS, 'paced');
          steps.push(run);
          ok = passes(run.report, n);
        }
        process.stdout.write(
          `  step ${i + 1}: n=${n} ${ok ? 'PASS' : 'FAIL'} rtt p99 ${run.report.rtt.p99_ms} ms, ` +
            `lost ${run.report.frames.lost}, dropped ${run.report.frames.dropped}, ` +
            `held ${run.report.sessions.held}\n`,
        );
        if (ok) lo = n;
        else hi = n;
        const next = hi === undefined ? Math.min(max, n * 2) : Math.floor((lo + hi) / 2);
        if (next === n || (hi !== undefined && hi - lo <= Math.max(10, lo * 0.1))) break;
        n = next;
        await sleep(2000);
      }
    } finally {
      await server.stop();
    }
    process.stdout.write(`\n${table(steps)}\n${threadsLine(steps)}\n`);
    const entry: Record<string, unknown> = { capacity: lo, first_failing: hi ?? null, steps };
    // Admission control: with MAX_SESSIONS at the capacity, one step past it must be refused with
    // 503 before the upgrade, and the admitted sessions must stay within budget.
    if (lo > 0) {
      const over = hi ?? Math.round(lo * 1.25);
      process.stdout.write(
        `\nadmission check on ${transport}: MAX_SESSIONS=${lo}, ${over} sessions offered\n`,
      );
      const limited = await startProduct(lo, `product-${transport}-limited`);
      try {
        const run = await runGenerator(transport, limited, over, stepS, 'paced');
        const r = run.report;
        const admitted = r.sessions.opened === lo && (r.sessions.refused['503'] ?? 0) === over - lo;
        const withinBudget = passes(r, lo);
        process.stdout.write(
          `${table([run])}\n  admitted ${r.sessions.opened}, refused ${JSON.stringify(r.sessions.refused)}: ` +
            `${admitted ? 'PASS' : 'FAIL'}; admitted sessions rtt p99 ${r.rtt.p99_ms} ms, lost ` +
            `${r.frames.lost}, dropped ${r.frames.dropped}: ${withinBudget ? 'PASS' : 'FAIL'}\n`,
        );
        entry.admission = {
          max_sessions: lo,
          offered: over,
          refused_503: admitted,
          within_budget: withinBudget,
          run,
        };
      } finally {
        await limited.stop();
      }
    }
    result[transport] = entry;
    process.stdout.write(`capacity on ${transport}: ${lo} sessions (first failing: ${hi ?? 'none'})\n`);
  }
  save('capacity', result);
}

/**
 * Latency against load: each product transport (and its raw echo baseline) at every session count of
 * `--sweep`, paced, one round each; the percentiles go to bench/stream.json and a chart to
 * bench/latency-vs-sessions.svg.
 */
async function sweep(): Promise<void> {
  const counts = (flags.sweep ?? '')
    .split(',')
    .map(Number)
    .filter((n) => n >= 1 && n <= 20_000);
  if (counts.length === 0) throw new Error('--sweep takes a list of session counts, e.g. 25,50,100,200');
  const product = await startProduct(100_000, 'product');
  const echoes = new Map<Target, Server>();
  const points: Array<{
    target: Target;
    sessions: number;
    rtt_p50_ms: number;
    rtt_p99_ms: number;
    server_p99_ms: number | null;
    lost: number;
    dropped: number;
  }> = [];
  try {
    for (const t of targets)
      if (t.startsWith('echo')) echoes.set(t, await startEcho(t as 'echo-uws' | 'echo-ws'));
    for (const n of counts) {
      for (const t of targets) {
        process.stdout.write(`\nsweep: ${n} sessions on ${t}\n`);
        const server = t.startsWith('echo') ? (echoes.get(t) as Server) : product;
        const run = await runGenerator(t, server, n, durationS, 'paced');
        const r = run.report;
        points.push({
          target: t,
          sessions: n,
          rtt_p50_ms: r.rtt.p50_ms,
          rtt_p99_ms: r.rtt.p99_ms,
          server_p99_ms: r.server?.p99_ms_median ?? null,
          lost: r.frames.lost,
          dropped: r.frames.dropped,
        });
        await sleep(1000);
      }
    }
  } finally {
    await product.stop();
    for (const e of echoes.values()) await e.stop();
  }
  const colors: Record<string, string> = {
    uws: '#1f77b4',
    ws: '#d62728',
    'echo-uws': '#7fb3d5',
    'echo-ws': '#f1948a',
  };
  const series: Series[] = [];
  for (const t of targets) {
    const mine = points.filter((p) => p.target === t);
    series.push({
      label: `${t} client p99`,
      color: colors[t] ?? '#555',
      dashed: true,
      points: mine.map((p) => ({ x: p.sessions, y: p.rtt_p99_ms })),
    });
    if (!t.startsWith('echo')) {
      series.push({
        label: `${t} server p99`,
        color: colors[t] ?? '#555',
        points: mine.map((p) => ({ x: p.sessions, y: p.server_p99_ms ?? 0 })),
      });
    }
  }
  const svg = renderChart(
    `Frame latency vs paced sessions (${frameMs} ms frames, 5-node pipeline, ${availableParallelism()} CPUs)`,
    'sessions',
    'latency p99 (ms, log)',
    series,
  );
  const svgPath = here('bench/latency-vs-sessions.svg');
  writeFileSync(svgPath, svg);
  save('sweep', {
    machine: machine(),
    options: { counts, duration_s: durationS, frame_ms: frameMs, targets },
    points,
  });
  process.stdout.write(`\nsessions  target    rtt p50  rtt p99  server p99  lost  dropped\n`);
  for (const p of points) {
    process.stdout.write(
      `${String(p.sessions).padStart(8)}  ${p.target.padEnd(8)} ${p.rtt_p50_ms.toFixed(2).padStart(8)} ${p.rtt_p99_ms.toFixed(2).padStart(8)} ${(p.server_p99_ms ?? Number.NaN).toFixed(2).padStart(11)} ${String(p.lost).padStart(5)} ${String(p.dropped).padStart(8)}\n`,
    );
  }
  process.stdout.write(`chart written to ${svgPath}\n`);
}

const deadline = setTimeout(
  () => {
    process.stderr.write('loadtest: overall deadline reached\n');
    cleanup();
    process.exit(3);
  },
  flags.capacity || flags.sweep ? 60 * 60_000 : (durationS + 120 + sessions / 10) * targets.length * 1000,
);
deadline.unref();

(flags.sweep ? sweep() : flags.capacity ? capacity() : comparison()).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`loadtest: ${(err as Error).stack ?? String(err)}\n`);
    cleanup();
    process.exit(1);
  },
);
