/**
 * Validation of pipeline documents (docs/pipelines.md): structure, node types and params, the graph (ids, inputs,
 * cycles, output) and format negotiation, with every problem reported at once. Never throws: anything,
 * however malformed, yields either a validated pipeline or a list of problems.
 *
 * Graph rules (docs/pipelines.md): a node reads the node listed before it unless it says `inputs`; the first node,
 * and any node with `inputs: []`, reads the session input. Every node type takes at most one input, so
 * the graph is a forest rooted at the session input.
 */
import {
  isNodeType,
  type NodeKind,
  type NodeParams,
  type NodeType,
  nodeDefinitions,
  nodeTypes,
  parseNodeParams,
} from './catalog.js';
import { type DocumentHeader, type NodeSpec, type ReadOptions, readDocument } from './document.js';
import { type AudioFormat, audioFormatSchema, DEFAULT_INPUT_FORMAT, describeFormat } from './format.js';
import { fromZodIssues, type PipelineIssue, pointer } from './issues.js';

export { DEFAULT_INPUT_FORMAT } from './format.js';
export { type PipelineIssue, type PipelineIssueCode, pipelineIssueCodes } from './issues.js';

export interface ValidateOptions extends ReadOptions {
  /** Format of the session input; documents validated without one assume 48 kHz stereo. */
  readonly inputFormat?: AudioFormat | undefined;
}

/** A node with everything resolved: complete params, its one input, and the formats on both its edges. */
export interface ResolvedNode {
  readonly id: string;
  readonly type: NodeType;
  readonly kind: NodeKind;
  readonly params: NodeParams;
  /** The id of the node it reads, or null for the session input. */
  readonly input: string | null;
  readonly parallel_safe: boolean;
  readonly input_format: AudioFormat;
  readonly output_format: AudioFormat;
}

export interface ValidatedPipeline extends Omit<DocumentHeader, 'output'> {
  readonly input_format: AudioFormat;
  /** Every node, each after its input, otherwise in document order. */
  readonly nodes: readonly ResolvedNode[];
  /** The audio node whose output goes back to the client; null = the session input, unchanged. */
  readonly output: string | null;
  readonly output_format: AudioFormat;
}

export type ValidationResult =
  | { readonly ok: true; readonly pipeline: ValidatedPipeline }
  | { readonly ok: false; readonly errors: readonly PipelineIssue[] };

/** What is known of one node after the per-node checks; `undefined` fields could not be established. */
interface NodeFacts {
  readonly index: number;
  readonly spec: NodeSpec;
  readonly type: NodeType | undefined;
  readonly params: NodeParams | undefined;
  /** null = session input; undefined = unresolved (malformed, unknown or too many inputs). */
  readonly input: string | null | undefined;
}

/** Validates a document given as text (YAML or JSON) or as a parsed value. */
export function validatePipeline(input: unknown, options: ValidateOptions = {}): ValidationResult {
  const reading = readDocument(input, options);
  if (!reading.parsed) return { ok: false, errors: reading.errors };
  const errors: PipelineIssue[] = [...reading.errors];

  const inputFormat = checkInputFormat(options.inputFormat ?? DEFAULT_INPUT_FORMAT, errors);
  const ids = declaredIndex(reading.declared_ids, errors);
  const facts = reading.nodes.map((spec, index) =>
    spec === undefined ? undefined : checkNode(spec, index, reading.declared_ids, ids, errors),
  );
  const inCycle = checkCycles(facts, ids, errors);
  const output = checkOutput(reading.declared_output, facts, reading.declared_ids, ids, errors);
  const formats = negotiate(facts, ids, inCycle, inputFormat, errors);

  if (errors.length > 0 || reading.header === undefined || inputFormat === undefined) {
    return { ok: false, errors };
  }
  const nodes = topologicalOrder(facts.map((f, i) => resolved(f, formats[i])));
  const outputFormat = output === null ? inputFormat : formats[ids.get(output) ?? -1]?.output;
  if (outputFormat === undefined) return { ok: false, errors }; // unreachable once errors is empty
  return {
    ok: true,
    pipeline: {
      ...reading.header,
      input_format: inputFormat,
      nodes,
      output,
      output_format: outputFormat,
    },
  };
}

/** The session input must be a format the engine can carry (docs/pipelines.md: at most 8 channels). */
function checkInputFormat(format: AudioFormat, errors: PipelineIssue[]): AudioFormat | undefined {
  const parsed = audioFormatSchema.safeParse(format);
  if (parsed.success) return parsed.data;
  for (const issue of fromZodIssues(parsed.error.issues, [], 'RM_PIPE_FORMAT_CONFLICT')) {
    errors.push({ ...issue, path: '', message: `session input format: ${issue.message}` });
  }
  return undefined;
}

