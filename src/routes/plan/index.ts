/** `POST /v1/plan` (docs/rest.md): validate and plan a document without storing it. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { planBounds } from '../../config.js';
import { readDocumentBody } from '../../documents.js';
import { DEFAULT_INPUT_FORMAT } from '../../pipeline/validate.js';
import { documentContentTypes, mediaType, onlyContentTypes } from '../../plugins/bodies.js';
import { sendProblem } from '../../plugins/problems.js';
import { documentingBodyValidator, problems } from '../common.js';
import { documentBody, formatQuery, planSchema } from './schemas.js';

export async function planRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/v1/plan',
    {
      onRequest: onlyContentTypes(documentContentTypes),
      validatorCompiler: documentingBodyValidator,
      schema: {
        tags: ['pipelines'],
        summary: 'Validate and plan a document without storing it',
        consumes: [...documentContentTypes],
        querystring: formatQuery,
        body: documentBody,
        response: { 200: planSchema, ...problems(415, 422) },
      },
    },
    async (request, reply) => {
      const inputFormat = {
        sample_rate: request.query.sample_rate ?? DEFAULT_INPUT_FORMAT.sample_rate,
        channels: request.query.channels ?? DEFAULT_INPUT_FORMAT.channels,
      };
      const doc = readDocumentBody(
        request.body,
        mediaType(request),
        inputFormat,
        planBounds(app.config),
        app.config.sinkAllowlist,
      );
      if (!doc.ok) {
        const detail = `the pipeline document has ${doc.errors.length} problem(s)`;
        return sendProblem(reply, 422, 'RM_ERR_INVALID_PIPELINE', detail, { errors: doc.errors });
      }
      return doc.plan;
    },
  );
}
