/**
 * docs/telephony/README.md end to end: provider simulators (test/support/telephony.ts) against the real server on both
 * listeners, with a real sink on loopback.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { median } from '../../loadtest/stats.js';
import { planWithEngine } from '../../src/planner.js';
import { twilioSignature } from '../../src/realtime/providers/twilio-signature.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import {
  encodeFor,
  noisyCaller,
  type Provider,
  ProviderSim,
  pacingSummary,
  providerFormat,
  scheduleOffsets,
  sine,
  TestSink,
  until,
  voiced,
} from '../support/telephony.js';
import { TestClient } from '../support/ws-client.js';

const providers: Provider[] = ['twilio', 'vonage', 'jambonz', 'asterisk'];
/** One-second calls here; the whole calls (RM_CALL_SECONDS, two minutes on request) are telephony-call.test.ts. */
const CALL_SECONDS = 1;

let server: Running;
let sink: TestSink;
let plainId: string;

beforeAll(async () => {
  sink = await TestSink.start((c) => {
    // The sink answers every utterance of the tests below the same way: 16 kHz s16le, then 1 s of tone.
    c.ws.send(
      JSON.stringify({ type: 'playback', format: { encoding: 's16le', sample_rate: 16000, channels: 1 } }),
    );
  });
  server = await startTestServer({ SESSION_QUEUE_MS: '60000', SINK_ALLOWLIST: '127.0.0.1' });
  plainId = await storePipeline(server.app, {
    name: 'plain',
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
  });
});
afterAll(async () => {
  await server.close();
  await sink.close();
});

