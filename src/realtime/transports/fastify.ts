/**
 * The realtime protocol on the main port, through `@fastify/websocket` (SPEC §1, §4).
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { WebSocket } from 'ws';
import { sendProblem } from '../../plugins/problems.js';
import { transportMaxPayload } from '../protocol.js';
import type { SessionRegistry } from '../registry.js';
import { type PipelineRef, type Socket, StreamSession } from '../session.js';
import { guarded } from './guard.js';

/** One options object for every binary send (ws would otherwise get a fresh one per answer). */
const BINARY = { binary: true } as const;

function adapt(ws: WebSocket): Socket {
  const open = () => ws.readyState === ws.OPEN;
  return {
    sendText: (text) => {
      if (open()) ws.send(text);
    },
    sendBinary: (data) => {
      if (open()) ws.send(data, BINARY);
    },
    close: (code, reason) => {
      if (open()) ws.close(code, reason);
    },
    ping: () => {
      if (open()) ws.ping();
    },
    bufferedAmount: () => ws.bufferedAmount,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    streamPipeline?: PipelineRef;
  }
}

export const fastifyTransport = fp(
  async (app: FastifyInstance, opts: { registry: SessionRegistry }) => {
    const { registry } = opts;
    const { deps } = registry;
    await app.register(websocket, {
      // The session applies MAX_FRAME_BYTES (1009) itself, the same way on both transports.
      // No permessage-deflate: PCM hardly compresses, and it would cost a zlib pass per message.
      options: { maxPayload: transportMaxPayload(app.config.maxFrameBytes), perMessageDeflate: false },
      // The plugin's default logs every socket error at error level and then destroys the socket. A
      // protocol error from the client (WS_ERR_*: invalid UTF-8, over maxPayload) is the client's fault
      // and `ws` has already closed with the right code (1007, 1009): log it at debug, let the close
      // handshake finish. Anything else failed in our handler: warn, close 1011.
      errorHandler: (err, socket, request) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
          request.log.debug({ err }, 'websocket protocol error from the client');
          return;
        }
        request.log.warn({ err }, 'websocket handler failed');
        if (socket.readyState === socket.OPEN) socket.close(1011, 'internal error');
      },
      // SPEC §4.8: on close, sessions of both transports are flushed, sent their stats and closed with
      // 1001 — instead of the plugin's default of closing every socket at once.
      preClose: async () => {
        await registry.drain(app.config.shutdownGraceMs);
      },
    });
    app.get<{ Params: { id: string } }>(
      '/v1/pipelines/:id/stream',
      {
        websocket: true,
        schema: {
          tags: ['sessions'],
          summary: 'Stream audio through a pipeline (WebSocket upgrade; protocol in SPEC §4)',
        },
        // SPEC §4.1: every refusal happens before the upgrade.
        preValidation: async (request, reply) => {
          const admission = registry.admit({ url: request.url, headers: request.headers, ip: request.ip });
          if (!admission.ok) {
            if (admission.retryAfter !== undefined) reply.header('retry-after', String(admission.retryAfter));
            return sendProblem(reply, admission.status, admission.code, admission.message);
          }
          request.streamPipeline = admission.pipeline;
        },
      },
      (socket, request) => {
        guarded(deps, 'open', undefined, () => {
          const pipeline = request.streamPipeline;
          if (pipeline === undefined) return socket.close(1011, 'no pipeline');
          const session = new StreamSession(adapt(socket), deps, pipeline, 'ws');
          registry.add(session, request.ip);
          // Attached synchronously: @fastify/websocket drops messages that arrive before a listener.
          socket.on('message', (data: Buffer, isBinary: boolean) =>
            guarded(deps, 'message', session, () => session.onMessage(data, isBinary)),
          );
          socket.on('pong', () => guarded(deps, 'pong', session, () => session.onPong()));
          socket.on('close', () => guarded(deps, 'close', undefined, () => session.onClose()));
        });
      },
    );
  },
  { name: 'remotemedia-realtime-fastify', dependencies: ['remotemedia-problems'] },
);
