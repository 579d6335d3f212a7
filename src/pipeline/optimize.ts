/**
 * The optimizer (docs/pipelines.md): passes over the node graph, each on unless its flag turns it off, and each
 * exact, so the output is the same (within float rounding) with or without it.
 *
 *   constant_folding   adjacent gains fold into one; no-ops vanish (0 dB gain, resample to the rate it
 *                      already has, downmix of mono, upmix to the channel count it already has)
 *   reorder            resample → downmix becomes downmix → resample: both are linear and the resampler
 *                      treats every channel alike, so averaging first is exact and resamples fewer channels
 *   remove_dead_code   nodes that feed neither the output nor an event-emitting node are dropped
 *   enable_fusion      maximal linear chains of audio nodes become one fused node (one pass per block)
 *
 * Folding and reordering run to a fixed point; each step removes a node or moves a downmix upstream,
 * so they end.
 */
import { nodeDefinitions } from './catalog.js';
import type { OptimizationOptions } from './document.js';
import type { AudioFormat } from './format.js';
import type { PlanFusedNode, PlanNode, PlanSingleNode, PlanStage } from './plan.js';
import { topologicalOrder } from './validate.js';

/** The graph the passes rewrite: nodes each after its input, and the output (an audio node or null). */
interface Graph {
  readonly input: AudioFormat;
  nodes: PlanSingleNode[];
  output: string | null;
}

export interface Optimized {
  readonly nodes: PlanNode[];
  readonly output: string | null;
  readonly output_format: AudioFormat;
  readonly applied: string[];
}

/** Runs the passes the flags turn on over a validated graph (nodes each after its input, formats filled). */
export function optimize(
  start: Omit<Graph, 'nodes'> & { nodes: readonly PlanSingleNode[] },
  flags: OptimizationOptions,
): Optimized {
  const graph: Graph = { input: start.input, nodes: [...start.nodes], output: start.output };
  const applied: string[] = [];
  if (flags.constant_folding) foldConstants(graph, applied);
  if (flags.reorder) reorder(graph, applied);
  if (flags.remove_dead_code) removeDeadCode(graph, applied);
  const nodes: PlanNode[] = flags.enable_fusion ? fuse(graph, applied) : graph.nodes;
  const out = graph.output === null ? undefined : nodes.find((n) => n.id === graph.output);
  return { nodes, output: out?.id ?? null, output_format: out?.output_format ?? graph.input, applied };
}

function consumersOf(graph: Graph, id: string): PlanSingleNode[] {
  return graph.nodes.filter((n) => n.input === id);
}

/** The audio that `id` outputs comes from this audio node (analysis nodes pass audio through), or null. */
function audioSource(graph: Graph, id: string | null): string | null {
  let at = id;
  while (at !== null) {
    const node = graph.nodes.find((n) => n.id === at);
    if (node === undefined || node.kind === 'audio') return at;
    at = node.input;
  }
  return null;
}

/** Removes a node, its consumers (and the output) reading its input instead. */
function bypass(graph: Graph, node: PlanSingleNode): void {
  graph.nodes = graph.nodes.filter((n) => n !== node);
  graph.nodes = graph.nodes.map((n) => (n.input === node.id ? { ...n, input: node.input } : n));
  if (graph.output === node.id) graph.output = audioSource(graph, node.input);
  refresh(graph);
}

/** Restores topological order and recomputes every edge's format after a rewrite. */
function refresh(graph: Graph): void {
  const sorted = topologicalOrder(graph.nodes);
  const outputs = new Map<string, AudioFormat>();
  graph.nodes = sorted.map((n) => {
    const input_format = n.input === null ? graph.input : (outputs.get(n.input) ?? graph.input);
    const output_format = nodeDefinitions[n.type].negotiate(n.params, input_format).output;
    outputs.set(n.id, output_format);
    return { ...n, input_format, output_format };
  });
}

/** Why a node does nothing to the audio that reaches it, or undefined when it does something. */
function noOpReason(node: PlanSingleNode): string | undefined {
  const f = node.input_format;
  switch (node.type) {
    case 'gain':
      return node.params.db === 0 ? 'gain of 0 dB' : undefined;
    case 'resample':
      return node.params.sample_rate === f.sample_rate
        ? `resample to the rate it gets, ${f.sample_rate} Hz`
        : undefined;
    case 'downmix':
      return f.channels === 1 ? 'downmix of mono' : undefined;
    case 'upmix':
      return node.params.channels === f.channels
        ? `upmix to the ${f.channels} channel(s) it gets`
        : undefined;
    default:
      return undefined;
  }
}

function foldConstants(graph: Graph, applied: string[]): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const node of graph.nodes) {
      const reason = noOpReason(node);
      if (reason !== undefined) {
        bypass(graph, node);
        applied.push(`constant_folding: removed "${node.id}" (${reason})`);
        changed = true;
        break;
      }
      const next = foldableGain(graph, node);
      if (next !== undefined) {
        const db = (node.params.db as number) + (next.params.db as number);
        const folded = [...(node.folded ?? [node.id]), ...(next.folded ?? [next.id])];
        const folded_db = [
          ...(node.folded_db ?? [node.params.db as number]),
          ...(next.folded_db ?? [next.params.db as number]),
        ];
        graph.nodes = graph.nodes.map((n) =>
          n === node ? { ...node, params: { db }, folded, folded_db } : n,
        );
        bypass(graph, next);
        applied.push(
          `constant_folding: gains "${node.id}" and "${next.id}" folded into "${node.id}" (${db} dB)`,
        );
        changed = true;
        break;
      }
    }
  }
}

