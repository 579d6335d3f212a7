/**
 * Pipeline documents (docs/pipelines.md): their structure as zod schemas, and reading one from YAML or JSON text
 * or from an already-parsed value.
 *
 * Reading is lenient in one way: each node is checked on its own, so one broken node does not hide the
 * problems of the others (docs/pipelines.md: every problem is reported at once). The meaning of the nodes (types,
 * params, graph, formats) is checked in validate.ts.
 */

import { parseDocument as parseYaml } from 'yaml';
import { z } from 'zod';
import { nestsTooDeep } from './depth.js';
import { fromZodIssues, type PipelineIssue } from './issues.js';

/** docs/pipelines.md: node ids. */
export const NODE_ID_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
export const MAX_NODES = 256;

/** Seed `execution` block: whether independent branches may run concurrently, and on how many workers. */
export const executionSchema = z.strictObject({
  parallel: z.boolean().default(true),
  max_workers: z.int().min(1).max(64).default(4),
});

/** Seed `optimization` block, plus `reorder` (linear reordering); every pass is on unless turned off. */
export const optimizationSchema = z.strictObject({
  enable_fusion: z.boolean().default(true),
  remove_dead_code: z.boolean().default(true),
  constant_folding: z.boolean().default(true),
  reorder: z.boolean().default(true),
});

export const nodeSpecSchema = z.strictObject({
  id: z.string().regex(NODE_ID_PATTERN, 'must match ^[a-z][a-z0-9_-]{0,63}$'),
  type: z.string(),
  // `params:` with nothing after it is null in YAML; the engine reads null as {} too.
  params: z.record(z.string(), z.unknown()).nullish(),
  // Every node type takes at most one input; more than one is reported by validate.ts with its own code.
  inputs: z.array(z.string()).optional(),
  parallel_safe: z.boolean().default(true),
});

/** Nodes a sink's playback audio runs through (docs/telephony/README.md), at most. */
export const MAX_PLAYBACK_NODES = 32;

/**
 * docs/telephony/README.md: where a provider session's processed audio and events go, and what plays back from it. The
 * host is checked against SINK_ALLOWLIST when a call starts (the document does not know the server's
 * settings); the playback nodes are planned for the format the sink declares.
 */
