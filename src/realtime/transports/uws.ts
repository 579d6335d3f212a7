/**
 * The realtime protocol on `RT_PORT`, through uWebSockets.js (SPEC §1, §4): same paths, same
 * protocol, same sessions as the main port, with less overhead per message.
 */

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import { problemOf } from '../../plugins/problems.js';
import type { Admission } from '../admission.js';
import { transportMaxPayload } from '../protocol.js';
import type { SessionRegistry } from '../registry.js';
import { type PipelineRef, type Socket, StreamSession } from '../session.js';
import { guarded } from './guard.js';

type Uws = typeof import('uWebSockets.js');
const require = createRequire(import.meta.url);
const uws: Uws = require('uWebSockets.js');

/**
 * True when the native uWebSockets.js addon loaded. The package falls back to a slow JavaScript
 * implementation when it has no binary for this Node.js ABI; native functions print as `[native code]`.
 */
export const uwsIsNative = /\[native code\]/.test(String(uws.App));

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: no SO_REUSEPORT, so a port already in use fails the listen. */
const EXCLUSIVE_PORT = 1;

/** `listen(host, port, options, cb)`: the addon has it; the package's typings list only the other forms. */
type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  cb: (token: us_listen_socket | false) => void,
) => TemplatedApp;

interface UserData {
  pipeline: PipelineRef;
  ip: string;
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
    ping: () => {
      if (!data.closed) ws.ping();
    },
    bufferedAmount: () => (data.closed ? 0 : ws.getBufferedAmount()),
    // Outside uWS's own callbacks every send is a write(2) of its own; corked, the answers of one
    // engine batch go out in one.
    cork: (fn) => {
      if (data.closed) fn();
      else ws.cork(fn);
    },
  };
}

/** The same problem+json answer the main port gives for a refused upgrade. */
function refuse(res: HttpResponse, url: string, refusal: Extract<Admission, { ok: false }>): void {
  const body = JSON.stringify(problemOf(refusal.status, refusal.code, refusal.message, url));
  res.cork(() => {
    res.writeStatus(`${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`);
    res.writeHeader('content-type', 'application/problem+json; charset=utf-8');
    if (refusal.retryAfter !== undefined) res.writeHeader('retry-after', String(refusal.retryAfter));
    res.end(body);
  });
}

/** The client's address as text (uWS gives 4 or 16 raw bytes); admission canonicalizes it. */
function remoteIp(res: HttpResponse): string {
  const bytes = new Uint8Array(res.getRemoteAddress());
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2)
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

export interface UwsListener {
  port: number;
  close(): void;
}

/**
 * Starts the uWebSockets.js listener. Resolves once it listens (port 0 picks a free port); rejects when
 * the port is taken — by anyone, this process included: the port is bound exclusively.
 */
export function startUwsListener(
  registry: SessionRegistry,
  host: string,
  port: number,
): Promise<UwsListener> {
  const { deps } = registry;
  const app: TemplatedApp = uws.App().ws<UserData>('/v1/pipelines/:id/stream', {
    maxPayloadLength: transportMaxPayload(deps.config.maxFrameBytes),
    // Slow readers are detected and closed by the watchdog (1008), not dropped here.
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    // Idle clients and heartbeats are the watchdog's too, the same for both transports.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      // The request object is only valid during this callback: read everything now.
      const query = req.getQuery();
      const url = req.getUrl() + (query ? `?${query}` : '');
      let answered = false;
      guarded(deps, 'upgrade', undefined, () => {
        const headers = { authorization: req.getHeader('authorization'), origin: req.getHeader('origin') };
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const ip = remoteIp(res);
        const admission = registry.admit({ url, headers, ip });
        answered = true;
        if (!admission.ok) return refuse(res, url, admission);
        res.upgrade<UserData>(
          { pipeline: admission.pipeline, ip, closed: false },
          key,
          protocol,
          extensions,
          context,
        );
      });
      if (!answered) {
        refuse(res, url, {
          ok: false,
          status: 500,
          code: 'RM_ERR_INTERNAL',
          message: 'internal server error',
        });
      }
    },
    open: (ws) => {
      guarded(deps, 'open', undefined, () => {
        const data = ws.getUserData();
        data.session = new StreamSession(adapt(ws), deps, data.pipeline, 'uws');
        registry.add(data.session, data.ip);
      });
    },
    message: (ws, message, isBinary) => {
      const session = ws.getUserData().session;
      if (session === undefined) return;
      // `message` is valid only during this callback: the session decodes text and the engine copies
      // binary frames inside it.
      guarded(deps, 'message', session, () => session.onMessage(new Uint8Array(message), isBinary));
    },
    pong: (ws) => {
      const session = ws.getUserData().session;
      if (session !== undefined) guarded(deps, 'pong', session, () => session.onPong());
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.closed = true;
      guarded(deps, 'close', undefined, () => data.session?.onClose());
    },
  });
  return new Promise((resolve, reject) => {
    const listen = app.listen as unknown as ListenWithOptions;
    listen.call(app, host, port, EXCLUSIVE_PORT, (token) => {
      if (!token) {
        reject(
          Object.assign(new Error(`listen EADDRINUSE: address already in use ${host}:${port} (RT_PORT)`), {
            code: 'EADDRINUSE',
          }),
        );
        return;
      }
      resolve({ port: uws.us_socket_local_port(token), close: () => uws.us_listen_socket_close(token) });
    });
  });
}
