/**
 * The realtime plane (docs/protocol.md): the session registry shared by both transports, the
 * @fastify/websocket transport on the main port, and draining on close (docs/protocol.md §6).
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { planBounds } from '../config.js';
import { planWithEngine } from '../planner.js';
import { CurrentPipelines } from '../realtime/current-pipelines.js';
import { UpgradeRate } from '../realtime/ratelimit.js';
import { SessionRegistry } from '../realtime/registry.js';
import type { RealtimeMetrics } from '../realtime/session.js';
import { fastifyTransport } from '../realtime/transports/fastify.js';
import { overloaded, PRESSURE_RETRY_AFTER_S } from './protection.js';

declare module 'fastify' {
  interface FastifyInstance {
    realtime: SessionRegistry;
  }
}

export const realtimePlugin = fp(
  async (app: FastifyInstance, opts: { metrics?: RealtimeMetrics }) => {
    const bounds = planBounds(app.config);
    const store = app.store;
    const pipelines = new CurrentPipelines({
      load: async (id) => {
        const p = await store.get(id);
        return p && { id: p.id, version: p.version, definition: p.definition };
      },
      get hearsEveryChange() {
        return store.hearsEveryChange;
      },
    });
    const unsubscribe = store.subscribe((change) =>
      pipelines.forget(change.kind === 'resync' ? undefined : change.id),
    );
    app.addHook('onClose', async () => unsubscribe());
    const registry = new SessionRegistry(
      {
        config: app.config,
        engine: app.engine,
        // Only rate and channels: the session's start message also carries its encoding, which the
        // (strict) input-format check of the planner would reject as an unknown key.
        plan: (definition, { sample_rate, channels }) =>
          planWithEngine(definition, { inputFormat: { sample_rate, channels }, bounds }),
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        log: app.log,
      },
      pipelines.lookup,
      app.authorize,
      {
        // The main port's HTTP protections, applied to upgrades by their admission on both listeners.
        ...(app.config.rateLimitPerMin > 0
          ? { upgradeRate: new UpgradeRate(app.config.rateLimitPerMin) }
          : {}),
        ...(app.config.maxEventLoopDelayMs > 0
          ? {
              overload: {
                active: () => overloaded(app),
                retryAfterS: PRESSURE_RETRY_AFTER_S,
              },
            }
          : {}),
      },
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
