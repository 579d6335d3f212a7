/**
 * The realtime protocol on `RT_PORT`, through uWebSockets.js (docs/configuration.md, docs/protocol.md): same paths, same
 * protocol, same sessions as the main port, with less overhead per message.
 */

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import { problemOf } from '../../plugins/problems.js';
import type { Admission, Endpoint } from '../admission.js';
import { transportMaxPayload } from '../protocol.js';
import { ProviderCall } from '../providers/call.js';
import { providerNames } from '../providers/wire.js';
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

/** What a socket's messages drive: a `/stream` session, or a telephony call around one. */
interface Connection {
  /** The session that a failing callback closes (transports/guard.ts). */
  readonly session: StreamSession;
  onMessage(data: Uint8Array, isBinary: boolean): void;
  onPong(): void;
  onClose(): void;
}

interface UserData {
  pipeline: PipelineRef;
  ip: string;
  conn?: Connection;
  closed: boolean;
}

function adapt<T extends { closed: boolean }>(ws: WebSocket<T>): Socket {
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
  const app: TemplatedApp = uws.App();
  const open = (endpoint: Endpoint, socket: Socket, data: UserData): Connection => {
    if (endpoint === 'stream') {
      const session = new StreamSession(socket, deps, data.pipeline, 'uws');
      registry.add(session, data.ip);
      return {
        session,
        onMessage: (d, b) => session.onMessage(d, b),
        onPong: () => session.onPong(),
        onClose: () => session.onClose(),
      };
    }
    const call = new ProviderCall(socket, deps, data.pipeline, 'uws', endpoint);
    registry.addCall(call, data.ip);
    return call;
  };
  // docs/telephony/README.md: the telephony endpoints live on both listeners, with the same admission as /stream.
  for (const endpoint of ['stream', ...providerNames] as const)
    app.ws<UserData>(`/v1/pipelines/:id/${endpoint}`, {
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
        const internal = {
          ok: false,
          status: 500,
          code: 'RM_ERR_INTERNAL',
          message: 'internal server error',
        } as const;
        let admitting: Admission | Promise<Admission> | undefined;
        let upgrade = { key: '', protocol: '', extensions: '', ip: '' };
        guarded(deps, 'upgrade', undefined, () => {
          const headers = {
            authorization: req.getHeader('authorization'),
            origin: req.getHeader('origin'),
            host: req.getHeader('host'),
            'x-forwarded-host': req.getHeader('x-forwarded-host') || undefined,
            'x-twilio-signature': req.getHeader('x-twilio-signature') || undefined,
          };
          upgrade = {
            key: req.getHeader('sec-websocket-key'),
            // RFC 6455 §4.2.2: the server answers with one subprotocol of those offered (jambonz:
            // audio.jambonz.org, Asterisk: media).
            protocol: req.getHeader('sec-websocket-protocol').split(',')[0]?.trim() ?? '',
            extensions: req.getHeader('sec-websocket-extensions'),
            ip: remoteIp(res),
          };
          admitting = registry.admit({ url, headers, ip: upgrade.ip, endpoint });
        });
        /** Answers the upgrade: the WebSocket, or the refusal. */
        const answer = (admission: Admission) => {
          let answered = false;
          guarded(deps, 'upgrade', undefined, () => {
            if (!admission.ok) {
              refuse(res, url, admission);
            } else {
              const { key, protocol, extensions, ip } = upgrade;
              res.upgrade<UserData>(
                { pipeline: admission.pipeline, ip, closed: false },
                key,
                protocol,
                extensions,
                context,
              );
            }
            answered = true;
          });
          if (!answered) refuse(res, url, internal);
        };
        if (admitting === undefined) return refuse(res, url, internal);
        // The pipeline was known in memory: answered inside this callback, corked by uWS itself.
        if (!(admitting instanceof Promise)) return answer(admitting);
        // After the store lookup: uWS needs onAborted for a response finished later, and a response to an
        // aborted request must not be touched. The upgrade is not corked: uWebSockets.js 20.30 can close a
        // socket upgraded asynchronously inside cork() (uNetworking/uWebSockets#1928, fixed upstream by
        // #1929), so uWS warns once per such upgrade; the next upgrade to this pipeline is synchronous.
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        admitting.then(
          (admission) => {
            if (!aborted) answer(admission);
          },
          () => {
            if (!aborted) refuse(res, url, internal);
          },
        );
      },
      open: (ws) => {
        guarded(deps, 'open', undefined, () => {
          const data = ws.getUserData();
          data.conn = open(endpoint, adapt(ws), data);
        });
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (conn === undefined) return;
        // `message` is valid only during this callback: the session decodes text and the engine copies
        // binary frames inside it.
        guarded(deps, 'message', conn.session, () => conn.onMessage(new Uint8Array(message), isBinary));
      },
      pong: (ws) => {
        const conn = ws.getUserData().conn;
        if (conn !== undefined) guarded(deps, 'pong', conn.session, () => conn.onPong());
      },
      close: (ws) => {
        const data = ws.getUserData();
        data.closed = true;
        guarded(deps, 'close', undefined, () => data.conn?.onClose());
      },
    });
  // docs/telephony/README.md: listeners of telephony sessions, as on the main port.
  app.ws<{ id: string; listener?: Socket; closed: boolean }>('/v1/sessions/:id/listen', {
    maxPayloadLength: 1024,
    maxBackpressure: 4 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      const query = req.getQuery();
      const url = req.getUrl() + (query ? `?${query}` : '');
      let answered = false;
      guarded(deps, 'upgrade', undefined, () => {
        const id = decodeURIComponent(req.getParameter(0) ?? '');
        const headers = { authorization: req.getHeader('authorization') };
        const key = req.getHeader('sec-websocket-key');
        const extensions = req.getHeader('sec-websocket-extensions');
        answered = true;
        if (!registry.authorized(headers, url)) {
          return refuse(res, url, {
            ok: false,
            status: 401,
            code: 'RM_ERR_UNAUTHORIZED',
            message: 'missing or invalid API key',
          });
        }
        if (!registry.calls.has(id)) {
          return refuse(res, url, {
            ok: false,
            status: 404,
            code: 'RM_ERR_SESSION_NOT_FOUND',
            message: `no telephony session ${id}`,
          });
        }
        res.upgrade({ id, closed: false }, key, '', extensions, context);
      });
      if (!answered) {
        refuse(res, url, { ok: false, status: 400, code: 'RM_ERR_BAD_REQUEST', message: 'malformed URL' });
      }
    },
    open: (ws) => {
      guarded(deps, 'open', undefined, () => {
        const data = ws.getUserData();
        const listener = adapt(ws);
        data.listener = listener;
        const call = registry.calls.get(data.id);
        if (call === undefined || !call.addListener(listener)) {
          ws.end(1008, 'RM_ERR_TOO_MANY_SESSIONS: no more listeners on this session');
        }
      });
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.closed = true;
      guarded(deps, 'close', undefined, () => {
        if (data.listener) registry.calls.get(data.id)?.removeListener(data.listener);
      });
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
