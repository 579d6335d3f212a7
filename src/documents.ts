/**
 * Pipeline documents as the REST API receives them (docs/pipelines.md, docs/rest.md): YAML text or parsed JSON, read,
 * validated and planned with the engine in the loop. Imports no Fastify.
 */

import type { PlanBounds } from './pipeline/bounds.js';
import { parseText } from './pipeline/document.js';
import type { AudioFormat } from './pipeline/format.js';
import type { PipelineIssue } from './pipeline/issues.js';
import type { Plan } from './pipeline/plan.js';
import { DEFAULT_INPUT_FORMAT } from './pipeline/validate.js';
import { type PlanProblem, planWithEngine } from './planner.js';
import { sinkHostAllowed } from './realtime/sink.js';

export type DocumentResult =
  | {
      ok: true;
      /** The parsed document, as stored. */
      definition: Record<string, unknown>;
      name: string;
      /** The text to store: YAML as sent; JSON re-serialized from the parsed body. */
      source: string;
      plan: Plan;
    }
  | { ok: false; errors: readonly (PipelineIssue | PlanProblem | SinkProblem)[] };

/** A document whose `sink.url` names a host outside SINK_ALLOWLIST (docs/telephony/README.md). */
export interface SinkProblem {
  readonly path: '/sink/url';
  readonly code: 'RM_ERR_SINK_NOT_ALLOWED';
  readonly message: string;
}

/**
 * Reads a request body (YAML text, or a value Fastify parsed from JSON), then validates and plans it
 * for `inputFormat` (default: 48 kHz stereo, what stored plans are shown for). With `sinkAllowlist`, a
 * `sink.url` whose host it does not allow is a problem too (docs/telephony/README.md). Never throws.
 */
export function readDocumentBody(
  body: unknown,
  contentType: string | undefined,
  inputFormat: AudioFormat = DEFAULT_INPUT_FORMAT,
  bounds?: PlanBounds,
  sinkAllowlist?: readonly string[],
): DocumentResult {
  let value = body;
  let source: string;
  if (typeof body === 'string') {
    const parsed = parseText(body, { contentType });
    if (!parsed.ok) return parsed;
    value = parsed.value;
    source = body;
  } else {
    source = JSON.stringify(body) ?? '';
  }
  const planned = planWithEngine(value, bounds === undefined ? { inputFormat } : { inputFormat, bounds });
  if (!planned.ok) return planned;
  // A valid document is an object with a string name (docs/pipelines.md); planning has checked it.
  const definition = value as Record<string, unknown>;
  const sinkUrl = (definition.sink as { url?: unknown } | undefined)?.url;
  if (
    sinkAllowlist !== undefined &&
    typeof sinkUrl === 'string' &&
    !sinkHostAllowed(sinkAllowlist, sinkUrl)
  ) {
    return {
      ok: false,
      errors: [
        {
          path: '/sink/url',
          code: 'RM_ERR_SINK_NOT_ALLOWED',
          message: 'the sink host is not in SINK_ALLOWLIST',
        },
      ],
    };
  }
  return { ok: true, definition, name: String(definition.name), source, plan: planned.plan };
}
