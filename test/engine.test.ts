import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Engine,
  type EngineOutput,
  enableFaultNodes,
  inspectPlan,
  nativeNodeTypes,
  OutputKind,
  type StreamFormat,
} from '../src/native.js';
import { nodeTypes } from '../src/pipeline/catalog.js';
import { chunk, readFixtureWav } from './support/audio.js';

const engine = new Engine({ workers: 2, pinCores: false });

afterAll(() => engine.shutdown());

/** Cores as Linux writes an affinity list (`0`, `0-2`, `0,2`). */
function listOf(cores: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < cores.length; ) {
    let j = i;
    while (j + 1 < cores.length && cores[j + 1] === (cores[j] as number) + 1) j++;
    runs.push(j === i ? String(cores[i]) : `${cores[i]}-${cores[j]}`);
    i = j + 1;
  }
  return runs.join(',');
}

function gainPlan(input: { sample_rate: number; channels: number }, db: number) {
  return {
    input,
    nodes: [{ id: 'g', type: 'gain', params: { db }, input: null }],
    output: 'g',
  };
}

/** A streaming session on the test engine: s16le out, messages up to 1 MiB, nothing dropped. */
function open(plan: object, input: StreamFormat, onOutput: (o: EngineOutput) => void) {
  return engine.createSession(
    plan,
    input,
    { encoding: 's16le' },
    { maxMessageBytes: 1 << 20, queueLimitMs: null },
    onOutput,
  );
}

/** Streams `messages` through a new session and resolves with every output once stopped. */
function stream(plan: object, input: StreamFormat, messages: Buffer[]): Promise<EngineOutput[]> {
  return new Promise((resolve, reject) => {
    const outs: EngineOutput[] = [];
    const s = open(plan, input, (o) => {
      // An answer's audio is lent for the call only (native.ts EngineOutput): keep a copy.
      outs.push({ ...o, audio: o.audio && Buffer.from(o.audio) });
      if (o.kind === OutputKind.Stopped) resolve(outs);
      if (o.kind === OutputKind.Failed) reject(new Error(o.errorMessage));
    });
    for (const m of messages) s.push(m);
    s.stop();
  });
}

const audioOf = (outs: EngineOutput[]) => Buffer.concat(outs.flatMap((o) => (o.audio ? [o.audio] : [])));

