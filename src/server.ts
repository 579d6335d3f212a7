/**
 * Process concerns only: build the app, listen, and close gracefully on SIGINT/SIGTERM.
 * A second signal during the grace period forces exit.
 */
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { startUwsListener, type UwsListener, uwsIsNative } from './realtime/transports/uws.js';

export interface RunningServer {
  app: FastifyInstance;
  /** The bound HTTP address, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The uWebSockets.js realtime listener, when RT_PORT is not 0. */
  rt: UwsListener | undefined;
  close(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true });
  const app = await buildApp(config);
  if (config.apiKeys.length === 0) {
    app.log.warn('API_KEYS is empty: every route is open without authentication');
  }
  const url = await app.listen({ port: config.port, host: config.host });
  let rt: UwsListener | undefined;
  if (config.rtPort !== 0) {
    if (!uwsIsNative)
      app.log.warn('uWebSockets.js has no native binary for this Node.js; using its JS fallback');
    try {
      rt = await startUwsListener(app.realtime, config.host, config.rtPort);
    } catch (err) {
      // Like a taken PORT: boot fails, and the HTTP listener must not keep the process alive.
      await app.close();
      throw err;
    }
    app.log.info({ port: rt.port, native: uwsIsNative }, 'uWebSockets.js realtime listener started');
  }
  return {
    app,
    url,
    rt,
    // app.close() drains sessions of both transports (preClose hook) before the listeners go away.
    close: async () => {
      await app.close();
      rt?.close();
    },
  };
}

/** Installs the signal handlers: graceful close on the first signal, forced exit on the second. */
export function closeOnSignals(server: RunningServer, config: Config): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      server.app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    server.app.log.info({ signal, grace_ms: config.shutdownGraceMs }, 'shutting down');
    const force = setTimeout(() => {
      server.app.log.error('grace period over: exiting now');
      process.exit(1);
    }, config.shutdownGraceMs);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.app.log.error({ err }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
