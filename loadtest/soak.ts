/**
 * Soak run (docs/limits.md; not part of `npm test`): starts `remotemedia serve` on its default settings and
 * sends it the adversarial suite's random traffic (loadtest/traffic.ts) on both transports for a given
 * time, printing the server's RSS as it goes. The server must stay up, every session must end in valid
 * answers or a catalogued close code, and RSS must stay flat.
 *
 *   npm run build:ts && npm run soak -- --duration 3600 [--parallel 8] [--report 60]
 *
 * Needs the built server (dist/) and native addon. Exits 1 if the server died or any session ended wrongly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { serverNodeFlags } from '../src/node-flags.js';
import { type Outcome, runCase, sequenceArb, type Transport } from './traffic.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3600' },
    parallel: { type: 'string', default: '8' },
    report: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
  },
});
const durationMs = Number(values.duration) * 1000;
const parallel = Number(values.parallel);
const reportMs = Number(values.report) * 1000;
/** MAX_FRAME_BYTES of a server on its defaults (docs/configuration.md). */
const MAX_FRAME_BYTES = 65536;
const MiB = 1024 * 1024;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resident set size of a process, from /proc (Linux). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

async function startServer(): Promise<{ child: ChildProcess; http: string; ws: string; uws: string }> {
  const [port, rtPort] = [await freePort(), await freePort()];
  // Defaults for everything but the ports and the data directory.
  const child = spawn(process.execPath, [...serverNodeFlags, 'dist/cli.js', 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      RT_PORT: String(rtPort),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'rm-soak-')),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const http = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}`);
    const up = await fetch(`${http}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (i > 300) throw new Error('server did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, http, ws: `ws://127.0.0.1:${port}`, uws: `ws://127.0.0.1:${rtPort}` };
}

const server = await startServer();
const created = await fetch(`${server.http}/v1/pipelines`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    name: 'soak',
    nodes: [
      { id: 'g', type: 'gain', params: { db: -6 } },
      { id: 'level', type: 'level', params: {} },
    ],
  }),
});
const { id } = (await created.json()) as { id: string };
const pid = server.child.pid ?? 0;

const totals = { messages: 0, sessions: 0, refused: 0, problems: 0 };
const closes = new Map<string, number>();
const samples: Array<{ t: number; rss: number }> = [];
const started = Date.now();
let seed = Number(values.seed);
let nextReport = started;

function report(): void {
  const t = (Date.now() - started) / 1000;
  const rss = rssOf(pid);
  samples.push({ t, rss });
  console.log(
    `t=${t.toFixed(0)}s messages=${totals.messages} sessions=${totals.sessions} refused=${totals.refused} problems=${totals.problems} rss=${(rss / MiB).toFixed(1)}MiB`,
  );
}

const sequences = sequenceArb(MAX_FRAME_BYTES);
const transports = fc.constantFrom<Transport>('ws', 'uws');
while (Date.now() - started < durationMs && server.child.exitCode === null) {
  const batch = fc.sample(fc.tuple(transports, sequences), { numRuns: parallel, seed: seed++ });
  const outcomes: Outcome[] = await Promise.all(
    batch.map(([t, steps]) => runCase(`${server[t]}/v1/pipelines/${id}/stream`, t, steps, MAX_FRAME_BYTES)),
  );
  for (const o of outcomes) {
    totals.messages += o.sent;
    totals.sessions++;
    if (o.refused !== undefined) totals.refused++;
    const key = `${o.transport}:${o.refused ?? o.close}`;
    closes.set(key, (closes.get(key) ?? 0) + 1);
    if (o.problem !== undefined) {
      totals.problems++;
      if (totals.problems <= 10) console.log(`problem (${o.transport}, seed ${seed - 1}): ${o.problem}`);
    }
  }
  if (Date.now() >= nextReport) {
    report();
    nextReport += reportMs;
  }
}
const alive = server.child.exitCode === null;
if (alive) report();
const rss = samples.map((s) => s.rss / MiB);
// Flatness: the second half's RSS against the first half's, once warm.
const half = Math.floor(rss.length / 2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
console.log(
  JSON.stringify({
    duration_s: Math.round((Date.now() - started) / 1000),
    server_alive: alive,
    ...totals,
    closes: Object.fromEntries(closes),
    rss_mib: {
      first: rss[0]?.toFixed(1),
      min: Math.min(...rss).toFixed(1),
      max: Math.max(...rss).toFixed(1),
      last: rss.at(-1)?.toFixed(1),
      first_half_mean: mean(rss.slice(1, half)).toFixed(1),
      second_half_mean: mean(rss.slice(half)).toFixed(1),
    },
  }),
);
server.child.kill('SIGTERM');
process.exitCode = alive && totals.problems === 0 ? 0 : 1;