/** The live session of a call as `GET /v1/sessions` shows it, found by the id the simulator gave the provider. */
async function sessionOf(
  callId: string,
  on: Running = server,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await until(
    () => {
      const res = on.app.realtime.sessions;
      for (const s of res.values()) {
        const call = (s.info().telephony?.call ?? {}) as Record<string, unknown>;
        if (Object.values(call).includes(callId)) found = { id: s.id };
      }
      return found !== undefined;
    },
    5000,
    `session of ${callId}`,
  );
  const res = await on.app.inject({ method: 'GET', url: `/v1/sessions/${found?.id}`, headers });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** `seconds` of a 440 Hz tone in the provider's 20 ms media messages. */
function callAudio(provider: Provider, seconds: number): Buffer[] {
  const { sample_rate } = providerFormat[provider];
  const n = sample_rate / 50;
  const tone = sine(sample_rate * seconds, sample_rate, 440, 0.25);
  const out: Buffer[] = [];
  for (let i = 0; i < tone.length; i += n) out.push(encodeFor(provider, tone.subarray(i, i + n)));
  return out;
}

describe.each(['ws', 'uws'] as const)('over %s', (transport) => {
  describe.each(providers)('%s', (provider) => {
    it(
      'processes every inbound frame once and in order, passes DTMF as digit events, serves listeners',
      async () => {
        const sim = await ProviderSim.connect(server.base[transport], plainId, provider);
        const callId = `call-${provider}-${transport}`;
        sim.start({ id: callId, params: { lang: 'en' } });
        const info = await sessionOf(callId);
        expect(info.telephony).toMatchObject({
          provider,
          sink: { state: 'none' },
          playback: { state: 'idle' },
        });
        // GET /v1/sessions/{id}/listen: the processed audio and events of a session without a sink.
        // Both listeners serve it.
        const listener = await TestClient.connect(`${server.base[transport]}/v1/sessions/${info.id}/listen`);
        await until(() => listener.received.length > 0, 5000, 'listener hello');
        const messages = callAudio(provider, CALL_SECONDS);
        // In real time, as a provider sends it.
        let sent = 0;
        const sender = setInterval(() => {
          const m = messages[sent++];
          if (m !== undefined) sim.sendMedia(m);
        }, 20);
        try {
          await until(
            () => listener.binaries().length >= messages.length,
            CALL_SECONDS * 1000 + 10_000,
            'all answers',
          );
        } finally {
          clearInterval(sender);
        }
        sim.dtmf('5');
        await until(() => listener.texts().some((t) => t.type === 'event'), 5000, 'dtmf event');
        sim.stop();
        await listener.closed;
        const f = providerFormat[provider];
        const planned = planWithEngine(
          { name: 'plain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] },
          {
            inputFormat: { sample_rate: f.sample_rate, channels: 1 },
          },
        );
        if (!planned.ok) throw new Error('plan failed');
        const batch = await server.app.engine.processBatch(
          planned.plan,
          { encoding: f.encoding, sample_rate: f.sample_rate, channels: 1 },
          Buffer.concat(messages),
          's16le',
        );
        // One answer per inbound frame (Twilio's outbound-track media ignored), in order, equal to batch.
        const answers = listener.binaries().slice(0, messages.length);
        expect(Buffer.concat(answers).equals(batch.audio)).toBe(true);
        const hello = listener.texts()[0];
        expect(hello).toMatchObject({ type: 'session', session_id: info.id, provider });
        const digit = listener.texts().find((t) => t.type === 'event');
        expect(digit).toMatchObject({ node: provider, name: 'digit', data: { digit: '5' } });
        sim.close();
        await sim.closed;
      },
      CALL_SECONDS * 2000 + 20_000,
    );
  });
});

/**
 * A sink that answers the `session` message with `seconds` of a 16 kHz tone and a mark after it, streamed
 * as a bot would: one-second messages, two ahead, then one a second.
 */
function answeringSink(seconds: number, mark: string) {
  return TestSink.start((c) => {
    c.next('session').then(
      () => {
        c.ws.send(
          JSON.stringify({
            type: 'playback',
            format: { encoding: 's16le', sample_rate: 16000, channels: 1 },
          }),
        );
        const second = Buffer.from(sine(16000, 16000, 1000, 0.3).buffer);
        let sent = 0;
        const send = () => {
          if (c.ws.readyState !== WebSocket.OPEN) return clearInterval(timer);
          if (sent < seconds) c.ws.send(second, { binary: true });
          sent++;
          if (sent === seconds) c.ws.send(JSON.stringify({ type: 'mark', name: mark }));
          if (sent >= seconds) clearInterval(timer);
        };
        const timer = setInterval(send, 1000);
        send();
        if (seconds > 1) send();
      },
      () => {},
    );
  });
}

function sinkPipeline(url: string, nodes: object[], bargeIn = false): Promise<string> {
  return storePipeline(server.app, {
    name: 'with-sink',
    nodes,
    sink: { url, playback: { nodes: [], barge_in: bargeIn } },
  });
}

/** Schedule offsets of playback chunks at the provider over all playback tests (logged at the end). */
const pacing: number[] = [];
let pacingRuns = 0;
afterAll(() => {
  if (pacing.length > 0) console.log(`playback pacing: ${pacingSummary(pacing, pacingRuns)}`);
});

/**
 * Paced, not burst: every chunk's offset from its slot t0 + n·20 ms (scheduleOffsets), and what a loaded CI machine
 * still keeps — median |offset| within 2 ms, no chunk more than 2 ms early. (On a quiet machine ≥ 95 % are
 * within ±2 ms; tests do not assert timing that load can break, the figures are logged.)
 */
function expectPaced(times: readonly number[]): void {
  const { offsets, runs } = scheduleOffsets(times);
  expect(median(offsets.map(Math.abs))).toBeLessThanOrEqual(2);
  expect(Math.min(...offsets)).toBeGreaterThanOrEqual(-2);
  pacing.push(...offsets);
  pacingRuns += runs;
}

describe.each(providers)('%s playback through a sink', (provider) => {
  it(
    'sends the sink the call and every processed frame in order, plays its reply paced in 20 ms chunks, reports played_ms exact to the chunk',
    async () => {
      const bot = await answeringSink(CALL_SECONDS, 'reply-1');
      try {
        const id = await sinkPipeline(bot.url, [{ id: 'g', type: 'gain', params: { db: -6 } }]);
        const sim = await ProviderSim.connect(server.base.ws, id, provider);
        const callId = `sink-${provider}`;
        sim.start({ id: callId, params: { lang: 'en' } });
        await until(() => bot.connections.length === 1, 5000, 'sink connection');
        const conn = bot.connections[0];
        if (conn === undefined) throw new Error('no sink connection');
        const session = await conn.next('session');
        expect(session).toMatchObject({
          type: 'session',
          provider,
          output: { encoding: 's16le', channels: 1 },
        });
        expect(JSON.stringify(session.call)).toContain(callId);
        // The caller talks for the whole call, in real time, while the bot's reply plays.
        const messages = callAudio(provider, CALL_SECONDS);
        let sent = 0;
        const sender = setInterval(() => {
          const m = messages[sent];
          if (m !== undefined) sim.sendMedia(m);
          sent++;
        }, 20);
        let played: Record<string, unknown>;
        try {
          played = await conn.next('played', CALL_SECONDS * 1200 + 10_000);
          await until(() => sent >= messages.length, CALL_SECONDS * 1000 + 5000, 'the caller audio');
        } finally {
          clearInterval(sender);
        }
        expect(played.name).toBe('reply-1');
        // Every chunk before the mark was confirmed by the provider: played_ms is the chunks heard × 20 ms.
        expect(played.played_ms).toBe(sim.mediaTimes.length * 20);
        expect(sim.mediaTimes.length).toBeGreaterThanOrEqual(CALL_SECONDS * 50 - 2);
        expect(sim.mediaTimes.length).toBeLessThanOrEqual(CALL_SECONDS * 50 + 1);
        expectPaced(sim.mediaTimes);
        // The server's side of pacing: per call in /v1/sessions, and one lateness per chunk in /metrics.
        const listed = await server.app.inject({ method: 'GET', url: '/v1/sessions' });
        const mine = (
          listed.json() as { items: Array<{ telephony?: { call: unknown; playback: unknown } }> }
        ).items.find((s) => JSON.stringify(s.telephony?.call ?? {}).includes(callId));
        const pacing = mine?.telephony?.playback as Record<string, number>;
        expect(pacing.chunks_sent).toBe(sim.mediaTimes.length);
        expect(pacing.late_chunks).toBeGreaterThanOrEqual(0);
        expect(pacing.late_chunks).toBeLessThanOrEqual(pacing.chunks_sent ?? 0);
        expect(pacing.max_lateness_ms).toBeGreaterThanOrEqual(0);
        const scrape = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
        const count = new RegExp(
          `^remotemedia_telephony_playback_lateness_seconds_count\\{provider="${provider}"\\} (\\d+)$`,
          'm',
        ).exec(scrape);
        // Earlier tests of this provider played chunks too: at least this call's are counted.
        expect(Number(count?.[1])).toBeGreaterThanOrEqual(sim.mediaTimes.length);
        // The sink got every processed frame once, in order: exactly what batch processing gives.
        await until(() => conn.binaries.length >= messages.length, 5000, 'processed frames at the sink');
        const f = providerFormat[provider];
        const planned = planWithEngine(
          { name: 'g', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] },
          { inputFormat: { sample_rate: f.sample_rate, channels: 1 } },
        );
        if (!planned.ok) throw new Error('plan failed');
        const batch = await server.app.engine.processBatch(
          planned.plan,
          { encoding: f.encoding, sample_rate: f.sample_rate, channels: 1 },
          Buffer.concat(messages),
          's16le',
        );
        expect(Buffer.concat(conn.binaries.slice(0, messages.length)).equals(batch.audio)).toBe(true);
        sim.stop();
        await sim.closed;
      } finally {
        await bot.close();
      }
    },
    CALL_SECONDS * 3000 + 20_000,
  );
});

/**
 * A bot for the barge-in calls: a 5 s reply with a mark after it as soon as the call starts; told
 * `interrupted`, it stops and (when the test says) answers with a 200 ms reply and its own mark.
 */
function interruptibleSink() {
  return TestSink.start((c) => {
    c.next('session').then(
      () => {
        c.ws.send(
          JSON.stringify({
            type: 'playback',
            format: { encoding: 's16le', sample_rate: 16000, channels: 1 },
          }),
        );
        c.ws.send(Buffer.from(sine(16000 * 5, 16000, 700, 0.3).buffer), { binary: true });
        c.ws.send(JSON.stringify({ type: 'mark', name: 'long-reply' }));
      },
      () => {},
    );
  });
}

describe.each(providers)('%s: a recorded noisy call through denoise and VAD, with barge-in', (provider) => {
  it('stops playback within one frame of speech_start, reports played_ms exact to the chunk, handles marks after the clear', async () => {
    const bot = await interruptibleSink();
    try {
      // The phone front end of a voice bot: up to 48 kHz, RNNoise-class denoise, then VAD.
      const id = await sinkPipeline(
        bot.url,
        [
          { id: 'up', type: 'resample', params: { sample_rate: 48000, quality: 'high' } },
          { id: 'clean', type: 'denoise' },
          { id: 'vad', type: 'vad', params: { aggressiveness: 2 } },
        ],
        true,
      );
      const sim = await ProviderSim.connect(server.base.ws, id, provider);
      sim.start({ id: `barge-in-${provider}` });
      await until(() => bot.connections.length === 1, 5000, 'sink connection');
      const conn = bot.connections[0];
      if (conn === undefined) throw new Error('no sink connection');
      await conn.next('session');
      // The caller's line is noisy from the start; they speak (the speech recording) after 1.5 s of the reply.
      const { sample_rate } = providerFormat[provider];
      const n = sample_rate / 50;
      const { samples, speechAt } = noisyCaller(sample_rate, 1.5);
      let at = 0;
      const sender = setInterval(() => {
        if (at >= samples.length) return;
        sim.sendMedia(encodeFor(provider, samples.subarray(at, at + n)));
        at += n;
      }, 20);
      try {
        const interrupted = await conn.next('interrupted', 15_000);
        const speechStart = await conn.next('event');
        expect(speechStart).toMatchObject({ node: 'vad', name: 'speech_start' });
        await until(() => sim.clears.length > 0, 1000, 'clear at the provider');
        // Denoise kept the noise from reading as speech: the caller's words started it, not the room.
        const speechFrame = Math.floor(speechAt / n);
        expect(speechStart.frame).toBeGreaterThanOrEqual(speechFrame);
        // Within one frame: the clear reached the provider before it had sent more than one inbound frame after
        // the frame in which speech started, and no playback chunk came after the clear.
        expect(sim.clearsAtInbound[0] ?? Infinity).toBeLessThanOrEqual(Number(speechStart.frame) + 2);
        const mediaAtClear = sim.clearsAtMedia[0] ?? -1;
        await new Promise((r) => setTimeout(r, 200));
        expect(sim.mediaTimes.length).toBe(mediaAtClear);
        // played_ms is what the provider confirmed; the caller heard at most the chunk in flight more.
        const heard = (sim.clears[0] ?? -1) * 20;
        expect(interrupted.played_ms).toBeLessThanOrEqual(heard);
        expect(interrupted.played_ms).toBeGreaterThanOrEqual(heard - 20);
        expect(heard).toBeGreaterThanOrEqual(1500);
        expect(heard).toBeLessThan(5000);
        // Marks after the clear, per provider: Twilio echoes every queued mark, jambonz reports them `cleared`,
        // Vonage and Asterisk drop them. None was heard: `long-reply` is never answered `played`.
        expect(conn.texts.some((t) => t.type === 'played')).toBe(false);
        // The bot answers with a short reply: its mark plays at the position after what was heard.
        conn.ws.send(Buffer.from(sine(3200, 16000, 500, 0.3).buffer), { binary: true });
        conn.ws.send(JSON.stringify({ type: 'mark', name: 'short-reply' }));
        const played = await conn.next('played', 5000);
        expect(played).toMatchObject({ name: 'short-reply', played_ms: Number(interrupted.played_ms) + 200 });
        const info = [...server.app.realtime.calls.values()].at(-1)?.info();
        expect(info?.playback).toMatchObject({ interruptions: 1, played_ms: played.played_ms });
      } finally {
        clearInterval(sender);
      }
      sim.stop();
      await sim.closed;
    } finally {
      await bot.close();
    }
  });
});

describe('sink trouble and provider trouble', () => {
  it('goes on without a sink that is down, says so, and keeps retrying', async () => {
    const closed = await TestSink.start();
    const url = closed.url;
    await closed.close();
    const id = await sinkPipeline(url, [{ id: 'g', type: 'gain', params: { db: -6 } }]);
    const sim = await ProviderSim.connect(server.base.uws, id, 'vonage');
    sim.start({ id: 'sink-down' });
    const info = await sessionOf('sink-down');
    const listener = await TestClient.connect(`${server.base.ws}/v1/sessions/${info.id}/listen`);
    const messages = callAudio('vonage', 0.5);
    for (const m of messages) sim.sendMedia(m);
    await until(() => listener.binaries().length >= messages.length, 5000, 'answers without a sink');
    await until(
      () => {
        const t = server.app.realtime.get(String(info.id))?.info().telephony;
        return (
          t?.sink.state === 'down' || (t?.sink.state === 'connecting' && (t.sink.last_error ?? null) !== null)
        );
      },
      5000,
      'sink reported down',
    );
    // … and says so to whoever listens, on every failed attempt.
    await until(
      () => listener.texts().some((t) => t.code === 'RM_ERR_SINK_UNAVAILABLE'),
      5000,
      'RM_ERR_SINK_UNAVAILABLE',
    );
    sim.close();
    await listener.closed;
  });

  it('bounds what a flooding sink queues and tells it so; the call goes on', async () => {
    const flood = await TestSink.start((c) => {
      c.next('session').then(
        () => {
          c.ws.send(
            JSON.stringify({
              type: 'playback',
              format: { encoding: 's16le', sample_rate: 8000, channels: 1 },
            }),
          );
          // 100 s of audio in 1 s messages: more than the 60 s playback queue.
          const second = Buffer.from(sine(8000, 8000, 500).buffer);
          for (let i = 0; i < 100; i++) c.ws.send(second, { binary: true });
        },
        () => {},
      );
    });
    try {
      const id = await sinkPipeline(flood.url, [{ id: 'g', type: 'gain', params: { db: 0 } }]);
      const sim = await ProviderSim.connect(server.base.ws, id, 'twilio');
      sim.start({ id: 'flood' });
      await until(() => flood.connections.length === 1, 5000, 'sink connection');
      const conn = flood.connections[0];
      if (conn === undefined) throw new Error('no sink connection');
      const full = await conn.next('error', 10_000);
      expect(full.code).toBe('RM_ERR_PLAYBACK_FULL');
      const info = await sessionOf('flood');
      const playback = (info.telephony as { playback: { queued_ms: number } }).playback;
      expect(playback.queued_ms).toBeLessThanOrEqual(60_000);
      // The call still processes the caller.
      for (const m of callAudio('twilio', 0.2)) sim.sendMedia(m);
      await until(() => conn.binaries.length >= 10, 5000, 'processed frames during the flood');
      sim.stop();
      await sim.closed;
    } finally {
      await flood.close();
    }
  });

  it('answers a sink clear with cleared and played_ms, and cleans up when the provider hangs up mid-playback', async () => {
    const bot = await answeringSink(5, 'never');
    try {
      const id = await sinkPipeline(bot.url, [{ id: 'g', type: 'gain', params: { db: -6 } }]);
      const sim = await ProviderSim.connect(server.base.ws, id, 'asterisk');
      sim.start({ id: 'hangup' });
      await until(() => bot.connections.length === 1, 5000, 'sink connection');
      const conn = bot.connections[0];
      if (conn === undefined) throw new Error('no sink connection');
      await until(() => sim.played >= 10, 5000, 'some playback');
      conn.ws.send(JSON.stringify({ type: 'clear' }));
      const cleared = await conn.next('cleared');
      await until(() => sim.clears.length > 0, 1000, 'FLUSH_MEDIA');
      expect(sim.texts).toContain('FLUSH_MEDIA');
      expect(cleared.played_ms).toBeLessThanOrEqual((sim.clears[0] ?? 0) * 20);
      expect(cleared.played_ms).toBeGreaterThanOrEqual((sim.clears[0] ?? 0) * 20 - 20);
      // More audio, then the caller hangs up while it plays.
      conn.ws.send(Buffer.from(sine(16000 * 3, 16000, 700).buffer), { binary: true });
      await until(() => sim.played >= (sim.clears[0] ?? 0) + 10, 5000, 'playback again');
      const sessions = server.app.realtime.sessions.size;
      sim.close();
      await until(() => server.app.realtime.sessions.size === sessions - 1, 5000, 'session removed');
      await until(() => conn.ws.readyState === WebSocket.CLOSED, 5000, 'sink closed');
    } finally {
      await bot.close();
    }
  });

  it('answers bad provider messages per docs/limits.md without disturbing the call next door', async () => {
    const neighbour = await ProviderSim.connect(server.base.ws, plainId, 'twilio');
    neighbour.start({ id: 'neighbour' });
    const info = await sessionOf('neighbour');
    const listener = await TestClient.connect(`${server.base.ws}/v1/sessions/${info.id}/listen`);
    // Non-fatal: bad JSON, bad base64, a repeated chunk — reported, the call goes on.
    const noisy = await ProviderSim.connect(server.base.ws, plainId, 'twilio');
    noisy.start({ id: 'noisy' });
    const noisyInfo = await sessionOf('noisy');
    const noisyListener = await TestClient.connect(`${server.base.ws}/v1/sessions/${noisyInfo.id}/listen`);
    noisy.ws.send('{not json');
    noisy.json({
      event: 'media',
      sequenceNumber: '9',
      media: { track: 'inbound', chunk: '1', timestamp: '0', payload: '***' },
      streamSid: 'x',
    });
    noisy.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await until(
      () => noisyListener.texts().filter((t) => t.type === 'error').length >= 3,
      5000,
      'three errors',
    );
    expect(
      noisyListener
        .texts()
        .filter((t) => t.type === 'error')
        .map((t) => t.code),
    ).toEqual(['RM_ERR_PROVIDER_MESSAGE', 'RM_ERR_PROVIDER_MESSAGE', 'RM_ERR_PROVIDER_MESSAGE']);
    // Fatal: media before start on a fresh call closes that call with 1008 and the catalog code.
    const early = await ProviderSim.connect(server.base.uws, plainId, 'vonage');
    early.ws.send(Buffer.alloc(640), { binary: true });
    expect(await early.closed).toBe(1008);
    expect(early.closeReason).toMatch(/^RM_ERR_PROVIDER_SEQUENCE/);
    // An unsupported format: Vonage at 24 kHz.
    const odd = await ProviderSim.connect(server.base.ws, plainId, 'vonage');
    odd.json({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=24000' });
    expect(await odd.closed).toBe(1008);
    expect(odd.closeReason).toMatch(/^RM_ERR_PROVIDER_FORMAT/);
    // The neighbour streamed on throughout.
    const messages = callAudio('twilio', 0.5);
    for (const m of messages) neighbour.sendMedia(m);
    await until(() => listener.binaries().length >= messages.length, 5000, 'neighbour answers');
    neighbour.stop();
    noisy.stop();
    await Promise.all([neighbour.closed, noisy.closed]);
  });

  it('closes a provider connection that floods messages with 1008 RM_ERR_RATE_LIMITED', async () => {
    const sim = await ProviderSim.connect(server.base.uws, plainId, 'twilio');
    sim.start({ id: 'flooder' });
    for (let i = 0; i < 3000; i++) sim.ws.send('{"event":"nonsense"}');
    expect(await sim.closed).toBe(1008);
    expect(sim.closeReason).toMatch(/^RM_ERR_RATE_LIMITED/);
  });

  it('bounds the marks a sink may leave waiting', async () => {
    const marks = await TestSink.start((c) => {
      c.next('session').then(
        () => {
          c.ws.send(
            JSON.stringify({
              type: 'playback',
              format: { encoding: 's16le', sample_rate: 8000, channels: 1 },
            }),
          );
          c.ws.send(Buffer.from(sine(8000 * 10, 8000, 500).buffer), { binary: true });
          for (let i = 0; i < 1100; i++) c.ws.send(JSON.stringify({ type: 'mark', name: `m${i}` }));
        },
        () => {},
      );
    });
    try {
      const id = await sinkPipeline(marks.url, [{ id: 'g', type: 'gain', params: { db: 0 } }]);
      const sim = await ProviderSim.connect(server.base.ws, id, 'vonage');
      sim.start({ id: 'marks' });
      await until(() => marks.connections.length === 1, 5000, 'sink connection');
      const error = await marks.connections[0]?.next('error');
      expect(error).toMatchObject({ code: 'RM_ERR_SINK_MESSAGE' });
      sim.close();
      await sim.closed;
    } finally {
      await marks.close();
    }
  });

  it('counts calls, DTMF and bad provider messages per provider in /metrics', async () => {
    const sim = await ProviderSim.connect(server.base.ws, plainId, 'jambonz');
    sim.start({ id: 'metered' });
    await sessionOf('metered');
    sim.dtmf('1');
    sim.ws.send('{oops');
    await until(() => server.app.realtime.calls.size > 0, 1000, 'call');
    const metrics = async () => (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    let body = '';
    for (let i = 0; i < 100 && !/provider="jambonz",event="provider_error"/.test(body); i++) {
      body = await metrics();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(body).toMatch(/remotemedia_telephony_events_total\{provider="jambonz",event="call"\} [1-9]/);
    expect(body).toMatch(/remotemedia_telephony_events_total\{provider="jambonz",event="dtmf"\} [1-9]/);
    expect(body).toMatch(
      /remotemedia_telephony_events_total\{provider="jambonz",event="provider_error"\} [1-9]/,
    );
    expect(body).toMatch(/remotemedia_telephony_calls_active\{provider="jambonz"\} [1-9]/);
    sim.close();
    await sim.closed;
  });

  it('closes a call whose pipeline cannot take the provider format with 1008 RM_ERR_FORMAT_CONFLICT', async () => {
    // denoise needs 48 kHz; Twilio sends 8 kHz and the pipeline does not resample first.
    const id = await storePipeline(server.app, {
      name: 'needs-48k',
      nodes: [{ id: 'clean', type: 'denoise' }],
    });
    const sim = await ProviderSim.connect(server.base.ws, id, 'twilio');
    sim.start({ id: 'conflict' });
    expect(await sim.closed).toBe(1008);
    expect(sim.closeReason).toMatch(/^RM_ERR_FORMAT_CONFLICT/);
  });

  it('negotiates the jambonz subprotocol on both listeners', async () => {
    for (const base of [server.base.ws, server.base.uws]) {
      const sim = await ProviderSim.connect(base, plainId, 'jambonz');
      expect(sim.ws.protocol).toBe('audio.jambonz.org');
      sim.close();
      await sim.closed;
    }
  });

  it('refuses to store or plan a document whose sink host is not in SINK_ALLOWLIST (422)', async () => {
    const doc = (url: string) => ({
      name: 'bot',
      nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
      sink: { url, playback: { barge_in: true } },
    });
    for (const url of ['/v1/pipelines', '/v1/plan']) {
      const refused = await server.app.inject({
        method: 'POST',
        url,
        payload: doc('wss://bot.example.com/x'),
      });
      expect(refused.statusCode).toBe(422);
      expect(refused.json().errors).toEqual([
        expect.objectContaining({ path: '/sink/url', code: 'RM_ERR_SINK_NOT_ALLOWED' }),
      ]);
      const accepted = await server.app.inject({ method: 'POST', url, payload: doc('ws://127.0.0.1:9/x') });
      expect(accepted.statusCode).toBe(url === '/v1/plan' ? 200 : 201);
    }
    const bad = await server.app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: doc('https://127.0.0.1/x'),
    });
    expect(bad.statusCode).toBe(422);
  });

  it('does not dial a sink whose host is not in SINK_ALLOWLIST', async () => {
    const id = await sinkPipeline('ws://sink.invalid:9/bot', [{ id: 'g', type: 'gain', params: { db: -6 } }]);
    const sim = await ProviderSim.connect(server.base.ws, id, 'jambonz');
    sim.start({ id: 'not-allowed' });
    const info = await sessionOf('not-allowed');
    expect(info.telephony).toMatchObject({ sink: { state: 'not_allowed', url: 'ws://sink.invalid:9/bot' } });
    sim.close();
    await sim.closed;
  });
});

describe('X-Twilio-Signature', () => {
  let signed: Running;
  let id: string;
  const token = 'test-auth-token';
  beforeAll(async () => {
    signed = await startTestServer({ TWILIO_AUTH_TOKEN: token });
    id = await storePipeline(signed.app, {
      name: 'plain',
      nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
    });
  });
  afterAll(() => signed.close());

  it.each(['ws', 'uws'] as const)(
    'refuses an unsigned or wrongly signed upgrade with 403 and accepts a signed one (%s)',
    async (transport) => {
      const base = signed.base[transport];
      const path = `/v1/pipelines/${id}/twilio?caller=ada`;
      await expect(ProviderSim.connect(base, `${id}`, 'twilio')).rejects.toMatchObject({ status: 403 });
      const wrong = twilioSignature('another-token', `wss://${base.slice(5)}${path}`);
      await expect(
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`${base}${path}`, { headers: { 'x-twilio-signature': wrong } });
          ws.on('open', () => resolve(ws.close()));
          ws.on('unexpected-response', (_req, res) =>
            reject(Object.assign(new Error('refused'), { status: res.statusCode })),
          );
          ws.on('error', () => {});
        }),
      ).rejects.toMatchObject({ status: 403 });
      // Twilio signs the URL it dialled: wss://host/path?query.
      const good = twilioSignature(token, `wss://${base.slice(5)}${path}`);
      const ws = new WebSocket(`${base}${path}`, { headers: { 'x-twilio-signature': good } });
      await new Promise((resolve, reject) => {
        ws.on('open', resolve);
        ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      });
      ws.close();
    },
  );
});

