import { describe, expect, it } from 'vitest';
import { nodeCatalog, nodeTypes, parseNodeParams } from '../../src/pipeline/catalog.js';

describe('node catalog', () => {
  it('lists the node types of docs/pipelines.md, analysis nodes emitting their events', () => {
    const catalog = nodeCatalog();
    expect(catalog.map((e) => e.type)).toEqual(nodeTypes);
    expect(nodeTypes).toEqual([
      'gain',
      'downmix',
      'upmix',
      'resample',
      'normalize',
      'biquad',
      'limiter',
      'noise_gate',
      'denoise',
      'vad',
      'spectrum',
      'level',
      'dtmf',
      'aec',
    ]);
    const events = Object.fromEntries(catalog.filter((e) => e.emits_events).map((e) => [e.type, e.events]));
    expect(events).toEqual({
      vad: ['speech_start', 'speech_end'],
      spectrum: ['spectrum'],
      level: ['level'],
      dtmf: ['digit'],
    });
    for (const entry of catalog) {
      expect(entry.description.length).toBeGreaterThan(0);
      if (!entry.emits_events) expect(entry.events).toEqual([]);
    }
  });

  it.each([
    ['gain', { db: 0 }],
    ['downmix', {}],
    ['upmix', { channels: 2 }],
    ['normalize', { target_dbfs: -3, mode: 'rms', window_ms: 300, max_gain_db: 24 }],
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: the engine's default is exactly 0.7071
    ['biquad', { kind: 'lowpass', frequency: 1000, q: 0.7071, gain_db: 0 }],
    ['limiter', { ceiling_dbfs: -1, release_ms: 50 }],
    ['noise_gate', { threshold_dbfs: -50, attack_ms: 5, release_ms: 100 }],
    ['denoise', {}],
    ['vad', { aggressiveness: 2, hangover_ms: 300 }],
    ['spectrum', { fft_size: 1024, hop: 512, window: 'hann', bands: 32 }],
    ['level', { interval_ms: 100 }],
    ['dtmf', {}],
    ['aec', { reference_channel: 1, near_channel: 0, tail_ms: 300 }],
  ] as const)('%s params default to %j', (type, defaults) => {
    for (const absent of [undefined, null, {}]) {
      const parsed = parseNodeParams(type, absent);
      expect(parsed.success && parsed.data).toEqual(defaults);
    }
  });

  it('resample needs sample_rate and defaults quality to balanced', () => {
    expect(parseNodeParams('resample', {}).success).toBe(false);
    const parsed = parseNodeParams('resample', { sample_rate: 16000 });
    expect(parsed.success && parsed.data).toEqual({ sample_rate: 16000, quality: 'balanced' });
  });

  it('spectrum hop defaults to half of fft_size and may not exceed it', () => {
    const parsed = parseNodeParams('spectrum', { fft_size: 4096 });
    expect(parsed.success && parsed.data.hop).toBe(2048);
    expect(parseNodeParams('spectrum', { fft_size: 256, hop: 256 }).success).toBe(true);
    expect(parseNodeParams('spectrum', { fft_size: 256, hop: 257 }).success).toBe(false);
  });

  it.each([
    ['gain', { db: -96.1 }],
    ['gain', { db: 48.1 }],
    ['gain', { db: '6' }],
    ['downmix', { channels: 1 }],
    ['upmix', { channels: 0 }],
    ['upmix', { channels: 9 }],
    ['upmix', { channels: 2.5 }],
    ['resample', { sample_rate: 7999 }],
    ['resample', { sample_rate: 192001 }],
    ['resample', { sample_rate: 16000.5 }],
    ['resample', { sample_rate: 16000, quality: 'best' }],
    ['normalize', { target_dbfs: 1 }],
    ['normalize', { mode: 'lufs' }],
    ['normalize', { window_ms: 9 }],
    ['normalize', { max_gain_db: 61 }],
    ['biquad', { kind: 'allpass' }],
    ['biquad', { frequency: 9 }],
    ['biquad', { frequency: 96001 }],
    ['biquad', { q: 0.09 }],
    ['biquad', { gain_db: 49 }],
    ['limiter', { ceiling_dbfs: -61 }],
    ['limiter', { release_ms: 0.5 }],
    ['noise_gate', { threshold_dbfs: -121 }],
    ['noise_gate', { attack_ms: 0.05 }],
    ['noise_gate', { release_ms: 5001 }],
    ['denoise', { strength: 1 }],
    ['vad', { aggressiveness: 4 }],
    ['vad', { aggressiveness: 1.5 }],
    ['vad', { hangover_ms: 5001 }],
    ['vad', { hangover_ms: 300.5 }],
    ['spectrum', { fft_size: 1000 }],
    ['spectrum', { fft_size: 16384 }],
    ['spectrum', { hop: 0 }],
    ['spectrum', { window: 'hamming' }],
    ['spectrum', { bands: 513 }],
    ['level', { interval_ms: 10001 }],
    ['dtmf', { x: 1 }],
    ['aec', { reference_channel: 8 }],
    ['aec', { tail_ms: 19 }],
    ['aec', { tail_ms: 1001 }],
    ['aec', { reference_channel: 1.5 }],
    ['gain', { db: 0, extra: true }],
  ] as const)('%s rejects %j', (type, params) => {
    expect(parseNodeParams(type, params).success).toBe(false);
  });

  it('publishes each params JSON Schema, strict, with bounds, defaults and required params', () => {
    const schema = (type: string) => nodeCatalog().find((e) => e.type === type)?.params;
    expect(schema('gain')).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: { db: { type: 'number', minimum: -96, maximum: 48, default: 0 } },
    });
    expect(schema('resample')).toMatchObject({
      required: ['sample_rate'],
      properties: {
        sample_rate: { type: 'integer', minimum: 8000, maximum: 192000 },
        quality: { enum: ['fast', 'balanced', 'high'], default: 'balanced' },
      },
    });
    expect(schema('spectrum')).toMatchObject({
      properties: { fft_size: { enum: [256, 512, 1024, 2048, 4096, 8192], default: 1024 } },
    });
    expect(schema('spectrum')?.required).toBeUndefined();
    expect(schema('downmix')).toMatchObject({ properties: {}, additionalProperties: false });
  });
});
