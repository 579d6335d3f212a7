import { describe, expect, it } from 'vitest';
import { annotateLatency, type LatencyOracle, type Plan, planPipeline } from '../../src/pipeline/plan.js';

// A stand-in for the native engine, which owns the real figures; only the summing is under test here.
const fakeOracle: LatencyOracle = (stage) => {
  switch (stage.type) {
    case 'resample':
      return 32; // frames at the output rate
    case 'limiter':
      return 48;
    case 'vad':
      return 480; // event delay: not on the audio path
    default:
      return 0;
  }
};

function planOf(nodes: Array<Record<string, unknown>>, enable_fusion: boolean): Plan {
  const result = planPipeline({ name: 't', optimization: { enable_fusion }, nodes, output: 'lim' });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.plan;
}

const nodes = [
  { id: 'rs', type: 'resample', params: { sample_rate: 16000 } }, // 32 frames at 16 kHz = 2 ms
  { id: 'lim', type: 'limiter' }, // 48 frames at 16 kHz = 3 ms
  { id: 'vad', type: 'vad' },
  { id: 'side', type: 'limiter', inputs: [] }, // 48 frames at 48 kHz = 1 ms, off the output path
  { id: 'lvl', type: 'level' },
];

describe('annotateLatency', () => {
  it('fills each node and sums the audio nodes along the output path, in ms and output frames', () => {
    const plan = annotateLatency(planOf(nodes, false), fakeOracle);
    const byId = Object.fromEntries(plan.nodes.map((n) => [n.id, [n.latency_frames, n.latency_ms]]));
    expect(byId).toEqual({
      rs: [32, 2],
      lim: [48, 3],
      vad: [480, 30],
      side: [48, 1],
      lvl: [0, 0],
    });
    expect(plan.output).toBe('lim');
    expect(plan.latency_ms).toBe(5);
    expect(plan.latency_frames).toBe(80);
  });

  it('sums the stages of a fused node in ms, since they run at different rates', () => {
    const plan = annotateLatency(planOf(nodes, true), fakeOracle);
    const fused = plan.nodes.find((n) => n.type === 'fused');
    expect(fused).toMatchObject({ id: 'fused_rs_lim', latency_ms: 5, latency_frames: 80 });
    expect(plan.latency_ms).toBe(5);
  });

  it('is what planPipeline applies when given an oracle', () => {
    const result = planPipeline({ name: 't', nodes, output: 'lim' }, { latency: fakeOracle });
    expect(result.ok && result.plan.latency_ms).toBe(5);
  });

  it('is zero for a pass-through plan', () => {
    const result = planPipeline({ name: 't', nodes: [{ id: 'v', type: 'vad' }] }, { latency: fakeOracle });
    expect(result.ok && [result.plan.output, result.plan.latency_frames, result.plan.latency_ms]).toEqual([
      null,
      0,
      0,
    ]);
  });
});
