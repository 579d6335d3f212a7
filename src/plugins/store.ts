/**
 * The pipeline store (docs/configuration.md, README "Several instances"): SQLite under DATA_DIR, or
 * PostgreSQL with STORE_URL; closed with the app. Every change the store hears of (from this instance or,
 * on PostgreSQL, any other) drops that pipeline's memoised plans.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { forgetPlans } from '../planner.js';
import { openStore, type PipelineStore } from '../store/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    store: PipelineStore;
  }
}

export const storePlugin = fp(
  async (app: FastifyInstance) => {
    const store = await openStore(app.config);
    app.log.info({ store: store.kind }, 'pipeline store open');
    const unsubscribe = store.subscribe((change) => {
      if (change.kind === 'resync') forgetPlans();
      else forgetPlans(change.id);
    });
    app.decorate('store', store);
    app.addHook('onClose', async () => {
      unsubscribe();
      await store.close();
    });
  },
  { name: 'remotemedia-store' },
);
