/**
 * Builds and runs `rm-loadgen` (native/loadgen), the native load generator, and samples the server's
 * CPU over the generator's streaming window (it prints `{"phase":"streaming"}` and
 * `{"phase":"draining"}` on stderr at the window's edges).
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root, track } from '../processes.js';
import { type CpuUsage, type ProcSample, sample, usageBetween } from './procstat.js';

/** Where cargo puts the binary of a profile. */
export const loadgenPath = (profile: 'release' | 'dev' = 'release') =>
  join(root, `native/target/${profile === 'dev' ? 'debug' : 'release'}/rm-loadgen`);

/**
 * `cargo build -p remotemedia-loadgen` (a no-op when it is up to date). Load runs use `release`;
 * the test suite uses `dev`, whose dependencies `cargo test` has already built.
 */
export function buildLoadgen(profile: 'release' | 'dev' = 'release'): string {
  const args = ['build', '-p', 'remotemedia-loadgen', '--manifest-path', join(root, 'native/Cargo.toml')];
  const r = spawnSync('cargo', profile === 'release' ? [...args, '--release'] : args, {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`building rm-loadgen failed (exit ${r.status})`);
  return loadgenPath(profile);
}

export interface Percentiles {
  count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
}

/** The JSON report `rm-loadgen` prints (see native/loadgen/src/main.rs). */
export interface LoadgenReport {
  label: string;
  url: string;
  pipeline: string | null;
  protocol: 'product' | 'echo';
  mode: 'paced' | 'closed';
  in_flight: number | null;
  frame_ms: number;
  frame_bytes: number;
  input: { sample_rate: number; channels: number; file: string | null };
  duration_s: number;
  sessions: {
    requested: number;
    opened: number;
    held: number;
    refused: Record<string, number>;
    connect_errors: number;
    closed_early: Record<string, number>;
  };
  stream_s: number;
  frames: {
    sent: number;
    answered: number;
    lost: number;
    dropped: number;
    frame_errors: number;
    other_errors: number;
    out_of_order: number | null;
    unexpected: number;
    events: number;
  };
  answered_per_s: number;
  rtt: Percentiles;
  /** The same round trips by when their frame was sent: one entry per `bucket_ms` of streaming. */
  rtt_timeline: { bucket_ms: number; buckets: Percentiles[] };
  send_lag: Percentiles | null;
  server: {
    sessions: number;
    frames_in: number;
    frames_out: number;
    frames_dropped: number;
    p50_ms_median: number;
    p99_ms_median: number;
    p99_ms_max: number;
  } | null;
  generator: { cpu_pct: number; cpu_s: number; cpu_total_s: number; nofile_limit: number };
}

export interface Measured {
  report: LoadgenReport;
  /** The server process over the streaming window. */
  server: CpuUsage | null;
}

/**
 * Runs the generator with `args` (see `rm-loadgen --help`), killed after `limitS`; `serverPid`, when
 * given, is sampled while it streams.
 */
export async function runLoadgen(
  args: string[],
  serverPid: number | null,
  limitS: number,
  bin = loadgenPath(),
  started: (pid: number) => void = () => {},
): Promise<Measured> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) started(child.pid);
  const t = track(child);
  const killer = setTimeout(() => child.kill('SIGKILL'), limitS * 1000);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let before: ProcSample | null = null;
  let after: ProcSample | null = null;
  let pending = '';
  child.stderr?.on('data', (d: Buffer) => {
    pending += d.toString();
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (serverPid === null) continue;
      if (line === '{"phase":"streaming"}') before = sample(serverPid);
      if (line === '{"phase":"draining"}') after = sample(serverPid);
    }
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(killer);
  if (code !== 0 || !out.trim().startsWith('{')) {
    throw new Error(`rm-loadgen ${args.join(' ')} failed (exit ${code}): ${t.log().slice(-2000)}`);
  }
  return { report: JSON.parse(out) as LoadgenReport, server: usageBetween(before, after) };
}
