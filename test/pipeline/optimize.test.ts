import { describe, expect, it } from 'vitest';
import type { AudioFormat } from '../../src/pipeline/format.js';
import { type Plan, type PlanNode, planPipeline } from '../../src/pipeline/plan.js';

type Node = Record<string, unknown>;
type Flag = 'constant_folding' | 'reorder' | 'remove_dead_code' | 'enable_fusion';
const ALL: readonly Flag[] = ['constant_folding', 'reorder', 'remove_dead_code', 'enable_fusion'];

/** Plans `nodes` with only the passes in `on` enabled. */
function plan(nodes: Node[], on: readonly Flag[], extra: Node = {}, inputFormat?: AudioFormat): Plan {
  const optimization = Object.fromEntries(ALL.map((flag) => [flag, on.includes(flag)]));
  const result = planPipeline({ name: 't', optimization, nodes, ...extra }, { inputFormat });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.plan;
}

/** A compact view of a plan: `id<-input` per node, fused nodes with their members. */
function shape(p: Plan): string[] {
  const describe = (n: PlanNode) => (n.type === 'fused' ? `${n.id}[${n.fused.join(',')}]` : n.id);
  return p.nodes.map((n) => `${describe(n)}<-${n.input ?? 'input'}`);
}

const MONO: AudioFormat = { sample_rate: 48000, channels: 1 };

describe('constant folding', () => {
  it('folds adjacent gains into one, adding dB', () => {
    const nodes = [
      { id: 'a', type: 'gain', params: { db: -6 } },
      { id: 'b', type: 'gain', params: { db: -3 } },
      { id: 'c', type: 'gain', params: { db: 2 } },
    ];
    const on = plan(nodes, ['constant_folding']);
    expect(shape(on)).toEqual(['a<-input']);
    expect(on.nodes[0]).toMatchObject({ params: { db: -7 }, folded: ['a', 'b', 'c'] });
    expect(on.output).toBe('a');
    expect(on.optimizations_applied.every((line) => line.startsWith('constant_folding: '))).toBe(true);
    expect(shape(plan(nodes, []))).toEqual(['a<-input', 'b<-a', 'c<-b']);
  });

  it('does not fold gains whose sum leaves the bounds, or whose first gain is heard elsewhere', () => {
    const outOfBounds = [
      { id: 'a', type: 'gain', params: { db: -90 } },
      { id: 'b', type: 'gain', params: { db: -10 } },
    ];
    expect(shape(plan(outOfBounds, ['constant_folding']))).toEqual(['a<-input', 'b<-a']);
    const tapped = [
      { id: 'a', type: 'gain', params: { db: -6 } },
      { id: 'lvl', type: 'level' },
      { id: 'b', type: 'gain', params: { db: -6 }, inputs: ['a'] },
    ];
    expect(shape(plan(tapped, ['constant_folding']))).toEqual(['a<-input', 'lvl<-a', 'b<-a']);
    const outputFirst = [
      { id: 'a', type: 'gain', params: { db: -6 } },
      { id: 'b', type: 'gain', params: { db: -6 } },
    ];
    expect(shape(plan(outputFirst, ['constant_folding'], { output: 'a' }))).toEqual(['a<-input', 'b<-a']);
  });

  it('removes gains that fold to 0 dB', () => {
    const nodes = [
      { id: 'a', type: 'gain', params: { db: 6 } },
      { id: 'b', type: 'gain', params: { db: -6 } },
      { id: 'lim', type: 'limiter' },
    ];
    const p = plan(nodes, ['constant_folding']);
    expect(shape(p)).toEqual(['lim<-input']);
  });

  it.each([
    ['0 dB gain', { id: 'x', type: 'gain' }, undefined],
    [
      'resample to the rate it gets',
      { id: 'x', type: 'resample', params: { sample_rate: 48000 } },
      undefined,
    ],
    ['downmix of mono', { id: 'x', type: 'downmix' }, MONO],
    ['upmix to the channels it has', { id: 'x', type: 'upmix', params: { channels: 1 } }, MONO],
  ])('removes a no-op: %s', (_name, noOp, inputFormat) => {
    const nodes = [noOp, { id: 'lim', type: 'limiter' }, { id: 'vad', type: 'vad' }];
    expect(shape(plan(nodes, ['constant_folding'], {}, inputFormat))).toEqual(['lim<-input', 'vad<-lim']);
    expect(shape(plan(nodes, [], {}, inputFormat))).toEqual(['x<-input', 'lim<-x', 'vad<-lim']);
  });

  it('moves the output upstream when the output node vanishes, past analysis nodes', () => {
    const nodes = [
      { id: 'lim', type: 'limiter' },
      { id: 'vad', type: 'vad' },
      { id: 'g', type: 'gain' },
    ];
    const p = plan(nodes, ['constant_folding']);
    expect(shape(p)).toEqual(['lim<-input', 'vad<-lim']);
    expect(p.output).toBe('lim');
    const passThrough = plan([{ id: 'g', type: 'gain' }], ['constant_folding']);
    expect(passThrough.nodes).toEqual([]);
    expect(passThrough.output).toBeNull();
    expect(passThrough.output_format).toEqual(passThrough.input);
  });
});

