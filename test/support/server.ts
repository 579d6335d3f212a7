import type { FastifyInstance } from 'fastify';
import { startUwsListener, type UwsListener } from '../../src/realtime/transports/uws.js';
import { testApp } from './app.js';

export interface Running {
  app: FastifyInstance;
  /** ws:// base URL per transport. */
  base: { ws: string; uws: string };
  uws: UwsListener;
  close(): Promise<void>;
}

/** A listening app with both realtime transports on free loopback ports. */
export async function startTestServer(env: Record<string, string> = {}): Promise<Running> {
  const app = await testApp(env);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const uws = await startUwsListener(app.realtime, '127.0.0.1', 0);
  return {
    app,
    base: { ws: `ws://127.0.0.1:${port}`, uws: `ws://127.0.0.1:${uws.port}` },
    uws,
    close: async () => {
      await app.close();
      uws.close();
    },
  };
}

export { asrFrontEnd } from './pipelines.js';

/** Stores a pipeline document and returns its id. */
export async function storePipeline(
  app: FastifyInstance,
  definition: Record<string, unknown>,
): Promise<string> {
  const created = await app.store.create({
    name: String(definition.name),
    definition,
    source: JSON.stringify(definition),
    contentType: 'application/json',
  });
  return created.id;
}
