/**
 * The adversarial suite (docs/limits.md): random message sequences on both transports against a real server.
 * Every case ends in valid answers or a catalogued close code, the process stays up, a real-time session
 * streaming alongside is not disturbed, and memory stays bounded. `loadtest/soak.ts` runs the same
 * traffic for an hour.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCase, sequenceArb, type Transport } from '../../loadtest/traffic.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const MAX_FRAME_BYTES = 4096;
/** Messages the suite sends in all (issue 11: at least 10^5 in CI time). */
const MESSAGES = 100_000;
/** Sessions run at once, each with its own random sequence. */
const PARALLEL = 8;
const MiB = 1024 * 1024;
const SEED = 20261129;

let server: Running;
let id: string;

beforeAll(async () => {
  server = await startTestServer({
    MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
    MAX_SESSIONS_PER_IP: '1000',
    // Upgrades are not shed when this shared machine lags: shedding is tested elsewhere.
    MAX_EVENT_LOOP_DELAY_MS: '0',
    // The bystander must not lose frames because this machine is busy; drops are not what is tested.
    SESSION_QUEUE_MS: '5000',
    // Every dropped socket here is meant to end its session at once, so that leaks show (sessions and
    // RSS); resume keeps such sessions for RESUME_GRACE_MS and has its own tests (resume.test.ts).
    RESUME_GRACE_MS: '0',
  });
  id = await storePipeline(server.app, {
    name: 'adversarial',
    nodes: [
      { id: 'g', type: 'gain', params: { db: -6 } },
      { id: 'level', type: 'level', params: {} },
    ],
  });
});
afterAll(() => server.close());

/** A session that streams 20 ms frames in real time throughout; it must get every answer, in order. */
async function bystander(url: string) {
  const c = await TestClient.connect(url);
  c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } });
  await c.next('ready');
  let sent = 0;
  const timer = setInterval(() => {
    c.sendRaw(Buffer.alloc(640, sent % 7), true);
    sent++;
  }, 20);
  return async () => {
    clearInterval(timer);
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    expect(c.texts().filter((t) => t.type === 'error')).toEqual([]);
    expect(c.texts().at(-1)).toMatchObject({
      type: 'stats',
      frames_in: sent,
      frames_out: sent,
      frames_dropped: 0,
    });
    // One answer per frame, and the flushed tail of `stop`.
    expect(c.binaries()).toHaveLength(sent + 1);
  };
}

describe('random message sequences on both transports', () => {
  it(`end in valid answers or catalogued close codes (${MESSAGES} messages), undisturbing others`, async () => {
    const url = (t: Transport) => `${server.base[t]}/v1/pipelines/${id}/stream`;
    const done = await bystander(url('uws'));
    const transports = fc.array(fc.constantFrom<Transport>('ws', 'uws'), {
      minLength: PARALLEL,
      maxLength: PARALLEL,
    });
    const batch = fc.tuple(
      transports,
      fc.array(sequenceArb(MAX_FRAME_BYTES), { minLength: PARALLEL, maxLength: PARALLEL }),
    );
    let messages = 0;
    let cases = 0;
    const rss: number[] = [];
    const closes = new Map<string, number>();
    // Rounds of fixed seeds (reproducible) until MESSAGES messages were sent.
    for (let round = 0; messages < MESSAGES; round++) {
      const result = await fc.check(
        fc.asyncProperty(batch, async ([ts, sequences]) => {
          const outcomes = await Promise.all(
            sequences.map((steps, i) => runCase(url(ts[i] ?? 'ws'), ts[i] ?? 'ws', steps, MAX_FRAME_BYTES)),
          );
          for (const o of outcomes) {
            messages += o.sent;
            cases++;
            const key = `${o.transport}:${o.close}`;
            closes.set(key, (closes.get(key) ?? 0) + 1);
            if (o.problem !== undefined) throw new Error(`${o.transport}: ${o.problem}`);
            if (o.refused !== undefined) throw new Error(`${o.transport}: upgrade refused with ${o.refused}`);
          }
          rss.push(process.memoryUsage().rss);
        }),
        { numRuns: 25, seed: SEED + round, endOnFailure: true },
      );
      // The counterexample (up to 8 × 200 messages) is too long to print; the seed and path replay it.
      if (result.failed) {
        throw new Error(
          `seed ${SEED + round}, path ${result.counterexamplePath}: ${String((result.errorInstance as Error)?.message)}`,
        );
      }
    }
    await done();
    expect(messages).toBeGreaterThanOrEqual(MESSAGES);
    // The server still serves: a fresh session on each transport starts and stops cleanly.
    for (const t of ['ws', 'uws'] as const) {
      const c = await TestClient.connect(url(t));
      c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } });
      await c.next('ready');
      c.send({ type: 'stop' });
      expect(await c.closed).toBe(1000);
    }
    expect(server.app.realtime.size).toBe(0);
    // Memory is bounded: after the first quarter (warm-up), RSS grows by less than 96 MiB in all.
    const warm = rss[Math.floor(rss.length / 4)] ?? 0;
    expect(Math.max(...rss) - warm).toBeLessThan(96 * MiB);
    console.info(
      `adversarial: ${messages} messages in ${cases} sessions; closes ${JSON.stringify(Object.fromEntries(closes))}; RSS ${rss.map((b) => Math.round(b / MiB)).join(' ')} MiB`,
    );
  }, 600_000);
});
