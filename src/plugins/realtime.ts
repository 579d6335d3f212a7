/**
 * The realtime plane (SPEC §4): the session registry shared by both transports, the
 * @fastify/websocket transport on the main port, and draining on close (SPEC §4.8).
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { planWithEngine } from '../planner.js';
import { SessionRegistry } from '../realtime/registry.js';
import type { RealtimeMetrics } from '../realtime/session.js';
import { fastifyTransport } from '../realtime/transports/fastify.js';

declare module 'fastify' {
  interface FastifyInstance {
    realtime: SessionRegistry;
  }
}

export const realtimePlugin = fp(
  async (app: FastifyInstance, opts: { metrics?: RealtimeMetrics }) => {
    const registry = new SessionRegistry(
      {
        config: app.config,
        engine: app.engine,
        // Only rate and channels: the session's start message also carries its encoding, which the
        // (strict) input-format check of the planner would reject as an unknown key.
        plan: (definition, { sample_rate, channels }) =>
          planWithEngine(definition, { inputFormat: { sample_rate, channels } }),
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        log: app.log,
      },
      (id) => {
        const p = app.store.get(id);
        return p && { id: p.id, version: p.version, definition: p.definition };
      },
      app.authorize,
    );
    app.decorate('realtime', registry);
    // The transport's preClose drains the registry (both transports) before the server goes away.
    await app.register(fastifyTransport, { registry });
  },
  {
    name: 'remotemedia-realtime',
    dependencies: ['remotemedia-engine', 'remotemedia-store', 'remotemedia-auth'],
  },
);
