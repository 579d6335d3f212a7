/**
 * RFC 9457 problem details for every error the server answers with, using the codes of `errors.ts`.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
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

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extensions: Record<string, unknown> = {},
) {
  const title = (errorCatalog as Record<string, { title: string }>)[code]?.title ?? 'Error';
  const body: Problem = {
    type: `https://remotemedia.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status,
    code,
    detail,
    instance: reply.request.url,
    ...extensions,
  };
  return reply.code(status).type('application/problem+json').send(body);
}

export const problemsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, 404, 'RM_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`),
    );
    app.setErrorHandler((err: FastifyError | RemoteMediaError, request, reply) => {
      if (err instanceof RemoteMediaError) {
        if (err.status >= 500) request.log.error({ err }, 'request failed');
        return sendProblem(reply, err.status, err.code, err.message);
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) {
        request.log.error({ err }, 'request failed');
        return sendProblem(reply, 500, 'RM_ERR_INTERNAL', 'internal server error');
      }
      // Fastify's own 4xx (FST_ERR_CTP_*, body too large, bad JSON) keep their code.
      return sendProblem(reply, status, err.code ?? 'RM_ERR_BAD_REQUEST', err.message);
    });
  },
  { name: 'remotemedia-problems' },
);
