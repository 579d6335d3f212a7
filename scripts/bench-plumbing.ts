/**
 * `node --import tsx scripts/bench-plumbing.ts`: the engine's per-frame plumbing, in process, without
 * a network: N sessions in a closed loop, each keeping W frames in flight (push → worker → thread-safe
 * callback → dispatch → the session's handler, which pushes the next frame). Prints frames/s and the
 * process CPU per frame (user + system, every thread), the figure that other load on the machine
 * disturbs least. One line per run and the median of the runs.
 *
 *   node --import tsx scripts/bench-plumbing.ts [--pipeline gain|asr] [--sessions 50] [--window 4]
 *        [--seconds 3] [--runs 3] [--workers 2] [--pin] [--spin µs]
 */
import { parseArgs } from 'node:util';
import { Engine, type EngineOutput, OutputKind } from '../src/native.js';
import { planWithEngine } from '../src/planner.js';
import { asrFrontEnd } from '../test/support/pipelines.js';

const { values: flags } = parseArgs({
  options: {
    pipeline: { type: 'string', default: 'gain' },
    sessions: { type: 'string', default: '50' },
    window: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    pin: { type: 'boolean', default: false },
    spin: { type: 'string', default: '0' },
  },
});

const FRAME_BYTES = 3840; // 20 ms of 48 kHz stereo s16le
const input = { encoding: 's16le', sample_rate: 48000, channels: 2 } as const;
const documents: Record<string, unknown> = {
  gain: { name: 'gain', nodes: [{ id: 'gain', type: 'gain', params: { db: -3 } }], output: 'gain' },
  asr: asrFrontEnd,
};
const document = documents[flags.pipeline];
if (document === undefined) throw new Error('--pipeline is gain or asr');
const planned = planWithEngine(document, { inputFormat: { sample_rate: 48000, channels: 2 } });
if (!planned.ok) throw new Error(`cannot plan: ${JSON.stringify(planned.errors)}`);
const plan = planned.plan;

const frame = Buffer.alloc(FRAME_BYTES);
for (let i = 0; i < FRAME_BYTES / 2; i++) frame.writeInt16LE(Math.round(8000 * Math.sin(i / 7)), i * 2);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};

async function run(seconds: number): Promise<{ fps: number; cpuUs: number }> {
  const engine = new Engine({
    workers: Number(flags.workers),
    pinCores: flags.pin,
    spinUs: Number(flags.spin),
  });
  const sessions = Number(flags.sessions);
  const window = Number(flags.window);
  let answered = 0;
  let bytes = 0;
  let running = true;
  const live = Array.from({ length: sessions }, () => {
    const s = engine.createSession(
      plan,
      input,
      { encoding: 's16le' },
      { maxMessageBytes: 65536, queueLimitMs: null },
      (out: EngineOutput) => {
        if (out.kind !== OutputKind.Audio) return;
        answered++;
        bytes += out.audio?.length ?? 0;
        if (running) s.push(frame);
      },
    );
    return s;
  });
  // Warm up for a tenth of the run, then measure.
  for (const s of live) for (let k = 0; k < window; k++) s.push(frame);
  await new Promise((r) => setTimeout(r, (seconds * 1000) / 10));
  const a0 = answered;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const a1 = answered;
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage(c0);
  running = false;
  await new Promise((r) => setTimeout(r, 50));
  for (const s of live) s.close();
  engine.shutdown();
  if (bytes === 0) throw new Error('no audio came back');
  const frames = a1 - a0;
  return { fps: frames / (Number(t1 - t0) / 1e9), cpuUs: (c1.user + c1.system) / frames };
}

const rows: Array<{ fps: number; cpuUs: number }> = [];
for (let r = 0; r < Number(flags.runs); r++) {
  const row = await run(Number(flags.seconds));
  rows.push(row);
  console.log(`run ${r + 1}: ${Math.round(row.fps)} frames/s, ${row.cpuUs.toFixed(2)} µs CPU per frame`);
}
console.log(
  `${flags.pipeline}, ${flags.sessions} sessions × ${flags.window} in flight, ${flags.workers} workers: ` +
    `median ${Math.round(median(rows.map((r) => r.fps)))} frames/s, ` +
    `${median(rows.map((r) => r.cpuUs)).toFixed(2)} µs CPU per frame`,
);
