/**
 * The realtime protocol on the main port, through `@fastify/websocket` (docs/configuration.md, docs/protocol.md).
 */

import { Duplex } from 'node:stream';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { WebSocket } from 'ws';
import { sendProblem } from '../../plugins/problems.js';
import type { Endpoint } from '../admission.js';
import { transportMaxPayload } from '../protocol.js';
import { ProviderCall } from '../providers/call.js';
import { providerNames } from '../providers/wire.js';
import type { SessionRegistry } from '../registry.js';
import { type PipelineRef, type Socket, StreamSession } from '../session.js';
import { guarded } from './guard.js';

/**
 * One binary message, server to client, as one buffer: the frame header of RFC 6455 §5.2 (FIN, opcode
 * 2, no mask) and a copy of the payload (`data` is only lent: session.ts `Socket`).
 */
export function binaryFrame(data: Uint8Array): Buffer {
  const n = data.byteLength;
  const head = n < 126 ? 2 : n < 0x1_0000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x82;
  if (head === 2) frame[1] = n;
  else if (head === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.set(data, head);
  return frame;
}

/** The socket under a `ws` WebSocket (ws 8 keeps it in `_socket`); checked once per connection. */
function rawSocketOf(ws: WebSocket): Duplex {
  const raw = (ws as unknown as { _socket?: unknown })._socket;
  if (!(raw instanceof Duplex)) throw new Error('ws no longer exposes its socket as _socket');
  return raw;
}

function adapt(ws: WebSocket): Socket {
  const open = () => ws.readyState === ws.OPEN;
  // Binary answers go to the socket as one write each. ws.send would build an options object per
  // message and write the header and the payload as two chunks (cork, two writes, a writev); with no
  // compression and no fragmented or Blob sends its sender never queues, so frames written here and
  // those ws writes (text, ping, close) reach the socket in the order they are sent.
  const raw = rawSocketOf(ws);
  return {
    sendText: (text) => {
      if (open()) ws.send(text);
    },
    sendBinary: (data) => {
      if (open()) raw.write(binaryFrame(data));
    },
    close: (code, reason) => {
      if (open()) ws.close(code, reason);
    },
    ping: () => {
      if (open()) ws.ping();
    },
    bufferedAmount: () => ws.bufferedAmount,
    // One engine batch's answers to this session go out in one writev.
    cork: (fn) => {
      raw.cork();
      try {
        fn();
      } finally {
        raw.uncork();
      }
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    streamPipeline?: PipelineRef;
  }
  interface FastifyContextConfig {
    /** The route is a WebSocket upgrade decided by admission.ts, which rate-limits and sheds it itself. */
    admission?: boolean;
  }
}

/** Upgrades are admitted (and limited, and shed) by admission.ts alike on both listeners, not by the HTTP plane. */
const admittedRoute = { admission: true, rateLimit: false } as const;

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
      // docs/protocol.md §6: on close, sessions of both transports are flushed, sent their stats and closed with
      // 1001 — instead of the plugin's default of closing every socket at once.
      preClose: async () => {
        await registry.drain(app.config.shutdownGraceMs);
      },
    });
    // docs/protocol.md §1: every refusal happens before the upgrade.
    const admitOn =
      (endpoint: Endpoint) =>
      async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
        const admission = await registry.admit({
          url: request.url,
          headers: request.headers,
          ip: request.ip,
          endpoint,
        });
        if (!admission.ok) {
          if (admission.retryAfter !== undefined) reply.header('retry-after', String(admission.retryAfter));
          return sendProblem(reply, admission.status, admission.code, admission.message);
        }
        request.streamPipeline = admission.pipeline;
        return undefined;
      };
    app.get<{ Params: { id: string } }>(
      '/v1/pipelines/:id/stream',
      {
        websocket: true,
        config: admittedRoute,
        schema: {
          tags: ['sessions'],
          summary: 'Stream audio through a pipeline (WebSocket upgrade; protocol in docs/protocol.md)',
        },
        preValidation: admitOn('stream'),
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
    // docs/telephony/README.md: one endpoint per telephony provider, each an ordinary session behind the provider's protocol.
    // jambonz asks for the subprotocol `audio.jambonz.org` and Asterisk for `media`: ws answers with the
    // first one offered.
    for (const provider of providerNames) {
      app.get<{ Params: { id: string } }>(
        `/v1/pipelines/:id/${provider}`,
        {
          websocket: true,
          config: admittedRoute,
          schema: {
            tags: ['telephony'],
            summary: `Connect a ${provider} call to a pipeline (WebSocket upgrade; protocol in docs/telephony/${provider}.md)`,
          },
          preValidation: admitOn(provider),
        },
        (socket, request) => {
          socket.on('error', (err) => request.log.debug({ err }, 'websocket error'));
          guarded(deps, 'open', undefined, () => {
            const pipeline = request.streamPipeline;
            if (pipeline === undefined) return socket.close(1011, 'no pipeline');
            const call = new ProviderCall(adapt(socket), deps, pipeline, 'ws', provider);
            registry.addCall(call, request.ip);
            const { session } = call;
            socket.on('message', (data: Buffer, isBinary: boolean) =>
              guarded(deps, 'message', session, () => call.onMessage(data, isBinary)),
            );
            socket.on('pong', () => guarded(deps, 'pong', session, () => call.onPong()));
            socket.on('close', () => guarded(deps, 'close', undefined, () => call.onClose()));
          });
        },
      );
    }
    // docs/telephony/README.md: the processed audio and events of a provider session, for sessions without a sink.
    app.get<{ Params: { id: string } }>(
      '/v1/sessions/:id/listen',
      {
        websocket: true,
        schema: {
          tags: ['telephony'],
          summary: "Listen to a telephony session's processed audio and events (WebSocket, server to client)",
        },
        preValidation: async (request, reply) => {
          // The same credentials as every other upgrade: a Bearer header or `?token=`.
          if (!app.authorize(request.headers, request.url)) {
            return sendProblem(reply, 401, 'RM_ERR_UNAUTHORIZED', 'missing or invalid API key');
          }
          if (registry.calls.has(request.params.id)) return undefined;
          return sendProblem(
            reply,
            404,
            'RM_ERR_SESSION_NOT_FOUND',
            `no telephony session ${request.params.id}`,
          );
        },
      },
      (socket, request) => {
        socket.on('error', (err) => request.log.debug({ err }, 'websocket error'));
        guarded(deps, 'open', undefined, () => {
          const call = registry.calls.get(request.params.id);
          const listener = adapt(socket);
          if (call === undefined || !call.addListener(listener)) {
            return socket.close(1008, 'RM_ERR_TOO_MANY_SESSIONS: no more listeners on this session');
          }
          socket.on('close', () => call.removeListener(listener));
        });
      },
    );
  },
  { name: 'remotemedia-realtime-fastify', dependencies: ['remotemedia-problems', 'remotemedia-auth'] },
);
