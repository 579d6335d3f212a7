/**
 * `npm run loadtest:profile`: where a frame's CPU goes in the server, under the closed-loop load of
 * `loadtest:stream`'s `closed-gain` scenario (50 sessions × 4 frames in flight, one `gain` node, uWS).
 *
 *   1. `perf record` (cpu-clock, call graphs) of the whole server process, both threads and the native
 *      workers, over a window of the run; samples are attributed to the steps of a frame's path
 *      (loadtest/profile/perf-breakdown.ts) and divided by the frames answered in the window.
 *   2. `node --cpu-prof` of the JS thread under the same load, summarised by source and function
 *      (loadtest/cpuprofile-summary.ts).
 *
 * Writes bench/profile/{perf-breakdown.md,perf-breakdown.json,perf-report.txt,cpuprofile-summary.txt}.
 * Needs `perf` (Debian: `apt-get install linux-perf`). Loopback only; bounded in time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Product, root, sleep, startProduct } from './processes.js';
import { breakdown, markdown, parsePerfScript } from './profile/perf-breakdown.js';
import { buildLoadgen, type Measured, runLoadgen } from './stream/loadgen.js';
import { pipelines } from './stream/scenarios.js';

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '14' },
    window: { type: 'string', default: '8' },
    frequency: { type: 'string', default: '999' },
    paced: { type: 'string' },
    out: { type: 'string', default: join(root, 'bench/profile') },
    help: { type: 'boolean', default: false },
  },
});
const durationS = Number(flags.duration);
const windowS = Number(flags.window);
const pacedSessions = flags.paced === undefined ? undefined : Number(flags.paced);
if (pacedSessions !== undefined && !(Number.isInteger(pacedSessions) && pacedSessions > 0)) {
  throw new Error('--paced takes a session count');
}
const load =
  pacedSessions === undefined
    ? 'closed loop, 50 sessions × 4 in flight'
    : `${pacedSessions} paced sessions (20 ms frames, randomly phased)`;
if (!(windowS > 0 && durationS >= windowS + 4)) throw new Error('--duration must be at least --window + 4');

async function underLoad<T>(
  product: Product,
  during: () => Promise<T>,
): Promise<{ run: Measured; during: T }> {
  const r = await fetch(`${product.api}/v1/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(pipelines.gain),
  });
  const { id } = (await r.json()) as { id: string };
  const args = [
    ...['--url', `${product.base.uws}/v1/pipelines/${id}/stream`, '--duration', String(durationS)],
    ...(pacedSessions === undefined
      ? ['--mode', 'closed', '--sessions', '50', '--in-flight', '4']
      : ['--mode', 'paced', '--sessions', String(pacedSessions)]),
  ];
  const [run, result] = await Promise.all([
    runLoadgen(args, product.pid, durationS + 60),
    (async () => {
      await sleep(2000);
      return during();
    })(),
  ]);
  return { run, during: result };
}

function perfRecord(pid: number, file: string): Promise<void> {
  const args = ['record', '-e', 'cpu-clock', '-F', flags.frequency, '-g', '-p', String(pid), '-o', file];
  const child = spawn('perf', [...args, '--', 'sleep', String(windowS)], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited ${code}`))));
  });
}

function perf(args: string[]): string {
  const r = spawnSync('perf', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`perf ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  if (flags.help) {
    process.stdout.write(
      'npm run loadtest:profile -- [--duration 14] [--window 8] [--frequency 999] [--paced N] [--out DIR]\n' +
        '  --paced N   profile N paced sessions instead of the closed loop (50 × 4 in flight)\n',
    );
    return;
  }
  buildLoadgen();
  mkdirSync(flags.out, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'rm-profile-'));
  try {
    // 1. perf over both threads. --perf-basic-prof names JIT-compiled JS functions for perf.
    const product = await startProduct({}, ['--perf-basic-prof']);
    const data = join(scratch, 'perf.data');
    let run: Measured;
    try {
      ({ run } = await underLoad(product, () => perfRecord(product.pid, data)));
    } finally {
      await product.stop();
    }
    const frames = Math.round(run.report.answered_per_s * windowS);
    const samples = parsePerfScript(perf(['script', '-i', data, '-F', 'comm,tid,period,ip,sym,dso']));
    const b = breakdown(samples, product.pid, frames, windowS);
    const context =
      `${load}, \`gain\`, uWS port; ${run.report.answered_per_s} frames/s ` +
      `answered; server CPU ${run.server?.cpu_pct ?? '?'} % of one core ` +
      `(${JSON.stringify(run.server?.threads_pct ?? {})}); generator CPU ${run.report.generator.cpu_pct} %; ` +
      `perf window ${windowS} s, ${samples.length} samples at ${flags.frequency} Hz`;
    writeFileSync(join(flags.out, 'perf-breakdown.md'), `${context}\n\n${markdown(b)}\n`);
    writeFileSync(join(flags.out, 'perf-breakdown.json'), `${JSON.stringify({ context, ...b }, null, 2)}\n`);
    writeFileSync(
      join(flags.out, 'perf-report.txt'),
      perf([
        'report',
        '-i',
        data,
        '--stdio',
        '--no-children',
        '--sort',
        'comm,dso,sym',
        '--percent-limit',
        '0.5',
        '-g',
        'none',
      ]),
    );
    process.stdout.write(`${context}\n\n${markdown(b)}\n`);

    // 2. The JS thread by function, from V8's own profiler.
    const profDir = join(scratch, 'cpuprof');
    const profiled = await startProduct({}, ['--cpu-prof', '--cpu-prof-dir', profDir]);
    try {
      await underLoad(profiled, async () => undefined);
    } finally {
      await profiled.stop();
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('the server wrote no .cpuprofile');
    const summary = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(root, 'loadtest/cpuprofile-summary.ts'), join(profDir, file), '--top', '30'],
      { encoding: 'utf8', cwd: root },
    );
    writeFileSync(
      join(flags.out, 'cpuprofile-summary.txt'),
      summary.stdout.replaceAll(profDir, 'bench/cpuprof'),
    );
    process.stdout.write(
      `\nwrote ${flags.out}/{perf-breakdown.md,perf-breakdown.json,perf-report.txt,cpuprofile-summary.txt}\n`,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`loadtest:profile: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
