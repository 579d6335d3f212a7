/**
 * Execution plans (docs/pipelines.md): what the native executor runs. A plan lists the nodes that will run, each
 * after its input, with complete params and the format on every edge; a fused node names the ids it
 * merged and carries their stages. `annotateLatency` adds the algorithmic latency, which the native
 * engine knows (it is the source of truth for e.g. a resampler's filter delay).
 */
import type { NodeKind, NodeParams, NodeType } from './catalog.js';
import type { ExecutionOptions } from './document.js';
import type { AudioFormat } from './format.js';
import type { PipelineIssue } from './issues.js';
import { optimize } from './optimize.js';
import { type ValidatedPipeline, type ValidateOptions, validatePipeline } from './validate.js';

/** One node of the native engine, with the formats on its two edges. */
export interface PlanStage {
  readonly id: string;
  readonly type: NodeType;
  readonly params: NodeParams;
  readonly input_format: AudioFormat;
  readonly output_format: AudioFormat;
  /** Ids of document nodes constant folding merged into this one (e.g. adjacent gains), itself first. */
  readonly folded?: readonly string[];
  /**
   * With `folded` (gains only): each merged gain's own `db`, in the same order. The engine keeps them, so
   * a live `params` message to any of the merged nodes changes its own share of the sum (docs/protocol.md §5:
   * a node named in a document stays addressable after optimization).
   */
  readonly folded_db?: readonly number[];
}

interface PlanNodeEdges {
  readonly id: string;
  /** The node whose output this one reads; null = the session input. */
  readonly input: string | null;
  readonly input_format: AudioFormat;
  readonly output_format: AudioFormat;
  /** Seed `parallel_safe`: false asks the scheduler to run this node sequentially. */
  readonly parallel_safe: boolean;
  readonly kind: NodeKind;
  /** Filled by `annotateLatency`: output frames the node delays its audio by, and the same in ms. */
  readonly latency_frames?: number;
  readonly latency_ms?: number;
}

/** A document node that runs on its own. */
export interface PlanSingleNode extends PlanStage, PlanNodeEdges {}

/** A chain of audio nodes run as one pass over each block (docs/pipelines.md, fusion). */
export interface PlanFusedNode extends PlanNodeEdges {
  readonly type: 'fused';
  /** The ids of the merged nodes, in processing order. */
  readonly fused: readonly string[];
  readonly stages: readonly PlanStage[];
}

export type PlanNode = PlanSingleNode | PlanFusedNode;

export interface Plan {
  readonly input: AudioFormat;
  /** Every node that will run, each after its input. */
  readonly nodes: readonly PlanNode[];
  /** The node whose audio goes back to the client; null = the session input, unchanged. */
  readonly output: string | null;
  readonly output_format: AudioFormat;
  readonly execution: ExecutionOptions;
  /** One line per change the optimizer made, prefixed with its pass. */
  readonly optimizations_applied: readonly string[];
  /** Filled by `annotateLatency`: total along the output path, in output frames and in ms. */
  readonly latency_frames?: number;
  readonly latency_ms?: number;
}

/** The plan of a validated pipeline, optimized as its `optimization` flags say. */
export function buildPlan(pipeline: ValidatedPipeline): Plan {
  const graph = {
    input: pipeline.input_format,
    output: pipeline.output,
    nodes: pipeline.nodes.map(
      (n): PlanSingleNode => ({
        id: n.id,
        type: n.type,
        kind: n.kind,
        params: n.params,
        input: n.input,
        input_format: n.input_format,
        output_format: n.output_format,
        parallel_safe: n.parallel_safe,
      }),
    ),
  };
  const optimized = optimize(graph, pipeline.optimization);
  return {
    input: pipeline.input_format,
    nodes: optimized.nodes,
    output: optimized.output,
    output_format: optimized.output_format,
    execution: pipeline.execution,
    optimizations_applied: optimized.applied,
  };
}

export interface PlanOptions extends ValidateOptions {
  /** When given, the plan is annotated with latencies (see `annotateLatency`). */
  readonly latency?: LatencyOracle | undefined;
}

export type PlanResult =
  | { readonly ok: true; readonly plan: Plan }
  | { readonly ok: false; readonly errors: readonly PipelineIssue[] };

/** Validates a document (text or parsed value) and plans it. Never throws. */
export function planPipeline(document: unknown, options: PlanOptions = {}): PlanResult {
  const validated = validatePipeline(document, options);
  if (!validated.ok) return validated;
  const plan = buildPlan(validated.pipeline);
  return { ok: true, plan: options.latency ? annotateLatency(plan, options.latency) : plan };
}

/**
 * The algorithmic latency of one engine node, in frames of its output: how far its output lags its
 * input, including any block it must fill before it answers. Provided by the native engine.
 */
export type LatencyOracle = (stage: PlanStage) => number;

/**
 * Fills `latency_frames` / `latency_ms` on every node (a fused node: the sum of its stages) and the
 * total along the output path. Stages are summed in ms because they run at different rates; frames are
 * then counted at the rate of the node's (or the plan's) output. Analysis nodes pass audio through
 * untouched, so they add nothing to the audio path, whatever their own event latency.
 */
export function annotateLatency(plan: Plan, latencyOf: LatencyOracle): Plan {
  const stageMs = (stage: PlanStage) => (latencyOf(stage) * 1000) / stage.output_format.sample_rate;
  const nodes = plan.nodes.map((node): PlanNode => {
    const ms = node.type === 'fused' ? sum(node.stages.map(stageMs)) : stageMs(node);
    return { ...node, latency_ms: ms, latency_frames: toFrames(ms, node.output_format) };
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let total_ms = 0;
  for (let at = plan.output === null ? undefined : byId.get(plan.output); at; ) {
    if (at.kind === 'audio') total_ms += at.latency_ms ?? 0;
    at = at.input === null ? undefined : byId.get(at.input);
  }
  return { ...plan, nodes, latency_ms: total_ms, latency_frames: toFrames(total_ms, plan.output_format) };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function toFrames(ms: number, format: AudioFormat): number {
  return Math.round((ms * format.sample_rate) / 1000);
}
