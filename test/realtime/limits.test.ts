/**
 * Exhaustion limits of the realtime plane (docs/configuration.md, docs/limits.md): no client can hold a session slot
 * forever, nor take every slot from one address, on either transport.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { UpgradeRate } from '../../src/realtime/ratelimit.js';
import { lagEventLoop } from '../support/lag.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const start = { type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } };
const gain = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };
const transports = ['ws', 'uws'] as const;

let server: Running | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(env: Record<string, string>) {
  server = await startTestServer(env);
  const id = await storePipeline(server.app, gain);
  const url = (t: (typeof transports)[number]) => `${server?.base[t]}/v1/pipelines/${id}/stream`;
  return { server, url };
}

/** The HTTP status and problem code of a refused upgrade. */
async function refusal(url: string): Promise<{ status: number; code: string }> {
  const err = (await TestClient.connect(url).then(
    (c) => {
      c.close();
      throw new Error('the upgrade was accepted');
    },
    (e: unknown) => e,
  )) as { status: number; body: string };
  return { status: err.status, code: JSON.parse(err.body).code };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('START_TIMEOUT_MS', () => {
  it('closes sockets that never send start (1008), so they cannot hold every MAX_SESSIONS slot', async () => {
    const { url } = await serve({ MAX_SESSIONS: '4', START_TIMEOUT_MS: '300' });
    const squatters = await Promise.all(
      transports.flatMap((t) => [TestClient.connect(url(t)), TestClient.connect(url(t))]),
    );
    expect(await refusal(url('ws'))).toEqual({ status: 503, code: 'RM_ERR_TOO_MANY_SESSIONS' });
    for (const c of squatters) {
      expect(await c.closed).toBe(1008);
      expect(c.texts()).toEqual([expect.objectContaining({ type: 'error', code: 'RM_ERR_START_TIMEOUT' })]);
    }
    for (const t of transports) {
      const c = await TestClient.connect(url(t));
      c.send(start);
      await c.next('ready');
      c.send({ type: 'stop' });
      expect(await c.closed).toBe(1000);
    }
  });

  it('a session that started in time is not affected', async () => {
    const { url } = await serve({ START_TIMEOUT_MS: '200' });
    for (const t of transports) {
      const c = await TestClient.connect(url(t));
      c.send(start);
      await c.next('ready');
      await sleep(500);
      expect(c.closeCode).toBeUndefined();
      c.close();
    }
  });
});

describe('IDLE_TIMEOUT_MS', () => {
  it.each(transports)(
    'flushes a silent session, sends its stats and closes it 1001 "idle" (%s)',
    async (t) => {
      const { url } = await serve({ IDLE_TIMEOUT_MS: '400' });
      const idle = await TestClient.connect(url(t));
      idle.send(start);
      await idle.next('ready');
      idle.sendRaw(Buffer.alloc(320), true);
      // A session that keeps talking is not idle.
      const busy = await TestClient.connect(url(t));
      busy.send(start);
      await busy.next('ready');
      const talk = setInterval(() => busy.send({ type: 'ping' }), 100);
      expect(await idle.closed).toBe(1001);
      expect(idle.closeReason).toBe('idle');
      expect(idle.texts().at(-1)).toMatchObject({ type: 'stats', frames_in: 1, frames_out: 1 });
      await sleep(300);
      clearInterval(talk);
      expect(busy.closeCode).toBeUndefined();
      busy.close();
    },
  );
});

describe('MAX_SESSIONS_PER_IP', () => {
  it('counts both transports together and refuses more with 429 before the upgrade', async () => {
    const { url } = await serve({ MAX_SESSIONS_PER_IP: '2' });
    const a = await TestClient.connect(url('ws'));
    const b = await TestClient.connect(url('uws'));
    for (const t of transports) {
      expect(await refusal(url(t))).toEqual({ status: 429, code: 'RM_ERR_TOO_MANY_SESSIONS_PER_IP' });
    }
    a.close();
    await a.closed;
    for (let i = 0; i < 50 && server?.app.realtime.size !== 1; i++) await sleep(10);
    const c = await TestClient.connect(url('uws'));
    c.close();
    b.close();
  });
});

describe('parked sessions and the session limits', () => {
  /** A started session whose socket then dies without a close: parked (docs/protocol.md §8). */
  async function parkedSession(url: string): Promise<{ id: string; token: string }> {
    const c = await TestClient.connect(url);
    c.send(start);
    const ready = await c.next('ready');
    c.ws.terminate();
    const id = ready.session_id as string;
    for (let i = 0; i < 200 && server?.app.realtime.get(id)?.parked !== true; i++) await sleep(10);
    expect(server?.app.realtime.get(id)?.parked).toBe(true);
    return { id, token: ready.resume_token as string };
  }

  it.each(transports)(
    'a client at its MAX_SESSIONS_PER_IP can still resume; a new session ends its oldest parked one (%s)',
    async (t) => {
      const { url } = await serve({ MAX_SESSIONS_PER_IP: '2' });
      const first = await parkedSession(url(t));
      const second = await parkedSession(url(t));
      // Both slots are held by parked sessions, yet the client gets in and resumes one of them.
      const back = await TestClient.connect(url(t));
      back.send({ type: 'resume', session_id: second.id, resume_token: second.token, last_answer: -1 });
      expect(await back.next('resumed')).toMatchObject({ next_frame: 0 });
      // A new session takes the slot of the oldest parked session, which is then gone for good.
      const fresh = await TestClient.connect(url(t));
      fresh.send(start);
      await fresh.next('ready');
      expect(server?.app.realtime.get(first.id)).toBeUndefined();
      expect(server?.app.realtime.size).toBe(2);
      // Two connected sessions: the address is at its limit again.
      expect(await refusal(url(t))).toEqual({ status: 429, code: 'RM_ERR_TOO_MANY_SESSIONS_PER_IP' });
      back.close();
      fresh.close();
    },
  );

  it('MAX_SESSIONS: parked sessions make way for clients that are here, oldest first', async () => {
    const { url } = await serve({ MAX_SESSIONS: '2' });
    const first = await parkedSession(url('uws'));
    const second = await parkedSession(url('ws'));
    const fresh = await TestClient.connect(url('ws'));
    fresh.send(start);
    await fresh.next('ready');
    expect(server?.app.realtime.get(first.id)).toBeUndefined();
    expect(server?.app.realtime.get(second.id)?.parked).toBe(true);
    const gone = await TestClient.connect(url('uws'));
    gone.send({ type: 'resume', session_id: first.id, resume_token: first.token, last_answer: -1 });
    expect(await gone.closed).toBe(1008);
    expect(gone.texts()).toEqual([expect.objectContaining({ code: 'RM_ERR_SESSION_GONE' })]);
    fresh.close();
  });
});

describe('RATE_LIMIT_PER_MIN and load shedding on upgrades', () => {
  it('counts the upgrades of one address on both listeners together; REST keeps its own budget', async () => {
    const { server: running, url } = await serve({ RATE_LIMIT_PER_MIN: '4' });
    for (const t of ['ws', 'uws', 'ws', 'uws'] as const) (await TestClient.connect(url(t))).close();
    for (const t of transports) {
      expect(await refusal(url(t))).toEqual({ status: 429, code: 'RM_ERR_RATE_LIMITED' });
    }
    const rest = await fetch(`${running.base.ws.replace('ws:', 'http:')}/v1/nodes`);
    expect(rest.status).toBe(200);
  });

  it('remembers a bounded number of addresses, forgetting the ones with a full bucket first', () => {
    const rate = new UpgradeRate(60, 3);
    expect(rate.take('a', 0)).toBe(true);
    expect(rate.take('b', 0)).toBe(true);
    expect(rate.take('c', 0)).toBe(true);
    // A minute later a, b and c are back to full: a new address makes them forgotten.
    expect(rate.take('d', 60_000)).toBe(true);
    expect(rate.size).toBe(1);
    for (let i = 1; i < 60; i++) rate.take('d', 60_000);
    expect(rate.take('d', 60_000)).toBe(false);
    for (const ip of ['e', 'f', 'g', 'h']) rate.take(ip, 60_000);
    expect(rate.size).toBeLessThanOrEqual(3);
  });

  it('sheds upgrades on both listeners alike while the event loop lags (503 RM_ERR_OVERLOADED)', async () => {
    const { server: running, url } = await serve({ MAX_EVENT_LOOP_DELAY_MS: '20' });
    const stopLag = await lagEventLoop(running.app);
    try {
      const answers = await Promise.all(transports.map((t) => refusal(url(t))));
      expect(answers).toEqual([
        { status: 503, code: 'RM_ERR_OVERLOADED' },
        { status: 503, code: 'RM_ERR_OVERLOADED' },
      ]);
    } finally {
      stopLag();
    }
  });
});

describe('MAX_SESSIONS_PER_IP under a burst', () => {
  it('admits no more than the limit when 40 upgrades race on both transports', async () => {
    const { url } = await serve({ MAX_SESSIONS_PER_IP: '5' });
    const attempts = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => TestClient.connect(url(transports[i % 2] ?? 'ws'))),
    );
    const admitted = attempts.filter((a) => a.status === 'fulfilled');
    expect(admitted).toHaveLength(5);
    expect(server?.app.realtime.size).toBe(5);
    for (const a of attempts) {
      if (a.status === 'rejected') expect(a.reason).toMatchObject({ status: 429 });
      else a.value.close();
    }
  });
});

describe('HEARTBEAT_MS', () => {
  it.each(transports)('closes a peer that does not answer pings; one that does stays (%s)', async (t) => {
    const { url } = await serve({ HEARTBEAT_MS: '100' });
    const deaf = await TestClient.connect(url(t), {}, { autoPong: false });
    const alive = await TestClient.connect(url(t));
    let pings = 0;
    alive.ws.on('ping', () => {
      pings++;
    });
    expect(await deaf.closed).toBe(1001);
    expect(deaf.closeReason).toBe('no pong');
    await sleep(300);
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(alive.closeCode).toBeUndefined();
    alive.close();
  });
});