describe('native engine', () => {
  it('builds exactly the node types of the pipeline catalog, in the order of docs/pipelines.md', () => {
    expect(nativeNodeTypes()).toEqual(nodeTypes);
  });

  it('answers every message once, in order, and the stream does not depend on message size', async () => {
    const { info, pcm } = readFixtureWav('speech-48k-mono.wav');
    const input: StreamFormat = { encoding: 's16le', sample_rate: info.sample_rate, channels: info.channels };
    const plan = gainPlan(input, -6);
    const results: Buffer[] = [];
    for (const ms of [10, 20, 37]) {
      const messages = chunk(pcm, 2, info.sample_rate, ms);
      const outs = await stream(plan, input, messages);
      const answers = outs.filter((o) => o.kind === OutputKind.Audio);
      expect(answers.map((o) => o.frame)).toEqual(messages.map((_, i) => i));
      expect(outs.at(-2)?.kind).toBe(OutputKind.Flushed);
      results.push(audioOf(outs));
    }
    const whole = audioOf(await stream(plan, input, [pcm]));
    for (const r of results) expect(r.equals(whole)).toBe(true);
    expect(whole.length).toBe(pcm.length);
  });

  it('a turn that queues many messages gets answers back before it ends, all of them in order', async () => {
    const input: StreamFormat = { encoding: 's16le', sample_rate: 48000, channels: 1 };
    const frames: number[] = [];
    let stopped: () => void = () => {};
    const done = new Promise<void>((r) => {
      stopped = r;
    });
    const s = open(gainPlan(input, 0), input, (o) => {
      if (o.kind === OutputKind.Audio) frames.push(o.frame);
      if (o.kind === OutputKind.Stopped) stopped();
    });
    const frame = Buffer.alloc(1920);
    for (let i = 0; i < 256; i++) {
      s.push(frame);
      // As a busy turn does between socket reads: the workers get time to answer meanwhile.
      const until = performance.now() + 0.05;
      while (performance.now() < until) {}
    }
    const answeredWithinTurn = frames.length;
    s.stop();
    await done;
    expect(answeredWithinTurn).toBeGreaterThan(0);
    expect(frames).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });

  it('a handler that queues many messages while answers are handed back disturbs no answer', async () => {
    const input: StreamFormat = { encoding: 's16le', sample_rate: 48000, channels: 1 };
    const seen = { a: [] as number[], b: [] as number[] };
    let pending = 2;
    let stopped: () => void = () => {};
    const done = new Promise<void>((r) => {
      stopped = r;
    });
    const onOutput = (into: number[]) => (o: EngineOutput) => {
      if (o.kind === OutputKind.Audio) into.push(o.frame);
      if (o.kind === OutputKind.Stopped && --pending === 0) stopped();
    };
    const frame = Buffer.alloc(1920);
    const b = open(gainPlan(input, 0), input, onOutput(seen.b));
    // Each of a's answers queues 40 messages for b, from inside the hand-back (as a relay would), and
    // takes a while: the hand-back outlasts the millisecond after which a turn takes answers back.
    const a = open(gainPlan(input, 0), input, (o) => {
      onOutput(seen.a)(o);
      if (o.kind === OutputKind.Stopped) b.stop();
      if (o.kind !== OutputKind.Audio) return;
      for (let i = 0; i < 40; i++) b.push(frame);
      const until = performance.now() + 0.05;
      while (performance.now() < until) {}
    });
    for (let i = 0; i < 64; i++) a.push(frame);
    a.stop();
    await done;
    expect(seen.a).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(seen.b).toEqual(Array.from({ length: 64 * 40 }, (_, i) => i));
  });

  it('batch processing equals streaming', async () => {
    const { info, pcm } = readFixtureWav('tones-48k-stereo.wav');
    const input: StreamFormat = { encoding: 's16le', sample_rate: info.sample_rate, channels: info.channels };
    const plan = gainPlan(input, 3);
    const batch = await engine.processBatch(plan, input, pcm, 's16le');
    const streamed = audioOf(await stream(plan, input, chunk(pcm, 4, info.sample_rate, 20)));
    expect(batch.audio.equals(streamed)).toBe(true);
    expect(batch.format).toEqual({ sample_rate: 48000, channels: 2 });
  });

  it('answers a malformed message with an error in its place and goes on', async () => {
    const input: StreamFormat = { encoding: 's16le', sample_rate: 8000, channels: 2 };
    const outs = await stream(gainPlan(input, 0), input, [Buffer.alloc(8), Buffer.alloc(6), Buffer.alloc(4)]);
    expect(outs.map((o) => [o.kind, o.frame])).toEqual([
      [OutputKind.Audio, 0],
      [OutputKind.FrameError, 1],
      [OutputKind.Audio, 2],
      [OutputKind.Flushed, -1],
      [OutputKind.Stopped, -1],
    ]);
    expect(outs[1]?.errorCode).toBe('RM_ERR_BAD_FRAME');
  });

  it('a panicking node fails its own session only', async () => {
    enableFaultNodes();
    const input: StreamFormat = { encoding: 's16le', sample_rate: 8000, channels: 1 };
    const faulty = {
      input,
      nodes: [{ id: 'boom', type: '__panic', params: { after_frames: 160 }, input: null }],
      output: 'boom',
    };
    const messages = Array.from({ length: 20 }, () => Buffer.alloc(160));
    const [bad, good] = await Promise.allSettled([
      stream(faulty, input, messages),
      stream(gainPlan(input, 0), input, messages),
    ]);
    expect(bad.status).toBe('rejected');
    expect(good.status).toBe('fulfilled');
    if (good.status === 'fulfilled')
      expect(good.value.filter((o) => o.kind === OutputKind.Audio)).toHaveLength(20);
  });

  it('reports bad plans with stable codes', () => {
    const input = { sample_rate: 8000, channels: 1 };
    expect(() => inspectPlan({ ...gainPlan(input, 0), output: 'nope' })).toThrow(
      expect.objectContaining({ code: 'RM_ERR_BAD_PLAN' }),
    );
    expect(() => inspectPlan(gainPlan(input, 100))).toThrow(
      expect.objectContaining({ code: 'RM_ERR_BAD_PLAN' }),
    );
    expect(inspectPlan(gainPlan(input, 0))).toMatchObject({
      sampleRate: 8000,
      channels: 1,
      latencyFrames: 0,
    });
  });

  it('the per-frame calls refuse an ended session, a forged handle and wrong arguments, and harm nothing', async () => {
    // src/native.ts reaches them through EngineSession.push and Engine; here they are called raw too
    // (native/binding/src/fast.rs), the way a bug in the host could call them.
    const binding = createRequire(import.meta.url)('../native/binding/index.js');
    const input: StreamFormat = { encoding: 's16le', sample_rate: 8000, channels: 1 };
    const frame = Buffer.alloc(320);
    const s = open(gainPlan(input, 0), input, () => {});
    s.close();
    expect(() => s.push(frame)).toThrow(expect.objectContaining({ code: 'RM_ERR_SESSION_CLOSED' }));
    for (const handle of [987_654_321, -1, 0.5, Number.NaN, 2 ** 60])
      expect(() => binding.fastPush(handle, frame)).toThrow(
        expect.objectContaining({ code: 'RM_ERR_SESSION_CLOSED' }),
      );
    const bad = expect.objectContaining({ code: 'RM_ERR_NATIVE' });
    expect(() => binding.fastPush()).toThrow(bad);
    expect(() => binding.fastPush('1', frame)).toThrow(bad);
    expect(() => binding.fastPush(0, 'not bytes')).toThrow(bad);
    expect(() => binding.fastPush(0, new Float32Array(80))).toThrow(bad);
    expect(() => binding.fastWake({})).toThrow(bad);
    expect(() => binding.fastTakeBatch(0, new ArrayBuffer(64))).toThrow(bad);
    expect(binding.fastTakeBatch(987_654_321, Buffer.alloc(64))).toBe(0);
    // The engine still answers everyone else.
    const outs = await stream(gainPlan(input, 0), input, [frame, frame]);
    expect(outs.filter((o) => o.kind === OutputKind.Audio)).toHaveLength(2);
  });

  it('reads stats for every node of a long chain, live and as they stood at close', async () => {
    // 20 nodes: more than the stats scratch first holds (native.ts), so it grows on the way.
    const input: StreamFormat = { encoding: 's16le', sample_rate: 8000, channels: 1 };
    const ids = Array.from({ length: 20 }, (_, i) => `g${i}`);
    const plan = {
      input,
      nodes: ids.map((id, i) => ({
        id,
        type: 'gain',
        params: { db: -0.1 },
        input: i === 0 ? null : ids[i - 1],
      })),
      output: ids[ids.length - 1],
      optimization: { constant_folding: false, enable_fusion: false },
    };
    let answered = 0;
    const s = open(plan, input, (o) => {
      if (o.kind === OutputKind.Audio) answered++;
    });
    for (let k = 0; k < 3; k++) s.push(Buffer.alloc(320, 1));
    for (let i = 0; i < 400 && answered < 3; i++) await new Promise((r) => setTimeout(r, 5));
    const live = s.stats();
    expect([live.framesIn, live.framesOut, live.framesDropped, live.frameErrors]).toEqual([3, 3, 0, 0]);
    expect(live.samplesIn).toBe(480);
    expect(live.nodes.map((n) => n.id)).toEqual(ids);
    expect(live.nodes.every((n) => n.type === 'gain' && n.process.count === 3)).toBe(true);
    for (const p of [live.queueWait, live.process, live.engine]) {
      expect(p.count).toBe(3);
      expect(p.p50Us).toBeGreaterThan(0);
      expect(p.p50Us).toBeLessThanOrEqual(p.p99Us);
      expect(p.p99Us).toBeLessThanOrEqual(p.maxUs);
    }
    s.recordLatency(2e6);
    s.close();
    const closed = s.stats();
    expect(closed.endToEnd.count).toBe(1);
    // 2 ms, within the histograms' 1 % precision.
    expect(Math.abs(closed.endToEnd.p50Us - 2000)).toBeLessThan(20);
    expect(closed.nodes).toHaveLength(20);
    expect(closed.framesOut).toBe(3);
  });

  it('pins workers when asked, and reports it', () => {
    const pinned = new Engine({ workers: 2, pinCores: true });
    const unpinned = new Engine({ workers: 1, pinCores: false });
    try {
      for (const w of pinned.workers()) expect(w.pinned).toBe(w.core !== undefined && w.core !== null);
      expect(pinned.workers().some((w) => w.pinned)).toBe(true);
      expect(unpinned.workers()).toEqual([expect.objectContaining({ index: 0, pinned: false })]);
    } finally {
      pinned.shutdown();
      unpinned.shutdown();
    }
  });

  it('with fewer workers than cores, confines the JS thread to the cores no worker runs on', () => {
    // In a child: the confinement is the building thread's, and this test process must keep its cores.
    const native = pathToFileURL(resolve('src/native.ts')).href;
    const script = `
      import { readFileSync } from 'node:fs';
      import { Engine } from ${JSON.stringify(native)};
      const allowed = () => /Cpus_allowed_list:\\s*(\\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))[1];
      const before = allowed();
      const engine = new Engine({ workers: 1, pinCores: true });
      const out = { before, after: allowed(), hostCores: engine.hostCores, worker: engine.workers()[0] };
      engine.shutdown();
      const full = new Engine({ workers: 2, pinCores: true });
      out.full = { hostCores: full.hostCores, after: allowed() };
      full.shutdown();
      process.stdout.write(JSON.stringify(out));
    `;
    const dir = mkdtempSync(join(tmpdir(), 'rm-cores-'));
    const file = join(dir, 'cores.mts');
    writeFileSync(file, script);
    const cores = readFileSync('/proc/thread-self/status', 'utf8').match(/Cpus_allowed_list:\s*(\S+)/)?.[1];
    const child = spawnSync(process.execPath, ['--import', 'tsx', file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout) as {
      before: string;
      after: string;
      hostCores: number[];
      worker: { core: number | null; pinned: boolean };
      full: { hostCores: number[]; after: string };
    };
    expect(out.before).toBe(cores);
    if (availableParallelism() < 2) {
      // One core: nothing to give the JS thread, and it is left alone.
      expect(out.hostCores).toEqual([]);
      expect(out.after).toBe(out.before);
      return;
    }
    expect(out.worker.pinned).toBe(true);
    expect(out.hostCores.length).toBeGreaterThan(0);
    expect(out.hostCores).not.toContain(out.worker.core);
    // The JS thread may now run only on those cores.
    expect(out.after).toBe(listOf(out.hostCores));
    // Two workers on this many cores (CI's two) leave nothing: the thread keeps what it had.
    if (availableParallelism() === 2) {
      expect(out.full.hostCores).toEqual([]);
      expect(out.full.after).toBe(out.after);
    }
  }, 30_000);

  it('shuts down at once while the host holds a batch and more answers wait behind it', () => {
    // The server calls shutdown() from its only thread, which then takes no more batches: the worker
    // must not wait for the one the host holds. A hang here would hang the test process, so the engine
    // runs in a child with a time limit.
    const native = pathToFileURL(resolve('src/native.ts')).href;
    const script = `
      import { Engine } from ${JSON.stringify(native)};
      const engine = new Engine({ workers: 1, pinCores: false });
      const plan = { input: { sample_rate: 48000, channels: 2 },
        nodes: [{ id: 'g', type: 'gain', params: { db: -6 }, input: null }], output: 'g' };
      const s = engine.createSession(plan, { encoding: 's16le', sample_rate: 48000, channels: 2 },
        { encoding: 's16le' }, { maxMessageBytes: 1 << 20, queueLimitMs: null }, () => {});
      const frame = new Uint8Array(3840);
      for (let i = 0; i < 2000; i++) s.push(frame);
      // One turn wakes the worker; then this thread blocks, taking no batch, while the worker fills
      // one for the host and the next behind it.
      await new Promise((r) => setImmediate(r));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      engine.shutdown();
      process.stdout.write('shut down');
    `;
    const dir = mkdtempSync(join(tmpdir(), 'rm-shutdown-'));
    const file = join(dir, 'shutdown.mts');
    writeFileSync(file, script);
    const child = spawnSync(process.execPath, ['--import', 'tsx', file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(child.error, 'the child did not end in time').toBeUndefined();
    expect(child.stdout).toBe('shut down');
    expect(child.status).toBe(0);
  }, 30_000);
});
