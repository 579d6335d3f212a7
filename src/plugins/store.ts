/**
 * The embedded SQLite store under DATA_DIR (docs/configuration.md), closed with the app.
 */
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { PipelineStore } from '../store/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    store: PipelineStore;
  }
}

export const storePlugin = fp(
  async (app: FastifyInstance) => {
    mkdirSync(app.config.dataDir, { recursive: true });
    const store = PipelineStore.open(app.config.dataDir);
    app.decorate('store', store);
    app.addHook('onClose', async () => store.close());
  },
  { name: 'remotemedia-store' },
);
