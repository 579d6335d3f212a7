/**
 * `npm run loadtest:stream`: the streaming scenarios of issue 12 (loadtest/stream/scenarios.ts), each
 * run against the product and against the raw echo server of the same WebSocket library, several
 * times, with the native generator `rm-loadgen` (native/loadgen). Prints and saves the median of
 * every figure and the ratio to the same-run baseline; the generator's own CPU sits beside each.
 *
 * Everything listens on and talks to 127.0.0.1; every run is bounded in time.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { serverNodeFlags } from '../src/node-flags.js';
import { type Echo, type Product, root, sleep, startEcho, startProduct } from './processes.js';
import { quietHarness } from './quiet.js';
import { buildLoadgen, type Measured, runLoadgen } from './stream/loadgen.js';
import { baselineOf, pipelines, type Scenario, scenarios } from './stream/scenarios.js';
import { type RunPair, type ScenarioSummary, summarize, table } from './stream/summary.js';
import { capacity, chart, point, type SweepPoint } from './stream/sweep.js';

const usage = `npm run loadtest:stream -- [options]

  --scenarios a,b     which scenarios (default: all of them)
  --runs N            runs per scenario, each baseline then product (default 3)
  --duration S        seconds of streaming per run (default 10)
  --frame-ms MS       ms of 48 kHz stereo s16 per frame (default 20)
  --sessions N        override every scenario's session count
  --in-flight K       override the closed-loop frames in flight
  --wav FILE          stream a 16-bit PCM WAV (its own rate and channels) instead of the generator's
                      48 kHz stereo tone, e.g. test/fixtures/audio/tones-48k-stereo.wav
  --env KEY=VALUE     product setting (repeatable), e.g. --env WORKERS=1
  --cpu-prof          start the product with node --cpu-prof (profiles in bench/cpuprof/)
  --node-flags="A B"  the product's Node flags instead of src/node-flags.ts's (for an A/B of them),
                      e.g. --node-flags=--no-memory-reducer
  --skip-build        do not run cargo build for rm-loadgen first
  --out FILE          results file (default bench/stream.json; scenarios merge into it)
  --sweep N,N,…       instead: one run per session count of --sweep-scenario (paced), product and
                      baseline; prints the capacity (most sessions with client p99 ≤ --budget-ms, nothing
                      lost or dropped) and draws bench/latency-vs-sessions.svg
  --sweep-scenario S  the paced scenario to sweep (default paced-asr-500-uws)
  --budget-ms MS      the sweep's p99 budget (default 5)
  --nice N            run the generator and servers at this nice level (default 0; negative needs root)
  --help              this text

scenarios:
${scenarios
  .map(
    (s) =>
      `  ${s.name.padEnd(20)} ${s.mode} ${s.sessions} sessions${s.inFlight ? ` × ${s.inFlight} in flight` : ''}, ` +
      `${s.pipeline}, ${s.transport} vs ${baselineOf[s.transport]}; goal: ${s.goal}`,
  )
  .join('\n')}
`;

const { values: flags } = usageErrorExits2(() =>
  parseArgs({
    options: {
      scenarios: { type: 'string' },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      'frame-ms': { type: 'string', default: '20' },
      sessions: { type: 'string' },
      'in-flight': { type: 'string' },
      wav: { type: 'string' },
      env: { type: 'string', multiple: true, default: [] },
      'cpu-prof': { type: 'boolean', default: false },
      'node-flags': { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      out: { type: 'string', default: join(root, 'bench/stream.json') },
      sweep: { type: 'string' },
      'sweep-scenario': { type: 'string', default: 'paced-asr-500-uws' },
      'budget-ms': { type: 'string', default: '5' },
      nice: { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
  }),
);

/** Runs the flag parser; a bad flag prints the usage to stderr and exits 2 (the usual status of a usage error). */
function usageErrorExits2<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}

function positive(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0 && n <= max)) throw new Error(`--${name} must be in (0, ${max}]`);
  return n;
}

