/** `GET /metrics` (docs/rest.md): Prometheus text exposition; not rate limited, so overload stays visible. */
import type { FastifyInstance } from 'fastify';

export async function metricsRoutes(app: FastifyInstance) {
  app.get(
    '/metrics',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (`remotemedia_*` and process metrics)',
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      const { registry } = app.metrics;
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
}
