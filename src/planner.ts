/**
 * Planning with the engine in the loop: `src/pipeline/` validates and optimizes a document (pure
 * TypeScript) and checks the plan against the resource bounds of docs/limits.md; the native engine then
 * builds the plan once, checking it independently, and is the source of truth for every node's algorithmic
 * latency (docs/pipelines.md: the plan gives the algorithmic latency in samples and milliseconds).
 */
import { loadConfig, planBounds } from './config.js';
import { fromNative } from './errors.js';
import { inspectPlan } from './native.js';
import { checkBounds, type PlanBounds } from './pipeline/bounds.js';
import type { AudioFormat } from './pipeline/format.js';
import type { PipelineIssue } from './pipeline/issues.js';
import { annotateLatency, type Plan, planPipeline } from './pipeline/plan.js';

export interface EnginePlanOptions {
  inputFormat?: AudioFormat;
  contentType?: string;
  /** Resource bounds (docs/limits.md, from the configuration); default: those of the default configuration. */
  bounds?: PlanBounds;
  /** The stored pipeline the document is a version of: `forgetPlans(id)` drops its plans. */
  pipelineId?: string;
}

export type PlanProblem = PipelineIssue;

export type EnginePlanResult = { ok: true; plan: Plan } | { ok: false; errors: readonly PlanProblem[] };

/** The bounds of the default configuration, for callers without one (the CLI, tests). */
export const DEFAULT_PLAN_BOUNDS: PlanBounds = Object.freeze(planBounds(loadConfig({}, [])));

/**
 * Plans are pure functions of (document, input format, content type, bounds) and building the engine's
 * graph to learn latencies takes milliseconds (resampler filter tables), so results are memoised: a
 * stored pipeline version is planned once per input format, not on every GET or session start.
 * An LRU bounded by bytes (keys hold whole documents, of up to MAX_BODY_BYTES each), not entries.
 */
export const PLAN_CACHE_BYTES = 32 * 1024 * 1024;

interface CacheEntry {
  result: EnginePlanResult;
  bytes: number;
  pipelineId: string | undefined;
}

const cache = new Map<string, CacheEntry>();
let cachedBytes = 0;

/** Bytes the plan cache holds now (keys and results, as UTF-16 string lengths × 2). */
export function planCacheBytes(): number {
  return cachedBytes;
}

/**
 * Drops the memoised plans of pipeline `pipelineId` (all plans without an id) when the store reports a
 * change, here or on another instance (README.md, "Several instances"): a deleted or superseded version's plans are not kept.
 */
export function forgetPlans(pipelineId?: string): void {
  for (const [key, entry] of cache) {
    if (pipelineId !== undefined && entry.pipelineId !== pipelineId) continue;
    cache.delete(key);
    cachedBytes -= entry.bytes;
  }
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
  const b = options.bounds ?? DEFAULT_PLAN_BOUNDS;
  const bounds = `${b.maxSessionMemoryBytes},${b.maxOpsPerSecond},${b.maxEventsPerSecond},${b.maxFrameBytes}`;
  return `${options.pipelineId ?? ''}|${options.contentType ?? ''}|${f ? `${f.sample_rate}x${f.channels}` : ''}|${bounds}|${doc}`;
}

function remember(key: string, result: EnginePlanResult, pipelineId: string | undefined): void {
  // JavaScript strings are UTF-16: two bytes per code unit is what they hold in the heap at most.
  const bytes = 2 * (key.length + JSON.stringify(result).length);
  if (bytes > PLAN_CACHE_BYTES / 8) return; // one huge document must not evict everything else
  cache.set(key, { result, bytes, pipelineId });
  cachedBytes += bytes;
  for (const [oldest, entry] of cache) {
    if (cachedBytes <= PLAN_CACHE_BYTES) break;
    cache.delete(oldest);
    cachedBytes -= entry.bytes;
  }
}

/** Validates, optimizes, bounds-checks and latency-annotates a document. Never throws for a bad document. */
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
  if (key !== undefined) remember(key, result, options.pipelineId);
  return result;
}

function planUncached(document: unknown, options: EnginePlanOptions): EnginePlanResult {
  const { bounds = DEFAULT_PLAN_BOUNDS, pipelineId: _pipelineId, ...planOptions } = options;
  const planned = planPipeline(document, planOptions);
  if (!planned.ok) return planned;
  // docs/limits.md: refuse what one session could not afford before the engine allocates anything for it.
  const over = checkBounds(planned.plan, bounds);
  if (over.length > 0) return { ok: false, errors: over };
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
