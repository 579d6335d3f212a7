/**
 * SPEC §7 end to end: provider simulators (test/support/telephony.ts) against the real server on both
 * listeners, with a real sink on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { planWithEngine } from '../../src/planner.js';
import { twilioSignature } from '../../src/realtime/providers/twilio-signature.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import {
  encodeFor,
  type Provider,
  ProviderSim,
  providerFormat,
  sine,
  TestSink,
  until,
} from '../support/telephony.js';
import { TestClient } from '../support/ws-client.js';

const providers: Provider[] = ['twilio', 'vonage', 'jambonz', 'asterisk'];
/** SPEC §7 done-when asks for two-minute calls; CI runs short ones (TELEPHONY_LONG=1 for the long ones). */
const CALL_SECONDS = process.env.TELEPHONY_LONG === '1' ? 120 : 1;

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
  plainId = storePipeline(server.app, {
    name: 'plain',
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
  });
});
afterAll(async () => {
  await server.close();
  await sink.close();
});

/** The live session of a call, found by the id the simulator gave the provider. */
async function sessionOf(callId: string): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await until(
    () => {
      const res = server.app.realtime.sessions;
      for (const s of res.values()) {
        const info = s.info();
        const call = (info.telephony?.call ?? {}) as Record<string, unknown>;
        if (Object.values(call).includes(callId) || call.headers === callId)
          found = info as unknown as Record<string, unknown>;
      }
      return found !== undefined;
    },
    5000,
    `session of ${callId}`,
  );
  return found as Record<string, unknown>;
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
    it('processes every inbound frame once and in order, passes DTMF as digit events, serves listeners', async () => {
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
      const listener = await TestClient.connect(`${server.base.ws}/v1/sessions/${info.id}/listen`);
      await until(() => listener.received.length > 0, 5000, 'listener hello');
      const messages = callAudio(provider, CALL_SECONDS);
      for (const m of messages) sim.sendMedia(m);
      sim.dtmf('5');
      await until(() => listener.binaries().length >= messages.length, 10_000, 'all answers');
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
    });
  });
});