export const sinkSchema = z.strictObject({
  url: z
    .string()
    .max(2048)
    .refine((u) => /^wss?:\/\//i.test(u) && URL.canParse(u), 'must be a ws:// or wss:// URL'),
  playback: z
    .strictObject({
      nodes: z.array(nodeSpecSchema).max(MAX_PLAYBACK_NODES).default([]),
      barge_in: z.boolean().default(false),
    })
    .prefault({}),
});

export type SinkSpec = z.output<typeof sinkSchema>;

const headerShape = {
  name: z.string().min(1).max(200),
  description: z.string().optional(),
  // prefault: a missing block is parsed as {}, so its own defaults are filled.
  execution: executionSchema.prefault({}),
  optimization: optimizationSchema.prefault({}),
  output: z.string().optional(),
  sink: sinkSchema.optional(),
};

/** The whole document, for typing and for the OpenAPI description. */
export const pipelineDocumentSchema = z.strictObject({
  ...headerShape,
  nodes: z.array(nodeSpecSchema).min(1).max(MAX_NODES),
});

export type PipelineDocument = z.output<typeof pipelineDocumentSchema>;
export type NodeSpec = z.output<typeof nodeSpecSchema>;
export type ExecutionOptions = z.output<typeof executionSchema>;
export type OptimizationOptions = z.output<typeof optimizationSchema>;
export type DocumentHeader = Omit<PipelineDocument, 'nodes'>;

/** The document with nodes left unchecked, so that each node can be checked on its own. */
const headerSchema = z.strictObject({ ...headerShape, nodes: z.array(z.unknown()).min(1).max(MAX_NODES) });

/** What reading a document found: its problems, and every part that is structurally sound. */
export interface DocumentReading {
  /** Parse and structure problems. */
  readonly errors: readonly PipelineIssue[];
  /** Whether the input could be parsed at all (false: `errors` holds the parse problems, nothing else). */
  readonly parsed: boolean;
  /** The top-level fields, when they are all sound. */
  readonly header: DocumentHeader | undefined;
  /** One entry per node in the document; `undefined` where that node is malformed. */
  readonly nodes: ReadonlyArray<NodeSpec | undefined>;
  /**
   * The `id` of each node when it is at least a string, malformed node or not: an input naming a malformed
   * node is that node's problem, not an unknown input.
   */
  readonly declared_ids: ReadonlyArray<string | undefined>;
  /** `output` when it is a string, checked against the nodes even when another top-level field is bad. */
  readonly declared_output: string | undefined;
}

export interface ReadOptions {
  /** `application/json` parses text as JSON; anything else (or nothing) as YAML, which JSON is a subset of. */
  readonly contentType?: string | undefined;
}

/** Parses document text. Never throws: every failure is an RM_PIPE_PARSE issue. */
/** YAML errors reported for one document, at most. */
const MAX_REPORTED_YAML_ERRORS = 20;

export function parseText(
  text: string,
  options: ReadOptions = {},
): { ok: true; value: unknown } | { ok: false; errors: PipelineIssue[] } {
  const json = options.contentType?.toLowerCase().includes('json') === true;
  if (nestsTooDeep(text, !json)) {
    return { ok: false, errors: [parseIssue('the document nests too deeply')] };
  }
  if (json) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (err) {
      return { ok: false, errors: [parseIssue(`invalid JSON: ${(err as Error).message}`)] };
    }
  }
  try {
    // uniqueKeys: a repeated key is an error, not a silent overwrite.
    const doc = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) {
      // The first few are what a reader can act on; a broken document can have thousands.
      const first = doc.errors.slice(0, MAX_REPORTED_YAML_ERRORS);
      return { ok: false, errors: first.map((e) => parseIssue(`invalid YAML: ${e.message}`)) };
    }
    // maxAliasCount bounds alias expansion ("billion laughs").
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    return { ok: false, errors: [parseIssue(`invalid YAML: ${(err as Error).message}`)] };
  }
}

function parseIssue(message: string): PipelineIssue {
  return { path: '', code: 'RM_PIPE_PARSE', message };
}

/** Reads a document from text (YAML or JSON) or from a parsed value. Never throws. */
export function readDocument(input: unknown, options: ReadOptions = {}): DocumentReading {
  let value = input;
  if (typeof input === 'string') {
    const parsed = parseText(input, options);
    if (!parsed.ok)
      return {
        errors: parsed.errors,
        parsed: false,
        header: undefined,
        nodes: [],
        declared_ids: [],
        declared_output: undefined,
      };
    value = parsed.value;
  }

  const errors: PipelineIssue[] = [];
  const head = headerSchema.safeParse(value);
  if (!head.success) errors.push(...fromZodIssues(head.error.issues, [], 'RM_PIPE_SCHEMA'));

  // Nodes are checked one by one whenever `nodes` is an array of a size the document may have.
  const rawNodes =
    isRecord(value) && Array.isArray(value.nodes) && value.nodes.length <= MAX_NODES ? value.nodes : [];
  const nodes: Array<NodeSpec | undefined> = [];
  const declared_ids: Array<string | undefined> = [];
  rawNodes.forEach((raw: unknown, i) => {
    const node = nodeSpecSchema.safeParse(raw);
    // zod's record drops a `__proto__` key; the params schema must see (and reject) every key given.
    if (node.success)
      nodes.push(isRecord(raw) && isRecord(raw.params) ? { ...node.data, params: raw.params } : node.data);
    else {
      nodes.push(undefined);
      errors.push(...fromZodIssues(node.error.issues, ['nodes', i], 'RM_PIPE_SCHEMA'));
    }
    declared_ids.push(isRecord(raw) && typeof raw.id === 'string' ? raw.id : undefined);
  });

  let header: DocumentHeader | undefined;
  if (head.success) {
    const { nodes: _nodes, ...rest } = head.data;
    header = rest;
  }
  const declared_output = isRecord(value) && typeof value.output === 'string' ? value.output : undefined;
  return { errors, parsed: true, header, nodes, declared_ids, declared_output };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
