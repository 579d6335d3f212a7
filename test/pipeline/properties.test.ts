import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AudioFormat } from '../../src/pipeline/format.js';
import { type PipelineIssue, pipelineIssueCodes } from '../../src/pipeline/issues.js';
import { type Plan, type PlanNode, planPipeline } from '../../src/pipeline/plan.js';
import { validatePipeline } from '../../src/pipeline/validate.js';
import { ANALYSIS_TYPES, corruptedPipeline, validPipeline } from './arbitraries.js';

// Fixed seed: failures reproduce; fast-check prints the counterexample and its path.
const runs = { seed: 20_240_601, numRuns: 300 };

const ALL_OFF = { enable_fusion: false, remove_dead_code: false, constant_folding: false, reorder: false };

function expectWellFormedIssues(errors: readonly PipelineIssue[]): void {
  expect(errors.length).toBeGreaterThan(0);
  for (const e of errors) {
    expect(Object.keys(pipelineIssueCodes)).toContain(e.code);
    expect(e.path).toMatch(/^(\/[^/]*)*$/);
    expect(typeof e.message).toBe('string');
  }
}

/** What the executor relies on: topological order, known inputs, formats agreeing along every edge. */
function expectWellFormedPlan(plan: Plan, input: AudioFormat): void {
  expect(plan.input).toEqual(input);
  const seen = new Map<string, PlanNode>();
  for (const node of plan.nodes) {
    expect(seen.has(node.id)).toBe(false);
    const from = node.input === null ? undefined : seen.get(node.input);
    if (node.input !== null) expect(from, `input of ${node.id} comes before it`).toBeDefined();
    expect(node.input_format).toEqual(from?.output_format ?? input);
    if (node.type === 'fused') {
      expect(node.stages.length).toBeGreaterThanOrEqual(2);
      expect(node.stages.map((s) => s.id)).toEqual(node.fused);
      expect(node.stages[0]?.input_format).toEqual(node.input_format);
      expect(node.stages.at(-1)?.output_format).toEqual(node.output_format);
    }
    seen.set(node.id, node);
  }
  if (plan.output === null) expect(plan.output_format).toEqual(input);
  else {
    expect(seen.get(plan.output)?.kind).toBe('audio');
    expect(plan.output_format).toEqual(seen.get(plan.output)?.output_format);
  }
}

const documentIds = (doc: { nodes: Array<Record<string, unknown>> }) => doc.nodes.map((n) => n.id);
const analysisIds = (doc: { nodes: Array<Record<string, unknown>> }) =>
  doc.nodes.filter((n) => ANALYSIS_TYPES.includes(n.type as never)).map((n) => n.id);

describe('pipeline properties', () => {
  it('never throws on arbitrary values, and every problem has a catalog code and a JSON pointer', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withNullPrototype: true,
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withBigInt: true,
          withDate: true,
          withTypedArray: true,
          withSparseArray: true,
        }),
        (value) => {
          const result = planPipeline(value);
          if (!result.ok) expectWellFormedIssues(result.errors);
        },
      ),
      runs,
    );
  });

  it('never throws on arbitrary text, as YAML or as JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'binary' })),
        fc.constantFrom(undefined, 'application/json', 'application/yaml'),
        (text, contentType) => {
          const result = planPipeline(text, { contentType });
          if (!result.ok) expectWellFormedIssues(result.errors);
        },
      ),
      runs,
    );
  });

  it('never throws on documents with one field corrupted, and answers with a plan or problems', () => {
    fc.assert(
      fc.property(corruptedPipeline(), ({ document, inputFormat }) => {
        const result = planPipeline(document, { inputFormat });
        if (result.ok) expectWellFormedPlan(result.plan, inputFormat);
        else expectWellFormedIssues(result.errors);
      }),
      runs,
    );
  });

  it('never throws on arbitrary input formats', () => {
    fc.assert(
      fc.property(validPipeline(4), fc.anything(), fc.anything(), ({ document }, sample_rate, channels) => {
        const result = planPipeline(document, { inputFormat: { sample_rate, channels } as AudioFormat });
        if (!result.ok) expectWellFormedIssues(result.errors);
      }),
      runs,
    );
  });

  it('valid documents always validate and plan, from YAML-equivalent JSON text too', () => {
    fc.assert(
      fc.property(validPipeline(), ({ document, inputFormat }) => {
        const validated = validatePipeline(document, { inputFormat });
        expect(validated.ok ? [] : validated.errors).toEqual([]);
        const result = planPipeline(JSON.stringify(document), {
          inputFormat,
          contentType: 'application/json',
        });
        expect(result.ok).toBe(true);
        if (result.ok) expectWellFormedPlan(result.plan, inputFormat);
      }),
      runs,
    );
  });

  it('with every optimization off, the plan runs every document node as it is', () => {
    fc.assert(
      fc.property(validPipeline(), ({ document, inputFormat }) => {
        const result = planPipeline({ ...document, optimization: ALL_OFF }, { inputFormat });
        if (!result.ok) throw new Error(JSON.stringify(result.errors));
        expect(result.plan.nodes.map((n) => n.id).sort()).toEqual(documentIds(document).sort());
        expect(result.plan.optimizations_applied).toEqual([]);
      }),
      runs,
    );
  });

  it('optimizations keep the output format and every event-emitting node', () => {
    fc.assert(
      fc.property(validPipeline(), ({ document, inputFormat }) => {
        const off = planPipeline({ ...document, optimization: ALL_OFF }, { inputFormat });
        const on = planPipeline({ ...document, optimization: {} }, { inputFormat });
        if (!off.ok || !on.ok) throw new Error('valid document rejected');
        expect(on.plan.output_format).toEqual(off.plan.output_format);
        const kept = on.plan.nodes.filter((n) => n.kind === 'analysis').map((n) => n.id);
        expect(kept.sort()).toEqual(analysisIds(document).sort());
        expect(on.plan.nodes.length).toBeLessThanOrEqual(off.plan.nodes.length);
      }),
      runs,
    );
  });
});