/** Maps each id to the first node declaring it; later declarations are duplicates. */
function declaredIndex(
  declared: ReadonlyArray<string | undefined>,
  errors: PipelineIssue[],
): Map<string, number> {
  const ids = new Map<string, number>();
  declared.forEach((id, i) => {
    if (id === undefined) return;
    const first = ids.get(id);
    if (first === undefined) ids.set(id, i);
    else {
      errors.push({
        path: pointer('nodes', i, 'id'),
        code: 'RM_PIPE_DUPLICATE_ID',
        message: `id "${id}" is already used by node ${first}`,
      });
    }
  });
  return ids;
}

/** Edit distance (insertions, deletions, substitutions) between two short strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * "unknown node type" with the nearest known type when one is close (two edits, or a third of its letters
 * differ, case ignored) and the list of valid types, so a typo needs no trip to the docs.
 */
export function unknownTypeMessage(type: string): string {
  const wanted = type.toLowerCase();
  let best: { type: NodeType; distance: number } | undefined;
  for (const known of nodeTypes) {
    const distance = editDistance(wanted, known);
    if (best === undefined || distance < best.distance) best = { type: known, distance };
  }
  const close = best !== undefined && best.distance <= Math.max(2, Math.ceil(best.type.length / 3));
  const valid = nodeTypes.join(', ');
  if (close && best) return `unknown node type "${type}"; did you mean "${best.type}"? Valid types: ${valid}`;
  return `unknown node type "${type}"; valid types: ${valid}`;
}

/** Type, params and inputs of one structurally sound node. */
function checkNode(
  spec: NodeSpec,
  index: number,
  declared: ReadonlyArray<string | undefined>,
  ids: ReadonlyMap<string, number>,
  errors: PipelineIssue[],
): NodeFacts {
  let type: NodeType | undefined;
  let params: NodeParams | undefined;
  if (isNodeType(spec.type)) {
    type = spec.type;
    const parsed = parseNodeParams(type, spec.params);
    if (parsed.success) params = parsed.data;
    else errors.push(...fromZodIssues(parsed.error.issues, ['nodes', index, 'params'], 'RM_PIPE_BAD_PARAMS'));
  } else {
    errors.push({
      path: pointer('nodes', index, 'type'),
      code: 'RM_PIPE_UNKNOWN_TYPE',
      message: unknownTypeMessage(spec.type),
    });
  }

  let input: string | null | undefined;
  const inputs = spec.inputs;
  if (inputs === undefined) {
    input = index === 0 ? null : declared[index - 1];
  } else {
    if (inputs.length > 1) {
      errors.push({
        path: pointer('nodes', index, 'inputs'),
        code: 'RM_PIPE_TOO_MANY_INPUTS',
        message: `lists ${inputs.length} inputs; every node type takes at most one`,
      });
    }
    inputs.forEach((name, k) => {
      if (!ids.has(name)) {
        errors.push({
          path: pointer('nodes', index, 'inputs', k),
          code: 'RM_PIPE_UNKNOWN_INPUT',
          message: `no node has id "${name}"`,
        });
      }
    });
    const only = inputs[0];
    if (inputs.length === 0) input = null;
    else if (inputs.length === 1 && only !== undefined && ids.has(only)) input = only;
  }
  return { index, spec, type, params, input };
}

/**
 * With one input per node, every cycle is a loop of input links. Each is reported once, at the
 * lowest-indexed member that names its input explicitly (a chain of defaults only points backwards,
 * so every cycle has one). Returns the indexes of nodes on cycles.
 */
function checkCycles(
  facts: ReadonlyArray<NodeFacts | undefined>,
  ids: ReadonlyMap<string, number>,
  errors: PipelineIssue[],
): Set<number> {
  const inCycle = new Set<number>();
  const done = new Set<number>();
  for (let start = 0; start < facts.length; start++) {
    const path: number[] = [];
    const onPath = new Set<number>();
    let at: number | undefined = start;
    while (at !== undefined && !done.has(at) && !onPath.has(at)) {
      path.push(at);
      onPath.add(at);
      const input: string | null | undefined = facts[at]?.input;
      at = typeof input === 'string' ? ids.get(input) : undefined;
    }
    if (at !== undefined && onPath.has(at)) {
      const cycle = path.slice(path.indexOf(at));
      for (const i of cycle) inCycle.add(i);
      const explicit = cycle.filter((i) => facts[i]?.spec.inputs !== undefined);
      const reportAt = Math.min(...(explicit.length > 0 ? explicit : cycle));
      const names = [...cycle, at].map((i) => facts[i]?.spec.id ?? String(i));
      errors.push({
        path:
          facts[reportAt]?.spec.inputs === undefined
            ? pointer('nodes', reportAt)
            : pointer('nodes', reportAt, 'inputs', 0),
        code: 'RM_PIPE_CYCLE',
        message: `nodes read from each other in a loop: ${names.reverse().join(' → ')}`,
      });
    }
    for (const i of path) done.add(i);
  }
  return inCycle;
}

