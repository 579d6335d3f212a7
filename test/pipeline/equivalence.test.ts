/**
 * docs/pipelines.md: each optimizer pass can be turned off by its flag, and the audio is the same (within float
 * rounding) with it on or off — checked on random valid pipelines through the real native engine.
 */
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { Engine } from '../../src/native.js';
import { planWithEngine } from '../../src/planner.js';
import { validPipeline } from './arbitraries.js';

const engine = new Engine({ workers: 1, pinCores: false });
afterAll(() => engine.shutdown());

const allOff = { enable_fusion: false, remove_dead_code: false, constant_folding: false, reorder: false };
const allOn = { enable_fusion: true, remove_dead_code: true, constant_folding: true, reorder: true };

/** 300 ms of a chord plus noise, interleaved f32: something every node type reacts to. */
function testSignal(sampleRate: number, channels: number, seed: number): Buffer {
  const frames = Math.round(sampleRate * 0.3);
  const out = Buffer.alloc(frames * channels * 4);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++) {
      state = (state * 1664525 + 1013904223) >>> 0;
      const noise = (state / 2 ** 32 - 0.5) * 0.05;
      const t = i / sampleRate;
      const x =
        0.3 * Math.sin(2 * Math.PI * (220 + 110 * c) * t) + 0.2 * Math.sin(2 * Math.PI * 1000 * t) + noise;
      out.writeFloatLE(x, (i * channels + c) * 4);
    }
  }
  return out;
}

function maxAbsDiff(a: Buffer, b: Buffer): number {
  let max = 0;
  for (let i = 0; i + 4 <= a.length; i += 4)
    max = Math.max(max, Math.abs(a.readFloatLE(i) - b.readFloatLE(i)));
  return max;
}

/** Plans the docs/limits.md bounds refuse (a spectrum with hop 1…) never run; equivalence is about the rest. */
const refusedByBounds = (r: { ok: boolean; errors?: readonly { code: string }[] } | undefined) =>
  r !== undefined && !r.ok && (r.errors ?? []).every((e) => /_BOUND$|_EVENT_RATE$/.test(e.code));

it('random valid pipelines give the same audio with every optimization on and off', async () => {
  let compared = 0;
  let optimizedAway = 0;
  await fc.assert(
    fc.asyncProperty(validPipeline(8), fc.nat(), async ({ document, inputFormat }, seed) => {
      const input = { encoding: 'f32le' as const, ...inputFormat };
      const plans = [allOn, allOff].map((optimization) =>
        planWithEngine({ ...document, optimization }, { inputFormat }),
      );
      const [on, off] = plans;
      fc.pre(!refusedByBounds(on) && !refusedByBounds(off));
      if (!on?.ok || !off?.ok) throw new Error(`planning failed: ${JSON.stringify(on?.ok ? off : on)}`);
      if (on.plan.nodes.length < off.plan.nodes.length) optimizedAway += 1;
      const pcm = testSignal(inputFormat.sample_rate, inputFormat.channels, seed);
      const [a, b] = await Promise.all([
        engine.processBatch(on.plan, input, pcm, 'f32le'),
        engine.processBatch(off.plan, input, pcm, 'f32le'),
      ]);
      expect(a.format).toEqual(b.format);
      expect(a.audio.length).toBe(b.audio.length);
      // Float rounding: reordering and folding change the order of f32 operations, nothing more.
      expect(maxAbsDiff(a.audio, b.audio)).toBeLessThan(1e-4);
      compared += 1;
    }),
    { numRuns: 60, seed: 20261124 },
  );
  expect(compared).toBe(60);
  // The property is only meaningful if the optimizer actually changed many of the plans.
  expect(optimizedAway).toBeGreaterThan(10);
}, 120_000);