describe('reorder', () => {
  const nodes = [
    { id: 'rs', type: 'resample', params: { sample_rate: 16000 } },
    { id: 'mono', type: 'downmix' },
    { id: 'vad', type: 'vad' },
  ];

  it('moves a downmix before the resample it follows, keeping ids', () => {
    const p = plan(nodes, ['reorder']);
    expect(shape(p)).toEqual(['mono<-input', 'rs<-mono', 'vad<-rs']);
    expect(p.output).toBe('rs');
    const rs = p.nodes.find((n) => n.id === 'rs');
    expect(rs?.input_format).toEqual({ sample_rate: 48000, channels: 1 });
    expect(p.output_format).toEqual({ sample_rate: 16000, channels: 1 });
    expect(p.optimizations_applied).toEqual(['reorder: downmix "mono" moved before resample "rs"']);
  });

  it('leaves the order alone when turned off, or when the resampled audio is also used elsewhere', () => {
    expect(shape(plan(nodes, []))).toEqual(['rs<-input', 'mono<-rs', 'vad<-mono']);
    const tapped = [...nodes, { id: 'lvl', type: 'level', inputs: ['rs'] }];
    expect(shape(plan(tapped, ['reorder']))).toEqual(['rs<-input', 'mono<-rs', 'vad<-mono', 'lvl<-rs']);
  });
});

describe('dead code removal', () => {
  const nodes = [
    { id: 'hp', type: 'biquad', params: { kind: 'highpass', frequency: 80 } },
    { id: 'unused', type: 'gain', params: { db: -6 }, inputs: [] },
    { id: 'unused2', type: 'limiter' },
    { id: 'tap', type: 'gain', params: { db: 12 }, inputs: [] },
    { id: 'lvl', type: 'level' },
  ];

  it('drops nodes that feed neither the output nor an event node', () => {
    const p = plan(nodes, ['remove_dead_code'], { output: 'hp' });
    expect(shape(p)).toEqual(['hp<-input', 'tap<-input', 'lvl<-tap']);
    expect(p.optimizations_applied).toHaveLength(2);
    expect(p.optimizations_applied[0]).toMatch(/^dead_code: /);
  });

  it('keeps them when turned off', () => {
    expect(plan(nodes, [], { output: 'hp' }).nodes).toHaveLength(5);
  });
});

describe('fusion', () => {
  it('fuses a maximal linear chain of audio nodes into one node with its stages', () => {
    const nodes = [
      { id: 'hp', type: 'biquad', params: { kind: 'highpass', frequency: 80 } },
      { id: 'gate', type: 'noise_gate', parallel_safe: false },
      { id: 'lim', type: 'limiter' },
    ];
    const p = plan(nodes, ['enable_fusion']);
    expect(shape(p)).toEqual(['fused_hp_lim[hp,gate,lim]<-input']);
    const fused = p.nodes[0];
    if (fused?.type !== 'fused') throw new Error('not fused');
    expect(fused.stages.map((s) => [s.id, s.type])).toEqual([
      ['hp', 'biquad'],
      ['gate', 'noise_gate'],
      ['lim', 'limiter'],
    ]);
    expect(fused.stages[1]?.params).toEqual({ threshold_dbfs: -50, attack_ms: 5, release_ms: 100 });
    expect(fused.parallel_safe).toBe(false);
    expect(p.output).toBe('fused_hp_lim');
    expect(shape(plan(nodes, []))).toEqual(['hp<-input', 'gate<-hp', 'lim<-gate']);
  });

  it('ends a chain at a fan-out (an analysis tap), at the output, and never fuses analysis nodes', () => {
    const nodes = [
      { id: 'a', type: 'gain', params: { db: -1 } },
      { id: 'b', type: 'limiter' },
      { id: 'vad', type: 'vad' },
      { id: 'c', type: 'normalize', inputs: ['b'] },
      { id: 'd', type: 'limiter' },
      { id: 'e', type: 'gain', params: { db: 3 } },
      { id: 'lvl', type: 'level' },
    ];
    const p = plan(nodes, ['enable_fusion'], { output: 'd' });
    expect(shape(p)).toEqual([
      'fused_a_b[a,b]<-input',
      'vad<-fused_a_b',
      'fused_c_d[c,d]<-fused_a_b',
      'e<-fused_c_d',
      'lvl<-e',
    ]);
    expect(p.output).toBe('fused_c_d');
  });

  it('gives a fused node a fresh id when a document node already has it', () => {
    const nodes = [
      { id: 'fused_a_b', type: 'level', inputs: [] },
      { id: 'a', type: 'gain', params: { db: -1 }, inputs: [] },
      { id: 'b', type: 'limiter' },
    ];
    expect(shape(plan(nodes, ['enable_fusion']))).toEqual(['fused_a_b<-input', 'fused_a_b_2[a,b]<-input']);
  });
});

