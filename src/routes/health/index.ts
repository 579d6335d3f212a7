import type { FastifyInstance } from 'fastify';
import { sendProblem } from '../../plugins/problems.js';

/** Probes are never authenticated, rate limited or shed (see plugins/protection.ts). */
const probe = (summary: string) => ({ tags: ['operations'], summary, security: [] });

export async function healthRoutes(app: FastifyInstance) {
  /** Liveness (SPEC §3): answers while the process can serve HTTP at all. */
  app.get('/healthz', { config: { rateLimit: false }, schema: probe('Liveness') }, async () => ({
    status: 'ok',
  }));

  /** Readiness (SPEC §3): 503 while draining or when the native pool has no live worker. */
  app.get(
    '/readyz',
    { config: { rateLimit: false }, schema: probe('Readiness') },
    async (_request, reply) => {
      if (app.realtime.isDraining) {
        reply.header('retry-after', '5');
        return sendProblem(reply, 503, 'RM_ERR_DRAINING', 'server is shutting down');
      }
      const workers = app.engine.workers();
      if (workers.length === 0) return sendProblem(reply, 503, 'RM_ERR_NATIVE', 'native worker pool is down');
      const health = app.engine.health(app.config.workerStallMs);
      if (!health.ok) {
        reply.header('retry-after', '5');
        return sendProblem(
          reply,
          503,
          'RM_ERR_WORKER_STALLED',
          `native workers not responding: ${health.stalled.join(', ')}`,
        );
      }
      return { status: 'ready', workers: workers.length, sessions: app.realtime.sessions.size };
    },
  );
}
