/**
 * docs/telephony/README.md "Echo cancellation": a call whose pipeline has an `aec` node gets what the server plays
 * to the caller as the node's reference channel, without the provider or the sink doing anything. The
 * provider simulator plays the echo of that playback back into its inbound media (delayed, through a
 * short room response); the processed audio the sink receives shows how much of it is left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { readFixtureWav } from '../support/audio.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import {
  decodeFor,
  encodeFor,
  type Provider,
  ProviderSim,
  providerFormat,
  TestSink,
  until,
} from '../support/telephony.js';

let server: Running;
beforeAll(async () => {
  server = await startTestServer({ SESSION_QUEUE_MS: '60000', SINK_ALLOWLIST: '127.0.0.1' });
});
afterAll(async () => {
  await server.close();
});

const speech16k = (() => {
  const { pcm } = readFixtureWav('speech-16k-mono.wav');
  return new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
})();

/** A loudspeaker-to-microphone path: 60 ms away, 10 ms of decaying reflections, about 8 dB down. */
function roomPath(rate: number): { delay_ms: number; ir: Float32Array } {
  const n = Math.round(rate / 100);
  let seed = 20261129;
  const random = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const ir = Float32Array.from({ length: n }, (_, k) =>
    k === 0 ? 0.3 : 0.25 * random() * Math.exp(-k / (0.003 * rate)),
  );
  return { delay_ms: 60, ir };
}

/** A sink that plays the speech recording (16 kHz) as soon as the call starts, or stays silent. */
function speakingSink(plays: boolean) {
  return TestSink.start((c) => {
    c.next('session').then(
      () => {
        if (!plays) return;
        c.ws.send(
          JSON.stringify({
            type: 'playback',
            format: { encoding: 's16le', sample_rate: 16000, channels: 1 },
          }),
        );
        if (c.ws.readyState === WebSocket.OPEN) c.ws.send(Buffer.from(speech16k.buffer), { binary: true });
      },
      () => {},
    );
  });
}

function energy(samples: ArrayLike<number>, from: number, to: number): number {
  let e = 0;
  for (let i = from; i < Math.min(to, samples.length); i++) e += (samples[i] ?? 0) ** 2;
  return e;
}

function concatFloat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function concatS16(parts: Buffer[]): Int16Array {
  const all = Buffer.concat(parts);
  return new Int16Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength));
}

/** One call: the caller's own audio is `caller` (16-bit, provider rate), sent in real time with the echo mixed in. */
async function call(provider: Provider, nodes: object[], plays: boolean, caller: Int16Array) {
  const sink = await speakingSink(plays);
  try {
    const id = await storePipeline(server.app, {
      name: 'aec-call',
      nodes,
      sink: { url: sink.url, playback: { nodes: [], barge_in: false } },
    });
    const sim = await ProviderSim.connect(server.base.ws, id, provider);
    const f = providerFormat[provider];
    const seconds = caller.length / f.sample_rate;
    sim.setEcho(roomPath(f.sample_rate), seconds + 1);
    sim.start({ id: `aec-${provider}-${plays}` });
    await until(() => sink.connections.length === 1, 5000, 'sink connection');
    const conn = sink.connections[0];
    if (conn === undefined) throw new Error('no sink connection');
    const session = await conn.next('session');
    const n = f.sample_rate / 50;
    let at = 0;
    await new Promise<void>((resolve) => {
      const sender = setInterval(() => {
        if (at >= caller.length) {
          clearInterval(sender);
          resolve();
          return;
        }
        sim.sendSamples(caller.subarray(at, at + n));
        at += n;
      }, 20);
    });
    await until(
      () => conn.binaries.reduce((k, b) => k + b.byteLength / 2, 0) >= caller.length - 0.02 * f.sample_rate,
      10_000,
      'processed audio at the sink',
    );
    const info = [...server.app.realtime.calls.values()].at(-1)?.info();
    sim.stop();
    await sim.closed;
    return {
      session,
      info,
      echo: concatFloat(sim.echoSent),
      out: concatS16(conn.binaries),
      played: sim.played,
    };
  } finally {
    await sink.close();
  }
}

/** Echo-return-loss enhancement after `convergeS` seconds: echo sent vs what is left of it in the output. */
function erleDb(echo: Float32Array, out: Int16Array, rate: number, convergeS: number): number {
  const from = Math.round(convergeS * rate);
  const to = Math.min(echo.length, out.length);
  return 10 * Math.log10(energy(echo, from, to) / Math.max(1, energy(out, from, to)));
}

describe.each(['twilio', 'vonage'] as const)('%s call with an aec node', (provider) => {
  const rate = providerFormat[provider].sample_rate;

  it('feeds playback to aec as its reference: the echo in the processed audio drops by at least 10 dB', async () => {
    // The caller is silent: everything in their inbound media is the echo of the bot's reply.
    const silent = new Int16Array(Math.round(rate * 6));
    const withAec = await call(
      provider,
      [{ id: 'aec', type: 'aec', params: { tail_ms: 200 } }],
      true,
      silent,
    );
    expect(withAec.info?.echo_reference).toBe(true);
    // The sink is told the processed format: the aec node's mono output, not the two channels it takes.
    expect(withAec.session.output).toMatchObject({ channels: 1, sample_rate: rate });
    expect(withAec.played).toBeGreaterThan(200);
    const before = energy(withAec.echo, 0, withAec.echo.length);
    expect(before).toBeGreaterThan(0);
    const erle = erleDb(withAec.echo, withAec.out, rate, 2);
    console.log(`${provider}: ERLE after 2 s of convergence ${erle.toFixed(1)} dB`);
    expect(erle).toBeGreaterThanOrEqual(10);

    // The same call through a pipeline without aec keeps its echo: the reference is what removed it.
    const without = await call(provider, [{ id: 'g', type: 'gain', params: { db: 0 } }], true, silent);
    expect(without.info?.echo_reference).toBe(false);
    expect(Math.abs(erleDb(without.echo, without.out, rate, 2))).toBeLessThan(1);
  }, 40_000);

  it('changes nothing when nothing plays: the caller comes through at their own level', async () => {
    const speech =
      rate === 16000
        ? speech16k.subarray(0, rate * 3)
        : Int16Array.from({ length: rate * 3 }, (_, i) => speech16k[2 * i] ?? 0);
    const r = await call(provider, [{ id: 'aec', type: 'aec' }], false, speech);
    expect(r.info?.echo_reference).toBe(true);
    expect(r.played).toBe(0);
    // Nothing played, so nothing to cancel: the output carries the caller at their level (within 0.5 dB).
    const n = Math.min(speech.length, r.out.length);
    const sent = decodeFor(provider, encodeFor(provider, speech));
    const ratioDb = 10 * Math.log10(energy(r.out, 0, n) / energy(sent, 0, n));
    expect(Math.abs(ratioDb)).toBeLessThan(0.5);
  }, 30_000);
});
