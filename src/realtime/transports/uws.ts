/**
 * The realtime protocol on `RT_PORT`, through uWebSockets.js (SPEC §1, §4): same paths, same
 * protocol, same sessions as the main port, with less overhead per message.
 */

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import { createRequire } from 'node:module';
import type { SessionRegistry } from '../registry.js';
import { type PipelineRef, type Socket, StreamSession } from '../session.js';

type Uws = typeof import('uWebSockets.js');
const require = createRequire(import.meta.url);
const uws: Uws = require('uWebSockets.js');

/**
 * True when the native uWebSockets.js addon loaded. The package falls back to a slow JavaScript
 * implementation when it has no binary for this Node.js ABI; native functions print as `[native code]`.
 */
export const uwsIsNative = /\[native code\]/.test(String(uws.App));

interface UserData {
  pipeline: PipelineRef;
  session?: StreamSession;
  closed: boolean;
}

function adapt(ws: WebSocket<UserData>): Socket {
  const data = ws.getUserData();
  // uWS throws on any call to a closed socket, so every call checks first.
  return {
    sendText: (text) => {
      if (!data.closed) ws.send(text, false);
    },
    sendBinary: (bytes) => {
      if (!data.closed) ws.send(bytes, true);
    },
    close: (code, reason) => {
      if (!data.closed) ws.end(code, reason);
    },
    bufferedAmount: () => (data.closed ? 0 : ws.getBufferedAmount()),
  };
}

const statusText: Record<number, string> = {
  401: 'Unauthorized',
  500: 'Internal Server Error',
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/** Answers a refused upgrade with problem+json (RFC 9457), as the main port does. */
function refuse(
  res: HttpResponse,
  refusal: { status: number; code: string; message: string; retryAfter?: number },
): void {
  const title = statusText[refusal.status] ?? 'Error';
  const body = JSON.stringify({
    type: `https://remotemedia.dev/problems/${refusal.code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status: refusal.status,
    code: refusal.code,
    detail: refusal.message,
  });
  res.cork(() => {
    res.writeStatus(`${refusal.status} ${title}`);
    res.writeHeader('content-type', 'application/problem+json');
    if (refusal.retryAfter !== undefined) res.writeHeader('retry-after', String(refusal.retryAfter));
    res.end(body);
  });
}

export interface UwsListener {
  port: number;
  close(): void;
}

/** Starts the uWebSockets.js listener. Resolves once it listens (port 0 picks a free port). */
export function startUwsListener(
  registry: SessionRegistry,
  host: string,
  port: number,
): Promise<UwsListener> {
  const maxFrameBytes = registry.deps.config.maxFrameBytes;
  const app: TemplatedApp = uws.App().ws<UserData>('/v1/pipelines/:id/stream', {
    // uWS drops a connection over maxPayloadLength without a close frame (1006), so the limit here is a
    // hard cap well above MAX_FRAME_BYTES; the session closes messages over MAX_FRAME_BYTES with 1009.
    maxPayloadLength: Math.max(16 * 1024 * 1024, 4 * maxFrameBytes),
    // Slow readers are detected and closed by the registry (1008), not dropped here.
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      // The request object is only valid during this callback: read everything now.
      const query = req.getQuery();
      const url = req.getUrl() + (query ? `?${query}` : '');
      const headers = { authorization: req.getHeader('authorization'), origin: req.getHeader('origin') };
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      // The answer comes after the store lookup: uWS needs onAborted for a response finished later,
      // and a response to an aborted request must not be touched.
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      registry.admit({ url, headers, ip }).then(
        (admission) => {
          if (aborted) return;
          if (!admission.ok) {
            refuse(res, admission);
            return;
          }
          res.cork(() => {
            res.upgrade<UserData>(
              { pipeline: admission.pipeline, closed: false },
              key,
              protocol,
              extensions,
              context,
            );
          });
        },
        () => {
          if (!aborted) refuse(res, { status: 500, code: 'RM_ERR_STORE', message: 'admission failed' });
        },
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      data.session = new StreamSession(adapt(ws), registry.deps, data.pipeline, 'uws');
      registry.add(data.session);
    },
    message: (ws, message, isBinary) => {
      const session = ws.getUserData().session;
      if (session === undefined) return;
      // `message` is valid only during this callback; the engine copies binary frames inside push().
      if (isBinary) session.onBinary(new Uint8Array(message));
      else session.onText(Buffer.from(message).toString('utf8'));
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.closed = true;
      data.session?.onClose();
    },
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (token: us_listen_socket | false) => {
      if (!token) {
        reject(new Error(`uWebSockets.js could not listen on ${host}:${port}`));
        return;
      }
      resolve({ port: uws.us_socket_local_port(token), close: () => uws.us_listen_socket_close(token) });
    });
  });
}
