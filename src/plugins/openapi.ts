/**
 * Route schemas are zod (fastify-type-provider-zod): they validate requests, serialize responses and
 * generate the OpenAPI 3.1 document (@fastify/swagger), served at `/openapi.json` with its UI at `/docs`
 * (@fastify/swagger-ui, whose assets ship in the package). `npm run openapi` commits the same document
 * as `openapi/openapi.json`.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';

export const openapiPlugin = fp(
  async (app: FastifyInstance, opts: { version: string }) => {
    app.setValidatorCompiler(validatorCompiler);
    // Response schemas document the API (OpenAPI) and are checked by the test suite; validating every
    // response against them at run time (the zod serializer) tripled the cost of a GET, so production
    // serialization is plain JSON. Set RM_VALIDATE_RESPONSES=1 to turn the check back on.
    if (process.env.RM_VALIDATE_RESPONSES === '1') app.setSerializerCompiler(serializerCompiler);
    else app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'RemoteMedia',
          version: opts.version,
          description:
            'Real-time audio server: pipelines of native DSP nodes, offline processing, live sessions. ' +
            'Errors are RFC 9457 problem+json with a stable `code` (every code: docs/errors.md). ' +
            'The WebSocket protocol of `/v1/pipelines/{id}/stream` is described in docs/protocol.md, the settings ' +
            'in docs/configuration.md, pipeline documents and the node catalog in docs/pipelines.md: ' +
            'the docs/ folder of the RemoteMedia repository.',
        },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of API_KEYS' } },
        },
        security: [{ bearer: [] }],
        tags: [
          { name: 'pipelines', description: 'Pipeline documents, plans and offline processing' },
          { name: 'nodes', description: 'The node catalog' },
          { name: 'sessions', description: 'Live streaming sessions' },
          {
            name: 'telephony',
            description:
              'Telephony provider endpoints and listeners (docs/telephony/README.md; docs/telephony/ in the repo)',
          },
          { name: 'operations', description: 'Health, readiness, metrics' },
        ],
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'remotemedia-openapi', dependencies: ['remotemedia-problems'] },
);