const runs = positive('runs', flags.runs, 20) as number;
const durationS = positive('duration', flags.duration, 600) as number;
const frameMs = positive('frame-ms', flags['frame-ms'], 1000) as number;
const sessionsOverride = positive('sessions', flags.sessions, 20_000);
const inFlightOverride = positive('in-flight', flags['in-flight'], 1024);
const productEnv = Object.fromEntries(
  flags.env.map((kv) => {
    const at = kv.indexOf('=');
    if (at < 1) throw new Error(`--env takes KEY=VALUE, got ${kv}`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);

/** The product's Node flags: src/node-flags.ts's unless --node-flags says otherwise. */
const nodeFlags = flags['node-flags']?.split(' ').filter(Boolean) ?? serverNodeFlags;

function chosen(): Scenario[] {
  if (flags.scenarios === undefined) return scenarios;
  return flags.scenarios.split(',').map((name) => {
    const s = scenarios.find((x) => x.name === name.trim());
    if (!s) throw new Error(`unknown scenario ${name}; see --help`);
    return s;
  });
}

async function createPipeline(product: Product, scenario: Scenario): Promise<string> {
  const r = await fetch(`${product.api}/v1/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(pipelines[scenario.pipeline]),
  });
  if (r.status !== 201)
    throw new Error(`creating the ${scenario.pipeline} pipeline: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

const nice = Number(flags.nice);
/** Applies --nice to a process this run started. */
function renice(pid: number): void {
  if (nice !== 0) setPriority(pid, nice);
}

function generate(
  scenario: Scenario,
  url: string,
  protocol: 'product' | 'echo',
  pid: number,
  run: number,
  sessions = sessionsOverride ?? scenario.sessions,
) {
  // Before every run: threads started since the last one (libuv's pool starts on first use) too.
  quietHarness();
  const args = [
    ...['--url', url, '--protocol', protocol, '--mode', scenario.mode],
    ...['--sessions', String(sessions), '--duration', String(durationS), '--frame-ms', String(frameMs)],
    ...['--in-flight', String(inFlightOverride ?? scenario.inFlight ?? 1), '--seed', String(run + 1)],
    ...['--label', `${scenario.name} ${protocol}`],
    ...(flags.wav === undefined ? [] : ['--wav', flags.wav]),
  ];
  return runLoadgen(args, pid, durationS + 90 + sessions / 20, undefined, renice);
}

function brief(label: string, m: Measured): string {
  const r = m.report;
  return (
    `    ${label.padEnd(9)} ${Math.round(r.answered_per_s)} frames/s, rtt p50 ${r.rtt.p50_ms} p99 ${r.rtt.p99_ms} ms, ` +
    `lost ${r.frames.lost}, dropped ${r.frames.dropped}, held ${r.sessions.held}/${r.sessions.requested}, ` +
    `gen cpu ${r.generator.cpu_pct}%, server cpu ${m.server?.cpu_pct ?? '?'}%`
  );
}

async function runScenario(
  scenario: Scenario,
  echo: Echo,
): Promise<{ pairs: RunPair[]; summary: ScenarioSummary }> {
  const product = await startProduct(
    productEnv,
    flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', join(root, 'bench/cpuprof')] : [],
    nodeFlags,
  );
  renice(product.pid);
  const pairs: RunPair[] = [];
  try {
    const id = await createPipeline(product, scenario);
    const url = `${product.base[scenario.transport]}/v1/pipelines/${id}/stream`;
    for (let run = 0; run < runs; run++) {
      process.stdout.write(`  run ${run + 1}/${runs}\n`);
      const baseline = await generate(scenario, echo.url, 'echo', echo.pid, run);
      process.stdout.write(`${brief(baselineOf[scenario.transport], baseline)}\n`);
      await sleep(1000);
      const measured = await generate(scenario, url, 'product', product.pid, run);
      process.stdout.write(`${brief(scenario.transport, measured)}\n`);
      pairs.push({ baseline, product: measured });
      await sleep(1000);
    }
  } finally {
    await product.stop();
  }
  return { pairs, summary: summarize(pairs) };
}

async function runSweep(echoes: Record<'echo-uws' | 'echo-ws', Echo>): Promise<unknown> {
  const scenario = scenarios.find((s) => s.name === flags['sweep-scenario']);
  if (scenario?.mode !== 'paced') throw new Error('--sweep-scenario must name a paced scenario');
  const counts = (flags.sweep ?? '').split(',').map((n) => positive('sweep', n, 20_000) as number);
  const budgetMs = positive('budget-ms', flags['budget-ms'], 10_000) as number;
  const baseline = baselineOf[scenario.transport];
  const points: SweepPoint[] = [];
  const product = await startProduct(productEnv, [], nodeFlags);
  renice(product.pid);
  try {
    const id = await createPipeline(product, scenario);
    const url = `${product.base[scenario.transport]}/v1/pipelines/${id}/stream`;
    for (const n of counts) {
      process.stdout.write(`\n${scenario.name} at ${n} sessions\n`);
      const b = await generate(scenario, echoes[baseline].url, 'echo', echoes[baseline].pid, 0, n);
      process.stdout.write(`${brief(baseline, b)}\n`);
      const p = await generate(scenario, url, 'product', product.pid, 0, n);
      process.stdout.write(`${brief(scenario.transport, p)}\n`);
      points.push(point(n, baseline, b), point(n, scenario.transport, p));
    }
  } finally {
    await product.stop();
  }
  const held = {
    [scenario.transport]: capacity(points, scenario.transport, budgetMs),
    [baseline]: capacity(points, baseline, budgetMs),
  };
  const title = `Client p99 vs paced sessions: ${scenario.pipeline} on ${scenario.transport} (${frameMs} ms frames, ${availableParallelism()} CPUs)`;
  writeFileSync(join(root, 'bench/latency-vs-sessions.svg'), chart(title, points));
  process.stdout.write(
    `\ncapacity at client p99 ≤ ${budgetMs} ms, nothing lost or dropped: ${JSON.stringify(held)} sessions\n` +
      `chart: bench/latency-vs-sessions.svg\n`,
  );
  return {
    at: new Date().toISOString(),
    scenario: scenario.name,
    budget_ms: budgetMs,
    duration_s: durationS,
    env: productEnv,
    node_flags: nodeFlags,
    capacity: held,
    points,
  };
}

function save(results: Record<string, unknown>): void {
  let all: { scenarios?: Record<string, unknown> } = {};
  try {
    all = JSON.parse(readFileSync(flags.out, 'utf8'));
  } catch {
    // A first run starts the file.
  }
  const merged = { ...all, scenarios: { ...(all.scenarios ?? {}), ...results } };
  mkdirSync(dirname(flags.out), { recursive: true });
  writeFileSync(flags.out, `${JSON.stringify(merged, null, 2)}\n`);
  process.stdout.write(`\nwrote ${flags.out}\n`);
}

async function main(): Promise<void> {
  if (flags.help) {
    process.stdout.write(usage);
    return;
  }
  const list = chosen();
  if (!flags['skip-build']) buildLoadgen();
  const machine = { cpus: availableParallelism(), cpu: cpus()[0]?.model, node: process.version };
  process.stdout.write(
    `${list.length} scenario(s) × ${runs} run(s) × ${durationS} s, ${frameMs} ms frames of ` +
      `${flags.wav ?? "the generator's 48 kHz stereo s16 tone"}; ` +
      `${machine.cpus} CPUs shared by generator and servers\n`,
  );
  const echoes = { 'echo-uws': await startEcho('echo-uws'), 'echo-ws': await startEcho('echo-ws') };
  for (const e of Object.values(echoes)) renice(e.pid);
  if (flags.sweep !== undefined) {
    try {
      save({ [`sweep:${flags['sweep-scenario']}`]: await runSweep(echoes) });
    } finally {
      for (const e of Object.values(echoes)) await e.stop();
    }
    return;
  }
  const results: Record<string, unknown> = {};
  const summaries: [Scenario, ScenarioSummary][] = [];
  try {
    for (const scenario of list) {
      process.stdout.write(`\n${scenario.name}: ${scenario.goal}\n`);
      const { pairs, summary } = await runScenario(scenario, echoes[baselineOf[scenario.transport]]);
      summaries.push([scenario, summary]);
      results[scenario.name] = {
        at: new Date().toISOString(),
        machine,
        scenario: { ...scenario, sessions: sessionsOverride ?? scenario.sessions, frame_ms: frameMs },
        options: {
          runs,
          duration_s: durationS,
          env: productEnv,
          node_flags: nodeFlags,
          in_flight: inFlightOverride ?? scenario.inFlight,
        },
        summary,
        runs: pairs,
      };
    }
  } finally {
    for (const e of Object.values(echoes)) await e.stop();
  }
  process.stdout.write(
    `\nmedians over ${runs} run(s); ratios are product / baseline of the same run, median\n`,
  );
  for (const [s, sum] of summaries) {
    process.stdout.write(
      `\n${s.name} (goal: ${s.goal})\n${table([
        [baselineOf[s.transport], sum.baseline],
        [s.transport, sum.product],
      ])}\n  ratio: frames/s ×${sum.ratio.answered_per_s}, rtt p99 ×${sum.ratio.rtt_p99}\n`,
    );
  }
  save(results);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`loadtest:stream: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
