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
  /** The stored pipeline the document is a version of: `forgetPlans(id)` drops its plans. */
  pipelineId?: string;
}

export interface PlanProblem {
  path: string;
  code: string;
  message: string;
}

export type EnginePlanResult = { ok: true; plan: Plan } | { ok: false; errors: readonly PlanProblem[] };

/**
 * Plans are pure functions of (document, input format, content type) and building the engine's graph to
 * learn latencies takes milliseconds (resampler filter tables), so results are memoised: a stored
 * pipeline version is planned once per input format, not on every GET or session start. Bounded LRU.
 */
const CACHE_LIMIT = 512;
const cache = new Map<string, { result: EnginePlanResult; pipelineId: string | undefined }>();

/**
 * Drops the memoised plans of pipeline `pipelineId` (all plans without an id) when the store reports a
 * change, here or on another instance (SPEC §8): a deleted or superseded version's plans are not kept.
 */
export function forgetPlans(pipelineId?: string): void {
  if (pipelineId === undefined) {
    cache.clear();
    return;
  }
  for (const [key, entry] of cache) if (entry.pipelineId === pipelineId) cache.delete(key);
}

/** How many plans are memoised (for tests). */
export function cachedPlanCount(pipelineId?: string): number {
  let n = 0;
  for (const entry of cache.values()) if (pipelineId === undefined || entry.pipelineId === pipelineId) n++;
  return n;
}

function cacheKey(document: unknown, options: EnginePlanOptions): string | undefined {
  let doc: string;
  try {
    doc = typeof document === 'string' ? document : JSON.stringify(document);
  } catch {
    return undefined; // cyclic or BigInt values: not cacheable, and the planner reports them
  }
  const f = options.inputFormat;
  return `${options.pipelineId ?? ''}|${options.contentType ?? ''}|${f ? `${f.sample_rate}x${f.channels}` : ''}|${doc}`;
}

/** Validates, optimizes and latency-annotates a document. Never throws for a bad document. */
export function planWithEngine(document: unknown, options: EnginePlanOptions = {}): EnginePlanResult {
  const key = cacheKey(document, options);
  const hit = key === undefined ? undefined : cache.get(key);
  if (hit !== undefined && key !== undefined) {
    // Refresh its place in the LRU order.
    cache.delete(key);
    cache.set(key, hit);
    return hit.result;
  }
  const result = planUncached(document, options);
  if (key !== undefined) {
    cache.set(key, { result, pipelineId: options.pipelineId });
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  }
  return result;
}

function planUncached(document: unknown, options: EnginePlanOptions): EnginePlanResult {
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