describe('examples/sink-bot.mjs', () => {
  it('answers a caller utterance with a tone that the provider plays to the end', async () => {
    const bot = spawn(process.execPath, ['examples/sink-bot.mjs', '--port', '0', '--reply-ms', '400']);
    let out = '';
    bot.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await until(() => /listening on (ws:\S+)/.test(out), 10_000, 'sink-bot to listen');
      const url = /listening on (ws:\S+)/.exec(out)?.[1] ?? '';
      const id = await sinkPipeline(url, [
        { id: 'vad', type: 'vad', params: { aggressiveness: 2, hangover_ms: 200 } },
      ]);
      const sim = await ProviderSim.connect(server.base.ws, id, 'twilio');
      sim.start({ id: 'sink-bot' });
      // 0.5 s of silence, 1 s of "speech", then silence, in real time.
      const speech = voiced(8000, 8000);
      let n = 0;
      const sender = setInterval(() => {
        const at = (n - 25) * 160;
        sim.sendMedia(
          encodeFor(
            'twilio',
            at >= 0 && at < speech.length ? speech.subarray(at, at + 160) : new Int16Array(160),
          ),
        );
        n++;
      }, 20);
      try {
        await until(() => /reply-1 heard in full/.test(out), 15_000, 'the reply to be heard');
      } finally {
        clearInterval(sender);
      }
      // 400 ms of tone, streamed in 100 ms pieces, played in 20 ms chunks.
      expect(sim.played).toBeGreaterThanOrEqual(19);
      sim.stop();
      await sim.closed;
      await until(() => /ended/.test(out), 5000, 'the bot to see the call end');
    } finally {
      bot.kill('SIGTERM');
    }
  });
});