describe('all passes together', () => {
  it('plans the docs/pipelines.md example as one fused node and the vad tap', () => {
    const yaml = `
name: asr-frontend
description: 48 kHz stereo in, 16 kHz mono out for speech recognition
execution:
  parallel: true
  max_workers: 4
optimization:
  enable_fusion: true
  remove_dead_code: true
  constant_folding: true
nodes:
  - id: mono
    type: downmix
  - id: resample
    type: resample
    params: { sample_rate: 16000, quality: high }
  - id: norm
    type: normalize
    params: { target_dbfs: -3 }
  - id: vad
    type: vad
    inputs: [norm]
    parallel_safe: true
output: norm
`;
    const result = planPipeline(yaml, { contentType: 'application/yaml' });
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.plan).toEqual({
      input: { sample_rate: 48000, channels: 2 },
      nodes: [
        {
          id: 'fused_mono_norm',
          type: 'fused',
          kind: 'audio',
          fused: ['mono', 'resample', 'norm'],
          stages: [
            {
              id: 'mono',
              type: 'downmix',
              params: {},
              input_format: { sample_rate: 48000, channels: 2 },
              output_format: { sample_rate: 48000, channels: 1 },
            },
            {
              id: 'resample',
              type: 'resample',
              params: { sample_rate: 16000, quality: 'high' },
              input_format: { sample_rate: 48000, channels: 1 },
              output_format: { sample_rate: 16000, channels: 1 },
            },
            {
              id: 'norm',
              type: 'normalize',
              params: { target_dbfs: -3, mode: 'rms', window_ms: 300, max_gain_db: 24 },
              input_format: { sample_rate: 16000, channels: 1 },
              output_format: { sample_rate: 16000, channels: 1 },
            },
          ],
          input: null,
          input_format: { sample_rate: 48000, channels: 2 },
          output_format: { sample_rate: 16000, channels: 1 },
          parallel_safe: true,
        },
        {
          id: 'vad',
          type: 'vad',
          kind: 'analysis',
          params: { aggressiveness: 2, hangover_ms: 300 },
          input: 'fused_mono_norm',
          input_format: { sample_rate: 16000, channels: 1 },
          output_format: { sample_rate: 16000, channels: 1 },
          parallel_safe: true,
        },
      ],
      output: 'fused_mono_norm',
      output_format: { sample_rate: 16000, channels: 1 },
      execution: { parallel: true, max_workers: 4 },
      optimizations_applied: ['fusion: "mono" → "resample" → "norm" fused into "fused_mono_norm"'],
    });
  });

  it('runs the passes in order: fold, reorder, drop dead code, fuse', () => {
    const nodes = [
      { id: 'g1', type: 'gain', params: { db: -3 } },
      { id: 'g2', type: 'gain', params: { db: -3 } },
      { id: 'rs', type: 'resample', params: { sample_rate: 16000 } },
      { id: 'same', type: 'resample', params: { sample_rate: 16000 } },
      { id: 'mono', type: 'downmix' },
      { id: 'dead', type: 'limiter' },
      { id: 'norm', type: 'normalize', inputs: ['mono'] },
    ];
    const p = plan(nodes, ALL, { output: 'norm' });
    expect(shape(p)).toEqual(['fused_g1_norm[g1,mono,rs,norm]<-input']);
    expect(p.optimizations_applied.map((line) => line.split(':')[0])).toEqual([
      'constant_folding',
      'constant_folding',
      'reorder',
      'dead_code',
      'fusion',
    ]);
    expect(p.output_format).toEqual({ sample_rate: 16000, channels: 1 });
  });
});
