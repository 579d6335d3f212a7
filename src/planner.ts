/**
 * Planning with the engine in the loop: `src/pipeline/` validates and optimizes a document (pure
 * TypeScript); the native engine then builds the plan once, checking it independently, and is the
 * source of truth for every node's algorithmic latency (SPEC §2: "the plan states … the algorithmic
 * latency in samples and ms").
 */
import { fromNative } from './errors.js';
import { inspectPlan } from './native.js';
import type { AudioFormat } from './pipeline/format.js';
import { annotateLatency, type Plan, planPipeline } from './pipeline/plan.js';

export interface EnginePlanOptions {
  inputFormat?: AudioFormat;
  contentType?: string;
}

export interface PlanProblem {
  path: string;
  code: string;
  message: string;
}

export type EnginePlanResult = { ok: true; plan: Plan } | { ok: false; errors: readonly PlanProblem[] };

/** Validates, optimizes and latency-annotates a document. Never throws for a bad document. */
export function planWithEngine(document: unknown, options: EnginePlanOptions = {}): EnginePlanResult {
  const planned = planPipeline(document, options);
  if (!planned.ok) return planned;
  let info: ReturnType<typeof inspectPlan>;
  try {
    info = inspectPlan(planned.plan);
  } catch (err) {
    // The engine refused what the planner accepted: report it as a document problem, never a 500.
    const e = fromNative(err);
    return { ok: false, errors: [{ path: '', code: 'RM_PIPE_ENGINE_REJECTED', message: e.message }] };
  }
  const frames = new Map(info.nodes.map((n) => [n.id, n.latencyFrames]));
  return { ok: true, plan: annotateLatency(planned.plan, (stage) => frames.get(stage.id) ?? 0) };
}
