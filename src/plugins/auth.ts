/**
 * Bearer-key authentication (docs/rest.md): with API_KEYS set, every route but health needs
 * `Authorization: Bearer <key>`; WebSocket upgrades may pass `?token=` instead.
 *
 * docs/limits.md: the decision is made on the route Fastify matched (`request.routeOptions`), never on a
 * string test of the raw URL, so a URL that merely looks like an open or streaming path
 * (`/v1/pipelines?x=/stream`, `/v1/sessions/x%2Fstream`) is authenticated like any other request.
 * No route is exempt but the open ones: WebSocket routes are checked here too (accepting `?token=`),
 * and again by the realtime admission, which the uWebSockets.js transport (no Fastify hooks) relies on.
 * A URL that matches no route gets the 404 handler, which serves nothing.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './problems.js';
import { GUARD_RANK, guardEveryRoute } from './route-guards.js';

/** Request headers as both transports hand them over. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** Decides whether a request may proceed: its headers, and its URL (for `?token=`; pass '' to refuse it). */
export type Authorizer = (headers: RequestHeaders, url: string) => boolean;

/**
 * Route patterns (as registered, so a crafted path cannot borrow them) that need no key: the probes,
 * and the browser client's static files (the page asks for a key and sends it with its API calls).
 */
const openRoutes = new Set(['/healthz', '/readyz', '/', '/ui/*']);

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A WebSocket route (set for every `websocket: true` route when it is registered): it may carry
     * its key as `?token=` (browsers cannot set headers on a WebSocket handshake).
     */
    realtime?: boolean;
  }
  interface FastifyInstance {
    authorize: Authorizer;
  }
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 7235 §2.1 / RFC 6750 §2.1: the auth scheme is case-insensitive, then one or more spaces. */
const bearer = /^bearer +(\S+) *$/i;

/** The `?token=` of a URL, or undefined. Never throws (a malformed escape is no token). */
function tokenOf(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined;
}

/**
 * Checks a request's credentials against the configured keys (no keys: everything passes): the
 * `Authorization: Bearer` header, else the `?token=` query parameter of `url`. The realtime admission
 * of both transports calls this.
 */
export function makeAuthorizer(keys: readonly string[]): Authorizer {
  return (headers, url) => {
    if (keys.length === 0) return true;
    const header = headers.authorization;
    const value = Array.isArray(header) ? header[0] : header;
    const presented = (value === undefined ? undefined : bearer.exec(value)?.[1]) ?? tokenOf(url);
    return presented !== undefined && presented !== '' && keys.some((k) => sameKey(k, presented));
  };
}

export const authPlugin = fp(
  async (app: FastifyInstance) => {
    const authorize = makeAuthorizer(app.config.apiKeys);
    app.decorate('authorize', authorize);
    // Mark WebSocket routes when they are registered (every later route passes through here).
    app.addHook('onRoute', (route) => {
      if ((route as { websocket?: boolean }).websocket === true) {
        route.config = { ...(route.config ?? {}), realtime: true };
      }
    });
    if (app.config.apiKeys.length === 0) return;
    guardEveryRoute(
      app,
      GUARD_RANK.auth,
      async (request, reply) => {
        const url = request.routeOptions.config.realtime === true ? request.url : '';
        if (authorize(request.headers, url)) return;
        reply.header('www-authenticate', 'Bearer');
        return sendProblem(reply, 401, 'RM_ERR_UNAUTHORIZED', 'missing or invalid API key');
      },
      (route) => !openRoutes.has(route.url),
    );
  },
  { name: 'remotemedia-auth', dependencies: ['remotemedia-problems'] },
);