describe('shutdown', () => {
  it('drains telephony calls like /stream sessions: stats to the sink, then 1001 to the provider', async () => {
    const bot = await TestSink.start();
    const own = await startTestServer({ SINK_ALLOWLIST: '127.0.0.1' });
    try {
      const id = await storePipeline(own.app, {
        name: 'drained',
        nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
        sink: { url: bot.url },
      });
      const calls = await Promise.all([
        ProviderSim.connect(own.base.ws, id, 'twilio'),
        ProviderSim.connect(own.base.uws, id, 'asterisk'),
      ]);
      calls.forEach((sim, i) => {
        sim.start({ id: `drain-${i}` });
      });
      await until(() => bot.connections.filter((c) => c.texts.length > 0).length === 2, 5000, 'two sinks');
      for (const sim of calls) for (const m of callAudio(sim.provider, 0.1)) sim.sendMedia(m);
      await own.close();
      for (const sim of calls) expect(await sim.closed).toBe(1001);
      for (const c of bot.connections) await c.next('stats');
    } finally {
      await bot.close();
    }
  });
});

describe('API_KEYS', () => {
  it('admits providers and listeners with ?token= (providers cannot send headers) and refuses them without', async () => {
    const keyed = await startTestServer({ API_KEYS: 'k1' });
    try {
      const id = await storePipeline(keyed.app, {
        name: 'plain',
        nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
      });
      for (const base of [keyed.base.ws, keyed.base.uws]) {
        await expect(ProviderSim.connect(base, id, 'vonage')).rejects.toMatchObject({ status: 401 });
      }
      const ws = await new Promise<WebSocket>((resolve, reject) => {
        const s = new WebSocket(`${keyed.base.ws}/v1/pipelines/${id}/vonage?token=k1`);
        s.on('open', () => resolve(s));
        s.on('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      });
      ws.send(
        JSON.stringify({
          event: 'websocket:connected',
          'content-type': 'audio/l16;rate=16000',
          uuid: 'keyed',
        }),
      );
      const info = await sessionOf('keyed', keyed, { authorization: 'Bearer k1' });
      for (const base of [keyed.base.ws, keyed.base.uws]) {
        await expect(TestClient.connect(`${base}/v1/sessions/${info.id}/listen`)).rejects.toMatchObject({
          status: 401,
        });
        await expect(TestClient.connect(`${base}/v1/sessions/nope/listen?token=k1`)).rejects.toMatchObject({
          status: 404,
        });
      }
      const listener = await TestClient.connect(`${keyed.base.uws}/v1/sessions/${info.id}/listen?token=k1`);
      await until(() => listener.texts().some((t) => t.type === 'session'), 5000, 'listener hello');
      ws.close();
      await listener.closed;
    } finally {
      await keyed.close();
    }
  });
});
