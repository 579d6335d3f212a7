/**
 * RFC 9457 problem details for every error the server answers with, using the codes of `errors.ts`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { type ErrorCode, errorCatalog, RemoteMediaError } from '../errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode | string;
  detail: string;
  instance?: string;
  [extension: string]: unknown;
}

/** The problem+json body for a catalog code; every surface (both transports too) builds it here. */
export function problemOf(
  status: number,
  code: string,
  detail: string,
  instance: string,
  extensions: Record<string, unknown> = {},
): Problem {
  const title = (errorCatalog as Record<string, { title: string }>)[code]?.title ?? 'Error';
  return {
    type: `https://remotemedia.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status,
    code,
    detail,
    instance,
    ...extensions,
  };
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extensions: Record<string, unknown> = {},
) {
  const body = problemOf(status, code, detail, reply.request.url, extensions);
  return reply.code(status).type('application/problem+json').send(body);
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a URL that cannot be percent-decoded, an
 * over-long path parameter) get a problem+json answer like every other error. Such a request may be a
 * WebSocket upgrade, whose socket no one else would close after the answer.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 400;
  if (request.headers.upgrade !== undefined) reply.raw.once('finish', () => request.raw.socket.destroy());
  return sendProblem(reply, status, 'RM_ERR_BAD_REQUEST', err.message, { fastify_code: err.code });
}

/** The catalog code for a client error Fastify or a plugin raised with only a status. */
const statusCodes: Record<number, ErrorCode> = {
  400: 'RM_ERR_BAD_REQUEST',
  403: 'RM_ERR_ORIGIN',
  404: 'RM_ERR_NOT_FOUND',
  413: 'RM_ERR_PAYLOAD_TOO_LARGE',
  415: 'RM_ERR_UNSUPPORTED_MEDIA_TYPE',
  429: 'RM_ERR_RATE_LIMITED',
};

/**
 * A client error is the client's business: one debug line without a stack, so that no client can
 * fill the log with error-level traces. Load shed on purpose (503: overloaded, draining, full, store
 * busy) is one warn line without a stack. Other server errors stay at error level, with the stack.
 */
function refused(request: FastifyRequest, status: number, code: string): void {
  request.log.debug({ status, code }, 'request refused');
}

function shed(request: FastifyRequest, err: RemoteMediaError): void {
  request.log.warn({ status: err.status, code: err.code, reason: err.message }, 'request shed');
}

export const problemsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, 404, 'RM_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`),
    );
    app.setErrorHandler((err: FastifyError | RemoteMediaError, request, reply) => {
      if (err instanceof RemoteMediaError) {
        if (err.status === 503) shed(request, err);
        else if (err.status >= 500) request.log.error({ err }, 'request failed');
        else refused(request, err.status, err.code);
        return sendProblem(reply, err.status, err.code, err.message);
      }
      if (hasZodFastifySchemaValidationErrors(err)) {
        // Request schema (params, query, headers, body) violations: every problem at once, like docs/pipelines.md.
        const part = err.validationContext ?? 'request';
        const errors = err.validation.map((v) => ({
          path: `/${part}${v.instancePath}`,
          code: v.keyword,
          message: v.message ?? 'invalid',
        }));
        return sendProblem(reply, 400, 'RM_ERR_BAD_REQUEST', `invalid ${part}`, { errors });
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) {
        request.log.error({ err }, 'request failed');
        return sendProblem(reply, 500, 'RM_ERR_INTERNAL', 'internal server error');
      }
      // Fastify's own 4xx (FST_ERR_CTP_* for bad JSON, body too large, unknown content type) keep their
      // status and get the catalog code of that status; Fastify's code stays in `fastify_code`.
      const code = statusCodes[status] ?? 'RM_ERR_BAD_REQUEST';
      refused(request, status, code);
      return sendProblem(reply, status, code, err.message, err.code ? { fastify_code: err.code } : {});
    });
  },
  { name: 'remotemedia-problems' },
);
