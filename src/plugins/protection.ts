/**
 * Protection of the HTTP plane: the Origin allowlist (403), a per-IP rate limit (429) and load shedding
 * on event-loop lag (503 + Retry-After). Health probes are never limited or shed, and `/metrics` is not
 * rate limited, so operators can see an overloaded server.
 */
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { RemoteMediaError } from '../errors.js';
import { originAllowed } from '../origins.js';
import { sendProblem } from './problems.js';
import { GUARD_RANK, guardEveryRoute } from './route-guards.js';

/** Probe routes, by the route Fastify matched (never a string test of the raw URL: docs/limits.md). */
const probes = new Set(['/healthz', '/readyz']);
/** How often the event-loop delay is sampled. */
const PRESSURE_SAMPLE_MS = 250;
/** Seconds a shed client is asked to wait. */
export const PRESSURE_RETRY_AFTER_S = 5;

/**
 * Whether the server sheds new work: the event-loop delay of the last sample is over MAX_EVENT_LOOP_DELAY_MS.
 * @fastify/under-pressure reports a sample in which its histogram recorded nothing as an infinite delay, so a
 * single stall just longer than one sample (250 ms) would shed for a whole sample whatever the limit. That
 * sample measured nothing: the next one holds the stall.
 */
export function overloaded(app: FastifyInstance): boolean {
  if (!app.hasDecorator('isUnderPressure') || !app.isUnderPressure()) return false;
  return Number.isFinite(app.memoryUsage().eventLoopDelay);
}

export const protectionPlugin = fp(
  async (app: FastifyInstance) => {
    const { allowedOrigins, rateLimitPerMin, maxEventLoopDelayMs } = app.config;
    if (allowedOrigins.length > 0) {
      // Every route, WebSocket upgrades included (their admission checks again, for the uWS transport).
      guardEveryRoute(app, GUARD_RANK.origin, async (request, reply) => {
        if (originAllowed(allowedOrigins, request.headers)) return;
        return sendProblem(reply, 403, 'RM_ERR_ORIGIN', `origin ${request.headers.origin} is not allowed`);
      });
    }
    if (maxEventLoopDelayMs > 0) {
      await app.register(underPressure, {
        maxEventLoopDelay: maxEventLoopDelayMs,
        sampleInterval: PRESSURE_SAMPLE_MS,
        retryAfter: PRESSURE_RETRY_AFTER_S,
        // Liveness must answer under load (a restart would not help); everything else is shed.
        pressureHandler: async (request, reply, type, value) => {
          // Probes must answer; WebSocket upgrades are shed by their admission, the same on both listeners.
          if (probes.has(request.routeOptions.url ?? '') || request.routeOptions.config.admission === true)
            return;
          if (!overloaded(app)) return;
          reply.header('retry-after', String(PRESSURE_RETRY_AFTER_S));
          throw new RemoteMediaError('RM_ERR_OVERLOADED', `server is overloaded (${type} ${value})`);
        },
      });
    }
    if (rateLimitPerMin > 0) {
      await app.register(rateLimit, {
        global: true,
        max: rateLimitPerMin,
        timeWindow: 60_000,
        errorResponseBuilder: (_request, context) =>
          new RemoteMediaError(
            'RM_ERR_RATE_LIMITED',
            `more than ${context.max} requests per minute; retry in ${context.after}`,
          ),
      });
    }
  },
  { name: 'remotemedia-protection', dependencies: ['remotemedia-problems'] },
);