/** The output must be an audio node (docs/pipelines.md); by default it is the last audio node, if there is one. */
function checkOutput(
  named: string | undefined,
  facts: ReadonlyArray<NodeFacts | undefined>,
  declared: ReadonlyArray<string | undefined>,
  ids: ReadonlyMap<string, number>,
  errors: PipelineIssue[],
): string | null {
  const kindOf = (i: number) => {
    const type = facts[i]?.type;
    return type === undefined ? undefined : nodeDefinitions[type].kind;
  };
  if (named === undefined) {
    // A document of analysis nodes only returns the session input unchanged: they only observe it.
    for (let i = declared.length - 1; i >= 0; i--) {
      if (kindOf(i) === 'audio') return declared[i] ?? null;
    }
    return null;
  }
  const index = ids.get(named);
  if (index === undefined) {
    errors.push({ path: '/output', code: 'RM_PIPE_BAD_OUTPUT', message: `no node has id "${named}"` });
  } else if (kindOf(index) === 'analysis') {
    errors.push({
      path: '/output',
      code: 'RM_PIPE_BAD_OUTPUT',
      message: `"${named}" is an analysis node; the output must be an audio node`,
    });
  }
  return named;
}

interface EdgeFormats {
  readonly input: AudioFormat;
  readonly output: AudioFormat;
}

/**
 * Propagates sample rate and channel count from the session input along every edge (docs/pipelines.md, like
 * GStreamer caps), reporting each node that cannot take what reaches it. A node whose input format is
 * unknown (malformed upstream) is skipped rather than blamed.
 */
function negotiate(
  facts: ReadonlyArray<NodeFacts | undefined>,
  ids: ReadonlyMap<string, number>,
  inCycle: ReadonlySet<number>,
  inputFormat: AudioFormat | undefined,
  errors: PipelineIssue[],
): Array<EdgeFormats | undefined> {
  const formats = new Array<EdgeFormats | undefined>(facts.length);
  const visited = new Set<number>();
  const formatOf = (index: number): EdgeFormats | undefined => {
    if (visited.has(index)) return formats[index];
    visited.add(index);
    const f = facts[index];
    if (f === undefined || f.type === undefined || f.params === undefined || inCycle.has(index))
      return undefined;
    let input: AudioFormat | undefined;
    if (f.input === null) input = inputFormat;
    else if (f.input !== undefined) {
      const from = ids.get(f.input);
      input = from === undefined ? undefined : formatOf(from)?.output;
    }
    if (input === undefined) return undefined;
    const result = nodeDefinitions[f.type].negotiate(f.params, input);
    for (const problem of result.problems) {
      errors.push({
        path:
          problem.param === undefined
            ? pointer('nodes', index)
            : pointer('nodes', index, 'params', problem.param),
        code: 'RM_PIPE_FORMAT_CONFLICT',
        message: `${f.type} "${f.spec.id}" fed ${describeFormat(input)}: ${problem.message}`,
      });
    }
    formats[index] = { input, output: result.output };
    return formats[index];
  };
  for (let i = 0; i < facts.length; i++) formatOf(i);
  return formats;
}

/** Builds the resolved node once validation found nothing wrong (so every fact is known). */
function resolved(facts: NodeFacts | undefined, formats: EdgeFormats | undefined): ResolvedNode {
  if (facts?.type === undefined || facts.params === undefined || facts.input === undefined || !formats) {
    throw new Error('resolved() called on a node that failed validation');
  }
  return {
    id: facts.spec.id,
    type: facts.type,
    kind: nodeDefinitions[facts.type].kind,
    params: facts.params,
    input: facts.input,
    parallel_safe: facts.spec.parallel_safe,
    input_format: formats.input,
    output_format: formats.output,
  };
}

/**
 * Orders nodes so each comes after its input, keeping the given order otherwise (stable). The graph
 * must be acyclic with every input present.
 */
export function topologicalOrder<N extends { readonly id: string; readonly input: string | null }>(
  nodes: readonly N[],
): N[] {
  const placed = new Set<string>();
  const pending = [...nodes];
  const out: N[] = [];
  while (pending.length > 0) {
    const next = pending.findIndex((n) => n.input === null || placed.has(n.input));
    if (next === -1) throw new Error('topologicalOrder: the graph has a cycle or a missing input');
    const [node] = pending.splice(next, 1) as [N];
    placed.add(node.id);
    out.push(node);
  }
  return out;
}
