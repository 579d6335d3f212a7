/** `GET /v1/nodes` (docs/rest.md): the node catalog, generated from the same schemas that validate documents. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { nodeCatalog } from '../../pipeline/catalog.js';
import { problems } from '../common.js';
import { nodeCatalogSchema } from './schemas.js';

export async function nodeRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const catalog = { items: nodeCatalog().map((entry) => ({ ...entry, events: [...entry.events] })) };
  app.get(
    '/v1/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'The node catalog: types, params (JSON Schema), events',
        response: { 200: nodeCatalogSchema, ...problems() },
      },
    },
    async () => catalog,
  );
}
