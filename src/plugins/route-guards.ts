/**
 * Guards that run on the route Fastify matched (docs/limits.md: "authentication is decided on the route that
 * will actually run, never on a string test of the raw URL"). A guard is added to every route as it is
 * registered, as a route-level `onRequest` hook, so it sees exactly the route that will run; unknown
 * URLs run no route and get the 404 handler.
 *
 * Route-level hooks run after every instance-level one; that matters for WebSocket upgrades, whose
 * raw socket `@fastify/websocket` only closes after a refusal once its own `onRequest` hook has run.
 * Guards run before the route's own hooks, in the order of their `rank` (the Origin check, then auth),
 * the same order as the realtime admission of both transports.
 */
import type { FastifyInstance, onRequestHookHandler, RouteOptions } from 'fastify';

const rankOf = Symbol('guard rank');
/** Rank of a route's own hooks: after every guard. */
const ROUTE_OWN = 1000;

type Ranked = onRequestHookHandler & { [rankOf]?: number };

function hooksOf(route: RouteOptions): onRequestHookHandler[] {
  const own = route.onRequest;
  if (own === undefined) return [];
  return (Array.isArray(own) ? own : [own]) as onRequestHookHandler[];
}

/**
 * Runs `hook` on the `onRequest` of every route registered from now on for which `applies(route)` holds.
 * `rank` orders the guards among themselves (lower first).
 */
export function guardEveryRoute(
  app: FastifyInstance,
  rank: number,
  hook: onRequestHookHandler,
  applies: (route: RouteOptions) => boolean = () => true,
): void {
  const ranked: Ranked = Object.assign(hook, { [rankOf]: rank });
  app.addHook('onRoute', (route) => {
    const hooks = hooksOf(route);
    // Fastify derives a HEAD route from each GET route with the same options: add the guard once.
    if (!applies(route) || hooks.includes(ranked)) return;
    route.onRequest = [...hooks, ranked].sort(
      (a, b) => ((a as Ranked)[rankOf] ?? ROUTE_OWN) - ((b as Ranked)[rankOf] ?? ROUTE_OWN),
    );
  });
}

/** Ranks of the guards, lowest first. */
export const GUARD_RANK = { origin: 10, auth: 20 } as const;
