/**
 * Defence in depth (docs/limits.md): whatever gets past validation, the engine refuses a plan too big for it
 * with a catalogued error instead of aborting the process, and bounds the events of one answer even
 * when a live `params` message sets a spectrum's hop to 1.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, OutputKind } from '../src/native.js';

const engine = new Engine({ workers: 1, pinCores: false });
afterAll(() => engine.shutdown());

/** A hand-written plan (no validator in the way) of resamples bouncing between the extreme rates. */
function bouncing(count: number) {
  return {
    input: { sample_rate: 8000, channels: 8 },
    nodes: Array.from({ length: count }, (_, i) => ({
      id: `r${i}`,
      type: 'resample',
      params: { sample_rate: i % 2 === 0 ? 192000 : 8000, quality: 'fast' },
      input: i === 0 ? null : `r${i - 1}`,
    })),
    output: `r${count - 1}`,
  };
}

describe('the engine on plans the validator would refuse', () => {
  it('refuses buffers beyond its bound with RM_ERR_BAD_PLAN, and goes on', () => {
    const create = () =>
      engine.createSession(
        bouncing(120),
        { encoding: 'mulaw', sample_rate: 8000, channels: 8 },
        { encoding: 's16le' },
        { maxMessageBytes: 16 * 1024 * 1024, queueLimitMs: null },
        () => {},
      );
    expect(create).toThrow(expect.objectContaining({ code: 'RM_ERR_BAD_PLAN' }));
    const small = engine.createSession(
      bouncing(4),
      { encoding: 's16le', sample_rate: 8000, channels: 8 },
      { encoding: 's16le' },
      { maxMessageBytes: 65536, queueLimitMs: null },
      () => {},
    );
    small.close();
  });

  it('bounds the event text of one answer after a live hop of 1', async () => {
    const plan = {
      input: { sample_rate: 48000, channels: 1 },
      nodes: [{ id: 's', type: 'spectrum', params: { fft_size: 8192, hop: 4096, bands: 0 }, input: null }],
      output: null,
    };
    let eventBytes = -1;
    let applied = false;
    const done = new Promise<void>((resolve) => {
      const session = engine.createSession(
        plan,
        { encoding: 's16le', sample_rate: 48000, channels: 1 },
        { encoding: 's16le' },
        { maxMessageBytes: 65536, queueLimitMs: null },
        (out) => {
          if (out.kind === OutputKind.ParamsApplied) {
            expect(out.errorCode ?? null).toBeNull();
            applied = true;
          }
          if (out.kind === OutputKind.Audio && out.frame === 1) {
            eventBytes = out.events?.length ?? 0;
            session.close();
            resolve();
          }
        },
      );
      const message = Buffer.alloc(65536);
      for (let i = 0; i < message.length; i += 2) message.writeInt16LE(((i * 7919) % 20000) - 10000, i);
      session.push(message);
      session.setParams('s', { hop: 1 }, 1);
      session.push(message);
    });
    await done;
    expect(applied).toBe(true);
    expect(eventBytes).toBeGreaterThan(0);
    expect(eventBytes).toBeLessThanOrEqual(1 << 20);
  });
});
