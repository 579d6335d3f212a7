/**
 * The YAML fragments of the tuning guide this project grew from (adopted by docs/pipelines.md), verbatim, and what they
 * mean once they are part of a whole document.
 */
import { describe, expect, it } from 'vitest';
import { planPipeline } from '../../src/pipeline/plan.js';
import { validatePipeline } from '../../src/pipeline/validate.js';

// "Pipeline Parallelism", verbatim.
const PARALLELISM = `# pipeline.yaml
execution:
  parallel: true
  max_workers: 4  # Match CPU cores
  
nodes:
  - id: node1
    parallel_safe: true  # Can run concurrently
  - id: node2
    parallel_safe: false  # Sequential execution required
`;

// "Graph Optimization", verbatim.
const OPTIMIZATION = `# pipeline.yaml
optimization:
  enable_fusion: true  # Merge compatible nodes
  remove_dead_code: true  # Eliminate unused branches
  constant_folding: true  # Pre-compute static values
`;

describe('seed fragments', () => {
  it('the parallelism fragment alone lacks what docs/pipelines.md requires: a name and node types', () => {
    const result = validatePipeline(PARALLELISM);
    expect(result.ok ? [] : result.errors.map((e) => `${e.code} ${e.path}`).sort()).toEqual([
      'RM_PIPE_SCHEMA /name',
      'RM_PIPE_SCHEMA /nodes/0/type',
      'RM_PIPE_SCHEMA /nodes/1/type',
    ]);
  });

  it('the parallelism fragment, completed, plans with its execution block and parallel_safe per node', () => {
    const yaml = `name: seed\n${PARALLELISM}`
      .replace('- id: node1', '- id: node1\n    type: noise_gate')
      .replace('- id: node2', '- id: node2\n    type: limiter');
    const noFusion = planPipeline(`${yaml}optimization:\n  enable_fusion: false\n`);
    if (!noFusion.ok) throw new Error(JSON.stringify(noFusion.errors));
    expect(noFusion.plan.execution).toEqual({ parallel: true, max_workers: 4 });
    expect(noFusion.plan.nodes.map((n) => [n.id, n.parallel_safe])).toEqual([
      ['node1', true],
      ['node2', false],
    ]);
    // parallel_safe governs scheduling, not fusion: the fused node is as safe as its least safe stage.
    const fused = planPipeline(yaml);
    if (!fused.ok) throw new Error(JSON.stringify(fused.errors));
    expect(fused.plan.nodes).toMatchObject([
      { id: 'fused_node1_node2', fused: ['node1', 'node2'], parallel_safe: false },
    ]);
  });

  it('the optimization fragment, completed, turns every pass on (reorder by default)', () => {
    const result = validatePipeline(`name: seed\n${OPTIMIZATION}nodes:\n  - id: g\n    type: gain\n`);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.pipeline.optimization).toEqual({
      enable_fusion: true,
      remove_dead_code: true,
      constant_folding: true,
      reorder: true,
    });
  });

  it('the fusion example [Resample] -> [Normalize] -> [Mono] becomes a single fused node', () => {
    const yaml = `name: seed-fusion\n${OPTIMIZATION}nodes:
  - id: resample
    type: resample
    params: { sample_rate: 16000 }
  - id: normalize
    type: normalize
  - id: mono
    type: downmix
`;
    const result = planPipeline(yaml);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const { plan } = result;
    expect(plan.nodes).toHaveLength(1);
    expect(plan.nodes[0]).toMatchObject({
      type: 'fused',
      fused: ['resample', 'normalize', 'mono'],
      input: null,
      input_format: { sample_rate: 48000, channels: 2 },
      output_format: { sample_rate: 16000, channels: 1 },
    });
    expect(plan.output).toBe(plan.nodes[0]?.id);
    expect(plan.output_format).toEqual({ sample_rate: 16000, channels: 1 });
  });
});
