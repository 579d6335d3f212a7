import type { FastifyInstance } from 'fastify';
import { overloaded } from '../../src/plugins/protection.js';

/** How long each stall of the event loop lasts, and how often one starts. */
const STALL_MS = 100;
const EVERY_MS = 5;
/** How long to wait for the sampler (every 250 ms) to report the lag before the test fails. */
const GIVE_UP_MS = 10_000;

/**
 * Keeps the event loop of this process lagging (a busy stall of 100 ms every few ms) until the returned
 * function is called, and resolves once the server's delay sampler (MAX_EVENT_LOOP_DELAY_MS) says it is
 * overloaded.
 *
 * The lag lasts as long as the test needs it: every sample of the delay monitor (a mean over 250 ms) sees
 * stalls, so the server stays under pressure while requests and upgrades go through between the stalls. A
 * single stall would not do: its pressure lasts one sample, and on a busy machine the request being tested
 * can arrive after the next, calm, sample has cleared it.
 */
export async function lagEventLoop(app: FastifyInstance): Promise<() => void> {
  const timer = setInterval(() => {
    const until = performance.now() + STALL_MS;
    while (performance.now() < until) {
      // stalled
    }
  }, EVERY_MS);
  const stop = () => clearInterval(timer);
  const giveUp = performance.now() + GIVE_UP_MS;
  while (!overloaded(app)) {
    if (performance.now() > giveUp) {
      stop();
      throw new Error(`the server did not report pressure within ${GIVE_UP_MS} ms of lag`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return stop;
}
