/**
 * buildApp(config): the Fastify application, with plugins and routes registered in a readable order.
 * It never listens; `server.ts` owns the process.
 */
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { authPlugin } from './plugins/auth.js';
import { bodiesPlugin } from './plugins/bodies.js';
import { enginePlugin } from './plugins/engine.js';
import { metricsPlugin } from './plugins/metrics.js';
import { openapiPlugin } from './plugins/openapi.js';
import { frameworkErrors, problemsPlugin } from './plugins/problems.js';
import { protectionPlugin } from './plugins/protection.js';
import { realtimePlugin } from './plugins/realtime.js';
import { storePlugin } from './plugins/store.js';
import { uiPlugin } from './plugins/ui.js';
import { healthRoutes } from './routes/health/index.js';
import { metricsRoutes } from './routes/metrics/index.js';
import { nodeRoutes } from './routes/nodes/index.js';
import { pipelineRoutes } from './routes/pipelines/index.js';
import { planRoutes } from './routes/plan/index.js';
import { sessionRoutes } from './routes/sessions/index.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export interface AppOptions {
  /** Fastify logger options; tests pass `false`. */
  logger?: FastifyServerOptions['logger'];
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    // Documents are small; audio uploads have their own limit (MAX_UPLOAD_BYTES, plugins/bodies.ts).
    bodyLimit: config.maxBodyBytes,
    // Guards against slow-loris uploads; streaming sockets are upgraded before this applies.
    requestTimeout: config.requestTimeoutMs,
    // Errors raised before routing answer problem+json too (plugins/problems.ts).
    frameworkErrors,
  });
  app.decorate('config', config);

  // Cross-cutting: errors, metrics, protection, auth, bodies, schemas; each hook sees every later route.
  await app.register(problemsPlugin);
  await app.register(metricsPlugin);
  await app.register(protectionPlugin);
  await app.register(authPlugin);
  await app.register(bodiesPlugin);
  await app.register(openapiPlugin, { version });

  // Services.
  await app.register(storePlugin);
  await app.register(enginePlugin);
  await app.register(realtimePlugin, { metrics: app.metrics.realtime });

  // Routes.
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(pipelineRoutes);
  await app.register(planRoutes);
  await app.register(nodeRoutes);
  await app.register(sessionRoutes);
  await app.register(uiPlugin);

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}
