/** src/realtime/providers/reference.ts: the echo reference channel of an `aec` pipeline's calls. */
import { describe, expect, it } from 'vitest';
import { EchoReference, referenceLayout } from '../../src/realtime/providers/reference.js';

describe('referenceLayout', () => {
  it('adds the reference at the aec node reference_channel, the caller in the other channels', () => {
    expect(referenceLayout({ nodes: [{ id: 'g', type: 'gain' }] }, 1)).toBeUndefined();
    expect(referenceLayout({ nodes: [{ id: 'a', type: 'aec' }] }, 1)).toEqual({ channels: 2, reference: 1 });
    expect(
      referenceLayout(
        { nodes: [{ id: 'a', type: 'aec', params: { reference_channel: 0, near_channel: 1 } }] },
        1,
      ),
    ).toEqual({ channels: 2, reference: 0 });
    expect(
      referenceLayout({ nodes: [{ id: 'a', type: 'aec', params: { reference_channel: 3 } }] }, 2),
    ).toEqual({
      channels: 4,
      reference: 3,
    });
  });
});

describe('EchoReference', () => {
  const mulaw = { encoding: 'mulaw' as const, sample_rate: 8000, channels: 1 };

  it('interleaves silence while nothing plays, then what was sent one chunk after the read position', () => {
    const ref = new EchoReference(mulaw, { channels: 2, reference: 1 });
    expect(ref.input).toEqual({ ...mulaw, channels: 2 });
    const caller = new Uint8Array(160).fill(0x11);
    const first = ref.interleave(caller);
    expect(first.length).toBe(320);
    for (let i = 0; i < 160; i++) expect([first[2 * i], first[2 * i + 1]]).toEqual([0x11, 0xff]);
    // Playback starts: its first chunk lands one chunk (20 ms) ahead of the caller's next message.
    ref.write(new Uint8Array(160).fill(0x22));
    ref.write(new Uint8Array(160).fill(0x33));
    const refOf = (m: Uint8Array) => Array.from({ length: m.length / 2 }, (_, i) => m[2 * i + 1]);
    expect(new Set(refOf(ref.interleave(caller)))).toEqual(new Set([0xff]));
    expect(new Set(refOf(ref.interleave(caller)))).toEqual(new Set([0x22]));
    expect(new Set(refOf(ref.interleave(caller)))).toEqual(new Set([0x33]));
    // Nothing more was sent: silence again, and the ring does not replay old audio a lap later.
    for (let lap = 0; lap < 60; lap++)
      expect(new Set(refOf(ref.interleave(caller)))).toEqual(new Set([0xff]));
  });

  it('keeps a bounded reference while the provider sends no caller audio', () => {
    const ref = new EchoReference(mulaw, { channels: 2, reference: 1 });
    for (let i = 0; i < 100; i++) ref.write(new Uint8Array(160).fill(0x22));
    // One second fits (minus the one-chunk lead); the rest is dropped and counted.
    expect(ref.droppedSamples).toBe(160 * 51);
  });
});
