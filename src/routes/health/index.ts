import type { FastifyInstance } from 'fastify';

/** Liveness (SPEC §3): answers while the process can serve HTTP at all. */
export async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', async () => ({ status: 'ok' }));
}
