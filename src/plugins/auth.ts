/**
 * Bearer-key authentication (SPEC §3): with API_KEYS set, every route but health needs
 * `Authorization: Bearer <key>`; WebSocket upgrades may pass `?token=` instead.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './problems.js';

const open = new Set(['/healthz', '/readyz']);
/**
 * Routes (as registered, so a crafted path cannot borrow them) that serve the browser client's static
 * files: the page itself asks for a key and sends it with its API calls.
 */
const openRoutes = new Set(['/', '/ui/*']);
/**
 * Realtime upgrade routes: the realtime admission decides them (it also accepts `?token=`, which is all a
 * telephony provider can send: Twilio, Vonage, jambonz and Asterisk dial a URL without custom headers).
 */
const upgradeRoutes = new Set([
  ...['stream', 'twilio', 'vonage', 'jambonz', 'asterisk'].map((e) => `/v1/pipelines/:id/${e}`),
  '/v1/sessions/:id/listen',
]);

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Checks a request's credentials against the configured keys (no keys: everything passes). */
export function makeAuthorizer(keys: readonly string[]) {
  return (headers: Record<string, string | string[] | undefined>, url: string): boolean => {
    if (keys.length === 0) return true;
    const header = headers.authorization;
    const value = Array.isArray(header) ? header[0] : header;
    let presented = value?.startsWith('Bearer ') ? value.slice(7).trim() : undefined;
    if (presented === undefined || presented === '') {
      const q = url.indexOf('?');
      presented = q === -1 ? undefined : (new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined);
    }
    return presented !== undefined && keys.some((k) => sameKey(k, presented));
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    authorize: ReturnType<typeof makeAuthorizer>;
  }
}

export const authPlugin = fp(
  async (app: FastifyInstance) => {
    const authorize = makeAuthorizer(app.config.apiKeys);
    app.decorate('authorize', authorize);
    if (app.config.apiKeys.length === 0) return;
    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?')[0] ?? '';
      // WebSocket upgrades are checked by the realtime admission, which also accepts ?token=.
      const route = request.routeOptions.url ?? '';
      if (open.has(path) || openRoutes.has(route) || upgradeRoutes.has(route)) return;
      if (!authorize(request.headers, '')) {
        reply.header('www-authenticate', 'Bearer');
        return sendProblem(reply, 401, 'RM_ERR_UNAUTHORIZED', 'missing or invalid API key');
      }
    });
  },
  { name: 'remotemedia-auth', dependencies: ['remotemedia-problems'] },
);
