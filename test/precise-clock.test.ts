/**
 * The precise clock behind telephony pacing (src/native.ts `setPreciseTimeout`): never early, in deadline
 * order, cleared timers stay silent, and a throwing callback does not take the others with it.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { median } from '../loadtest/stats.js';
import { clearPreciseTimeout, setPreciseTimeout } from '../src/native.js';

function after(delayMs: number): Promise<number> {
  const armed = performance.now();
  return new Promise((resolve) =>
    setPreciseTimeout(() => resolve(performance.now() - armed - delayMs), delayMs),
  );
}

describe('setPreciseTimeout', () => {
  it('fires at or after its deadline, never before', async () => {
    const late: number[] = [];
    for (let i = 0; i < 200; i++) late.push(await after(0.5 + (i % 7) * 0.3));
    // The clock's deadline is taken after JS read its own time, so a timer can only be late.
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
    const sorted = [...late].sort((a, b) => a - b);
    console.log(
      `precise clock lateness over ${late.length} timers: p50 ${median(late).toFixed(3)} ms, ` +
        `p99 ${sorted[Math.floor(sorted.length * 0.99)]?.toFixed(3)} ms, max ${sorted.at(-1)?.toFixed(3)} ms`,
    );
  });

  it('fires in deadline order, whatever the order of arming', async () => {
    const fired: number[] = [];
    const delays = [9, 3, 6, 1, 8, 2, 7, 4, 5];
    await new Promise<void>((resolve) => {
      for (const d of delays) {
        setPreciseTimeout(() => {
          fired.push(d);
          if (fired.length === delays.length) resolve();
        }, d * 2);
      }
    });
    expect(fired).toEqual([...delays].sort((a, b) => a - b));
  });

  it('a cleared timer never fires; the others still do', async () => {
    let cleared = 0;
    const id = setPreciseTimeout(() => cleared++, 2);
    clearPreciseTimeout(id);
    await new Promise<void>((resolve) => setPreciseTimeout(resolve, 6));
    expect(cleared).toBe(0);
  });

  it('a callback that throws surfaces as an uncaught exception and the others still fire', async () => {
    const seen: unknown[] = [];
    const onUncaught = (err: unknown) => seen.push(err);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      let ran = false;
      await new Promise<void>((resolve) => {
        setPreciseTimeout(() => {
          throw new Error('boom');
        }, 1);
        setPreciseTimeout(() => {
          ran = true;
          resolve();
        }, 1);
      });
      await new Promise((r) => setImmediate(r));
      expect(ran).toBe(true);
      expect(seen.map((e) => (e as Error).message)).toEqual(['boom']);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
    }
  });

  it('refuses a delay that is not a number', () => {
    expect(() => setPreciseTimeout(() => {}, Number.NaN)).toThrow();
  });
});
