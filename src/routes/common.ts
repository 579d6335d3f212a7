/**
 * Schemas and helpers shared by the route groups: the problem+json body, error responses for the
 * OpenAPI document, and the validator of routes whose body schema only documents.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

/** RFC 9457 problem details, as `sendProblem` writes them. */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    code: z.string().describe('stable error code, e.g. RM_ERR_PIPELINE_NOT_FOUND'),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z
      .array(
        z.object({
          path: z.string().describe('JSON pointer (RFC 6901) to the problem'),
          code: z.string(),
          message: z.string(),
        }),
      )
      .optional()
      .describe('every problem found, for invalid documents (422) and requests (400)'),
  })
  .meta({ id: 'Problem' });

const statusText: Record<number, string> = {
  400: 'Malformed request (bad JSON, bad query or path parameter)',
  401: 'Missing or invalid API key (when API_KEYS is set)',
  403: 'Origin not in ALLOWED_ORIGINS',
  404: 'Not found',
  412: 'If-Match names a version that is not the current one',
  413: 'Request body too large',
  415: 'Unsupported content type',
  422: 'Invalid pipeline document, with every problem in `errors`',
  429: 'Rate limit exceeded (see Retry-After)',
  503: 'Overloaded or draining (see Retry-After)',
};

/** Answered by every route under the protection and auth plugins. */
const everywhere = [400, 401, 403, 429, 503] as const;

/** Error responses of a route for the OpenAPI document: the given statuses plus those every route has. */
export function problems(...statuses: number[]) {
  const out: Record<
    number,
    { description: string; content: Record<string, { schema: typeof problemSchema }> }
  > = {};
  for (const status of [...new Set([...statuses, ...everywhere])].sort()) {
    out[status] = {
      description: statusText[status] ?? 'Error',
      content: { 'application/problem+json': { schema: problemSchema } },
    };
  }
  return out;
}

/**
 * A validator for routes whose body schema documents rather than checks: pipeline documents are
 * checked by the pipeline validator, which reports every problem at once with docs/pipelines.md paths (422), and
 * audio bodies by the WAV reader. Params, query and headers are checked by zod as everywhere.
 */
export const documentingBodyValidator: FastifySchemaCompiler<unknown> = (route) =>
  route.httpPart === 'body'
    ? (data: unknown) => ({ value: data })
    : validatorCompiler(route as FastifyRouteSchemaDef<z.ZodType>);

/** A 1-based version number in a query string. */
export const versionQuery = z.coerce
  .number()
  .int()
  .min(1)
  .max(Number.MAX_SAFE_INTEGER)
  .optional()
  .describe('a version of the pipeline; default: the current one');