/**
 * The gain that directly follows gain `node` when the two can become one: `node` feeds only it and is
 * not the output (otherwise its own audio is still needed), and the sum stays within gain's bounds.
 */
function foldableGain(graph: Graph, node: PlanSingleNode): PlanSingleNode | undefined {
  if (node.type !== 'gain' || graph.output === node.id) return undefined;
  const consumers = consumersOf(graph, node.id);
  const next = consumers[0];
  if (consumers.length !== 1 || next === undefined || next.type !== 'gain') return undefined;
  const db = (node.params.db as number) + (next.params.db as number);
  return nodeDefinitions.gain.params.safeParse({ db }).success ? next : undefined;
}

function reorder(graph: Graph, applied: string[]): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const resample of graph.nodes) {
      if (resample.type !== 'resample' || graph.output === resample.id) continue;
      const consumers = consumersOf(graph, resample.id);
      const downmix = consumers[0];
      if (consumers.length !== 1 || downmix?.type !== 'downmix') continue;
      // input → resample → downmix → rest   becomes   input → downmix → resample → rest
      graph.nodes = graph.nodes.map((n) => {
        if (n === downmix) return { ...n, input: resample.input };
        if (n === resample) return { ...n, input: downmix.id };
        return n.input === downmix.id ? { ...n, input: resample.id } : n;
      });
      if (graph.output === downmix.id) graph.output = resample.id;
      refresh(graph);
      applied.push(`reorder: downmix "${downmix.id}" moved before resample "${resample.id}"`);
      changed = true;
      break;
    }
  }
}

/** Live: the output and every analysis node (they emit events), and everything upstream of them. */
function removeDeadCode(graph: Graph, applied: string[]): void {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const live = new Set<string>();
  const roots = graph.nodes.filter((n) => n.kind === 'analysis').map((n) => n.id);
  if (graph.output !== null) roots.push(graph.output);
  for (const root of roots) {
    for (let at: string | null = root; at !== null && !live.has(at); at = byId.get(at)?.input ?? null) {
      live.add(at);
    }
  }
  const dead = graph.nodes.filter((n) => !live.has(n.id));
  if (dead.length === 0) return;
  graph.nodes = graph.nodes.filter((n) => live.has(n.id));
  for (const n of dead)
    applied.push(`dead_code: removed "${n.id}" (feeds neither the output nor an event node)`);
}

/**
 * Fuses maximal linear chains of >= 2 audio nodes: each member but the last feeds exactly one node, the
 * next member, and is not the output. Analysis nodes are never fused: they read a member's output, so
 * that member has two consumers and ends its chain.
 */
function fuse(graph: Graph, applied: string[]): PlanNode[] {
  const taken = new Set<string>();
  const usedIds = new Set(graph.nodes.map((n) => n.id));
  const renamed = new Map<string, string>();
  const out: PlanNode[] = [];
  for (const first of graph.nodes) {
    if (taken.has(first.id)) continue;
    const chain = [first];
    for (let last = first; last.kind === 'audio' && graph.output !== last.id; ) {
      const consumers = consumersOf(graph, last.id);
      const next = consumers[0];
      if (consumers.length !== 1 || next === undefined || next.kind !== 'audio') break;
      chain.push(next);
      last = next;
    }
    if (chain.length < 2) {
      out.push(first);
      continue;
    }
    const last = chain[chain.length - 1] as PlanSingleNode;
    const id = uniqueId(`fused_${first.id}_${last.id}`, usedIds);
    for (const n of chain) taken.add(n.id);
    renamed.set(last.id, id);
    const fused: PlanFusedNode = {
      id,
      type: 'fused',
      kind: 'audio',
      fused: chain.map((n) => n.id),
      stages: chain.map(toStage),
      input: first.input,
      input_format: first.input_format,
      output_format: last.output_format,
      parallel_safe: chain.every((n) => n.parallel_safe),
    };
    out.push(fused);
    applied.push(`fusion: ${chain.map((n) => `"${n.id}"`).join(' → ')} fused into "${id}"`);
  }
  if (graph.output !== null) graph.output = renamed.get(graph.output) ?? graph.output;
  return out.map((n) =>
    n.input !== null && renamed.has(n.input) ? { ...n, input: renamed.get(n.input) ?? null } : n,
  );
}

function toStage(n: PlanSingleNode): PlanStage {
  const stage: PlanStage = {
    id: n.id,
    type: n.type,
    params: n.params,
    input_format: n.input_format,
    output_format: n.output_format,
  };
  return n.folded
    ? { ...stage, folded: n.folded, ...(n.folded_db ? { folded_db: n.folded_db } : {}) }
    : stage;
}

/** `base`, or `base_2`, `base_3`… when a document node already has that id. */
function uniqueId(base: string, used: Set<string>): string {
  let id = base;
  for (let k = 2; used.has(id); k++) id = `${base}_${k}`;
  used.add(id);
  return id;
}
