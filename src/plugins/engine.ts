/**
 * The native engine (docs/engine.md): one worker pool per app, shut down when the app closes.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Engine } from '../native.js';

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine;
  }
}

export const enginePlugin = fp(
  async (app: FastifyInstance) => {
    const engine = new Engine({ workers: app.config.workers, pinCores: app.config.pinCores });
    const workers = engine.workers();
    if (app.config.pinCores) {
      const unpinned = workers.filter((w) => !w.pinned).map((w) => w.index);
      // docs/configuration.md: failure to pin is logged, not fatal.
      if (unpinned.length > 0) app.log.warn({ workers: unpinned }, 'could not pin some workers to cores');
    }
    app.log.info(
      {
        workers: workers.length,
        pinned: workers.filter((w) => w.pinned).length,
        event_loop_cores: engine.hostCores,
      },
      'native engine started',
    );
    app.decorate('engine', engine);
    app.addHook('onClose', async () => engine.shutdown());
  },
  { name: 'remotemedia-engine' },
);
