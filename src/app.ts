/**
 * buildApp(config): the Fastify application, with plugins and routes registered in a readable order.
 * It never listens; `server.ts` owns the process.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { authPlugin } from './plugins/auth.js';
import { enginePlugin } from './plugins/engine.js';
import { problemsPlugin } from './plugins/problems.js';
import { realtimePlugin } from './plugins/realtime.js';
import { storePlugin } from './plugins/store.js';
import { uiPlugin } from './plugins/ui.js';
import { healthRoutes } from './routes/health/index.js';

export interface AppOptions {
  /** Fastify logger options; tests pass `false`. */
  logger?: FastifyServerOptions['logger'];
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: config.maxUploadBytes,
    // Request timeouts guard against slow-loris uploads; streaming sockets are upgraded before this applies.
    requestTimeout: 120_000,
  });
  app.decorate('config', config);

  await app.register(problemsPlugin);
  await app.register(authPlugin);
  await app.register(storePlugin);
  await app.register(enginePlugin);
  await app.register(realtimePlugin);
  await app.register(healthRoutes);
  await app.register(uiPlugin);

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}
