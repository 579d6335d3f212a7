/**
 * Problems found in a pipeline document (docs/pipelines.md): every one is reported at once as
 * `{ path, code, message }`, where `path` is a JSON pointer (RFC 6901) into the document.
 * Codes are stable; tests and clients match on `code`, never on `message`.
 */
import type { z } from 'zod';

/** Every code a pipeline problem can carry, with what it means. */
export const pipelineIssueCodes = {
  RM_PIPE_PARSE: 'the text is not valid YAML or JSON',
  RM_PIPE_SCHEMA:
    'the document does not have the shape of a pipeline document, see docs/pipelines.md (missing or mistyped field, unknown key)',
  RM_PIPE_UNKNOWN_TYPE: 'a node has a type that is not in the node catalog',
  RM_PIPE_BAD_PARAMS: 'a node param is unknown, missing, mistyped or out of bounds',
  RM_PIPE_DUPLICATE_ID: 'two nodes share an id',
  RM_PIPE_UNKNOWN_INPUT: 'a node reads from an id that no node has',
  RM_PIPE_TOO_MANY_INPUTS: 'a node lists more than one input; every node type takes at most one',
  RM_PIPE_CYCLE: 'nodes read from each other in a loop',
  RM_PIPE_BAD_OUTPUT: 'the output names no node, or an analysis node',
  RM_PIPE_FORMAT_CONFLICT: 'a node cannot take the sample rate or channel count that reaches it',
  RM_PIPE_MEMORY_BOUND: 'one session of the plan would hold more memory than MAX_SESSION_MEMORY_BYTES allows',
  RM_PIPE_WORK_BOUND: 'one second of audio would take more work than MAX_SESSION_OPS_PER_SEC allows',
  RM_PIPE_EVENT_RATE:
    'the plan would emit more events per second than MAX_EVENTS_PER_SEC allows, or more event text per answer than the engine sends',
  RM_PIPE_ENGINE_REJECTED: 'the native engine refused to build a plan the validator accepted',
} as const;

export type PipelineIssueCode = keyof typeof pipelineIssueCodes;

/** One problem: where it is (JSON pointer, `""` = the whole document), its code, and a readable message. */
export interface PipelineIssue {
  readonly path: string;
  readonly code: PipelineIssueCode;
  readonly message: string;
}

/** A JSON pointer from path segments, escaped as RFC 6901 §3 requires (`~` → `~0`, `/` → `~1`). */
export function pointer(...segments: ReadonlyArray<string | number>): string {
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/**
 * Turns zod issues into pipeline issues under `base`. Unknown keys are reported one per key, at the key,
 * so a client can point at the exact offending line.
 */
export function fromZodIssues(
  issues: readonly z.core.$ZodIssue[],
  base: ReadonlyArray<string | number>,
  code: PipelineIssueCode,
): PipelineIssue[] {
  const out: PipelineIssue[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ path: pointer(...path, key), code, message: `unknown key "${key}"` });
      }
    } else {
      const name = path.length > 0 ? `${String(path[path.length - 1])}: ` : '';
      out.push({ path: pointer(...path), code, message: `${name}${issue.message}` });
    }
  }
  return out;
}
