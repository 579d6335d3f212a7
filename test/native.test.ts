import { describe, expect, it } from 'vitest';
import { bindingTarget, s16leToF32 } from '../src/native.js';

describe('native addon', () => {
  it('is the real native build, not a WASI fallback', () => {
    expect(bindingTarget).toBe('native');
  });

  it('converts s16le to f32 at the 1/32768 scale', () => {
    const pcm = Buffer.alloc(8);
    [0, 16384, -32768, 32767].forEach((s, i) => {
      pcm.writeInt16LE(s, i * 2);
    });
    expect(Array.from(s16leToF32(pcm))).toEqual([0, 0.5, -1, 32767 / 32768]);
  });

  it('rejects an odd byte count with a stable code', () => {
    expect(() => s16leToF32(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'RM_ERR_BAD_AUDIO' }));
  });
});
