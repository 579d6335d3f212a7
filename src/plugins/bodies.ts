/**
 * Request bodies beyond Fastify's JSON: pipeline documents as YAML text (docs/pipelines.md), and audio uploads
 * as raw bytes (docs/rest.md `/process`), each with its own size limit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { RemoteMediaError } from '../errors.js';
import { MAX_BLOCK_COLUMNS, MAX_FLOW_DEPTH, nestsTooDeep } from '../pipeline/depth.js';
import { sendProblem } from './problems.js';

/** Content types of a pipeline document sent as YAML (kept as text; the pipeline reader parses it). */
export const yamlContentTypes = ['application/yaml', 'text/yaml', 'application/x-yaml'] as const;

/** Content types of a pipeline document. */
export const documentContentTypes = ['application/json', ...yamlContentTypes] as const;

/** Content types of a WAV upload. */
export const audioContentTypes = [
  'audio/wav',
  'audio/x-wav',
  'audio/wave',
  'application/octet-stream',
] as const;

/** The media type of a request, lower case, without parameters (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(request: FastifyRequest): string | undefined {
  const header = request.headers['content-type'];
  return header?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * An `onRequest` hook that answers 415 before the body is read when a request has a body of a type the
 * route does not take (the parsers are shared by every route, so e.g. a WAV sent to `/v1/pipelines`
 * would otherwise be read whole first).
 */
export function onlyContentTypes(types: readonly string[]) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const type = mediaType(request);
    if (type === undefined || types.includes(type)) return;
    return sendProblem(
      reply,
      415,
      'RM_ERR_UNSUPPORTED_MEDIA_TYPE',
      `content type ${type} is not accepted here; send one of ${types.join(', ')}`,
    );
  };
}

function tooDeep(): RemoteMediaError {
  return new RemoteMediaError(
    'RM_ERR_BODY_TOO_DEEP',
    `the body nests deeper than ${MAX_FLOW_DEPTH} levels (or ${MAX_BLOCK_COLUMNS} columns of YAML block structure)`,
  );
}

export const bodiesPlugin = fp(
  async (app: FastifyInstance) => {
    // JSON: Fastify's own parser (prototype-poisoning checks included), after a linear depth scan, so
    // no recursive consumer of the value can overflow the stack (docs/limits.md).
    const json = app.getDefaultJsonParser('error', 'error');
    app.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: app.config.maxBodyBytes },
      (request, body, done) => {
        if (nestsTooDeep(body as string, false)) return done(tooDeep(), undefined);
        return json(request, body as string, done);
      },
    );
    app.addContentTypeParser(
      [...yamlContentTypes],
      { parseAs: 'string', bodyLimit: app.config.maxBodyBytes },
      (_request, body, done) => {
        if (nestsTooDeep(body as string, true)) return done(tooDeep(), undefined);
        return done(null, body);
      },
    );
    app.addContentTypeParser(
      [...audioContentTypes],
      { parseAs: 'buffer', bodyLimit: app.config.maxUploadBytes },
      (_request, body, done) => done(null, body),
    );
  },
  { name: 'remotemedia-bodies' },
);
