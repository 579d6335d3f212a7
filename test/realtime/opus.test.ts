/**
 * `opus` at the edges of a streaming session (docs/protocol.md §2–3), on both transports, checked against an
 * independent Opus codec: Debian's system libopus (test/support/opus.ts), a different build and version of the
 * reference implementation from the one the server builds from source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFixtureWav } from '../support/audio.js';
import { referenceDecode, referenceEncode, referenceOpus } from '../support/opus.js';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { alignment, channelOf, peakFrequency, rmsDb } from '../support/signal.js';
import { TestClient } from '../support/ws-client.js';

const reference = referenceOpus();
const ci = process.env.CI === 'true';

it('has an independent Opus codec to check against (Debian libopus0, installed by .ci/run)', () => {
  if ('missing' in reference && !ci) {
    console.warn(
      `SKIPPING the Opus round-trip tests: ${reference.missing}. Run: sudo apt-get install -y libopus0`,
    );
    return;
  }
  // Under CI a missing system libopus fails here, loudly, and every test below fails with the reason.
  if ('missing' in reference) expect.fail(`${reference.missing}; install Debian's libopus0 (.ci/run does)`);
  expect(reference.version).toMatch(/^libopus /);
});

let server: Running;
let halfId: string;
let to22kId: string;

beforeAll(async () => {
  // Tests send whole files at once, far faster than real time: queue all of it. The reference codec and the
  // measurements run synchronously on this process' event loop, which the server shares: load shedding off.
  server = await startTestServer({ SESSION_QUEUE_MS: '60000', MAX_EVENT_LOOP_DELAY_MS: '0' });
  halfId = await storePipeline(server.app, {
    name: 'half',
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }],
  });
  to22kId = await storePipeline(server.app, {
    name: 'to-22k',
    nodes: [{ id: 'r', type: 'resample', params: { sample_rate: 22050 } }],
  });
});
afterAll(() => server.close());

const speech48k = readFixtureWav('speech-48k-mono.wav');
const speech16k = readFixtureWav('speech-16k-mono.wav');
const tones = readFixtureWav('tones-48k-stereo.wav');

/** −6 dB as the gain node applies it. */
const HALF_DB = -6;

/** Streams `messages` on a fresh session started with `start`; resolves after `stop` closed it. */
async function streamAll(url: string, start: object, messages: Buffer[]): Promise<TestClient> {
  const c = await TestClient.connect(url);
  c.send(start);
  await c.next('ready');
  for (const m of messages) c.sendRaw(m, true);
  c.send({ type: 'stop' });
  await c.closed;
  return c;
}

/** Splits interleaved s16le PCM into messages of `frames` sample frames. */
function messagesOf(pcm: Buffer, channels: number, frames: number): Buffer[] {
  const size = frames * channels * 2;
  const out: Buffer[] = [];
  for (let at = 0; at < pcm.length; at += size) out.push(pcm.subarray(at, Math.min(at + size, pcm.length)));
  return out;
}

const withReference = 'missing' in reference && !ci ? describe.skip : describe;

withReference.each(['ws', 'uws'] as const)('opus over %s', (transport) => {
  const url = (id: string) => `${server.base[transport]}/v1/pipelines/${id}/stream`;

  it('takes packets the system libopus made and answers packets it decodes to the processed recording', async () => {
    const packets = referenceEncode(speech48k.pcm, 48000, 1);
    const start = {
      type: 'start',
      input: { encoding: 'opus', sample_rate: 48000, channels: 1 },
      output: { encoding: 'opus' },
    };
    const c = await streamAll(url(halfId), start, packets);
    expect(c.texts()[0]).toMatchObject({
      type: 'ready',
      input: { encoding: 'opus', sample_rate: 48000, channels: 1 },
      output: { encoding: 'opus', sample_rate: 48000, channels: 1 },
    });
    const answers = c.binaries();
    // One answer per packet, each one 20 ms packet; the flush answer is empty (nothing is left over).
    expect(answers).toHaveLength(packets.length + 1);
    expect(answers.slice(0, -1).every((a) => a.length > 0)).toBe(true);
    expect(answers.at(-1)).toHaveLength(0);
    const heard = channelOf(referenceDecode(answers.slice(0, -1), 48000, 1), 1);
    expect(heard.length).toBe(packets.length * 960);
    const original = channelOf(speech48k.pcm, 1);
    // Two Opus passes: compare shape (correlation at the best delay) and level, not samples.
    // Each Opus pass delays by the encoder's 6.5 ms lookahead (312 frames at 48 kHz): search up to 25 ms.
    const { lag, correlation } = alignment(original, heard, 1200, 4800, 48000);
    expect(correlation).toBeGreaterThan(0.9);
    const aligned = heard.subarray(lag, lag + original.length);
    expect(Math.abs(rmsDb(aligned) - (rmsDb(original) + HALF_DB))).toBeLessThan(1);
    const stats = c.texts().find((t) => t.type === 'stats');
    expect(stats).toMatchObject({
      frames_in: packets.length,
      frames_out: packets.length,
    });
  });

  it('decodes stereo packets of the system libopus to s16le with each tone in its channel', async () => {
    const packets = referenceEncode(tones.pcm, 48000, 2);
    const start = {
      type: 'start',
      input: { encoding: 'opus', sample_rate: 48000, channels: 2 },
      output: { encoding: 's16le' },
    };
    const c = await streamAll(url(halfId), start, packets);
    const pcm = Buffer.concat(c.binaries());
    expect(pcm.length).toBe(packets.length * 960 * 4);
    // Past the codec's start-up: 440 Hz left, 1 kHz right, each at the input's level less 6 dB.
    for (const [channel, hz] of [
      [0, 440],
      [1, 1000],
    ] as const) {
      const heard = channelOf(pcm, 2, channel).subarray(4800, 43200);
      const original = channelOf(tones.pcm, 2, channel).subarray(4800, 43200);
      expect(peakFrequency(heard, 48000)).toBe(hz);
      expect(Math.abs(rmsDb(heard) - (rmsDb(original) + HALF_DB))).toBeLessThan(1);
    }
  });

  it('answers s16le in 37 ms messages with Opus at 16 kHz that the system libopus decodes', async () => {
    const start = {
      type: 'start',
      input: { encoding: 's16le', sample_rate: 16000, channels: 1 },
      output: { encoding: 'opus' },
    };
    const messages = messagesOf(speech16k.pcm, 1, 592);
    const c = await streamAll(url(halfId), start, messages);
    const answers = c.binaries();
    expect(answers).toHaveLength(messages.length + 1);
    // Each answer is one packet of the whole 20 ms frames ready, or empty while less than 20 ms waits;
    // the flush sends the last partial frame, padded with silence.
    const packets = answers.filter((a) => a.length > 0);
    const heard = channelOf(referenceDecode(packets, 16000, 1), 1);
    const frames = speech16k.pcm.length / 2;
    expect(heard.length).toBe(Math.ceil(frames / 320) * 320);
    const original = channelOf(speech16k.pcm, 1);
    const { lag, correlation } = alignment(original, heard, 400, 1600, 32000);
    expect(correlation).toBeGreaterThan(0.9);
    expect(Math.abs(rmsDb(heard.subarray(lag, lag + frames)) - (rmsDb(original) + HALF_DB))).toBeLessThan(1);
    expect(peakFrequency(heard, 16000)).toBe(peakFrequency(original, 16000));
  });

  it('conceals a lost packet (an empty message) with 20 ms that continue the audio', async () => {
    const packets = referenceEncode(tones.pcm, 48000, 2);
    const lost = 20;
    const start = {
      type: 'start',
      input: { encoding: 'opus', sample_rate: 48000, channels: 2 },
      output: { encoding: 's16le' },
    };
    const sent = packets.map((p, k) => (k === lost ? Buffer.alloc(0) : p));
    const c = await streamAll(url(halfId), start, sent);
    const answers = c.binaries();
    expect(answers).toHaveLength(packets.length + 1);
    // Still one 20 ms answer for the lost packet, numbered in its place, neither silent nor far off the level.
    const concealed = answers[lost] as Buffer;
    expect(concealed.length).toBe(960 * 4);
    const before = rmsDb(channelOf(answers[lost - 1] as Buffer, 2, 1));
    const level = rmsDb(channelOf(concealed, 2, 1));
    expect(level).toBeGreaterThan(before - 10);
    expect(level).toBeLessThan(before + 3);
    expect(c.texts().filter((t) => t.type === 'error')).toEqual([]);
    expect(c.texts().find((t) => t.type === 'stats')).toMatchObject({ frames_in: packets.length });
  });

  it('refuses a bad packet with RM_ERR_BAD_FRAME and goes on; another session is undisturbed', async () => {
    const packets = referenceEncode(speech48k.pcm.subarray(0, 96000), 48000, 1);
    const start = {
      type: 'start',
      input: { encoding: 'opus', sample_rate: 48000, channels: 1 },
      output: { encoding: 'opus' },
    };
    const bystander = await TestClient.connect(url(halfId));
    bystander.send(start);
    await bystander.next('ready');
    const c = await TestClient.connect(url(halfId));
    c.send(start);
    await c.next('ready');
    // A code-3 packet that says it holds no frames (RFC 6716 §3.2.5 requires at least one).
    const bad = Buffer.from([0x03, 0x00]);
    const sent = [packets[0], packets[1], bad, ...packets.slice(2)] as Buffer[];
    for (const m of sent) {
      c.sendRaw(m, true);
      bystander.sendRaw(m === bad ? (packets[2] as Buffer) : m, true);
    }
    await c.until((x) => x.binaries().length === sent.length - 1);
    await bystander.until((x) => x.binaries().length === sent.length);
    const error = c.texts().find((t) => t.type === 'error');
    expect(error).toMatchObject({ code: 'RM_ERR_BAD_FRAME', frame: 2 });
    expect(String(error?.message)).toMatch(/opus/i);
    expect(c.binaries().every((a) => a.length > 0)).toBe(true);
    expect(bystander.texts().filter((t) => t.type === 'error')).toEqual([]);
    c.close();
    bystander.close();
  });

  it('refuses rates and channel counts Opus cannot carry with RM_ERR_BAD_FORMAT; the client may start again', async () => {
    const c = await TestClient.connect(url(halfId));
    c.send({ type: 'start', input: { encoding: 'opus', sample_rate: 44100, channels: 1 } });
    const first = await c.next('error');
    expect(first).toMatchObject({ code: 'RM_ERR_BAD_FORMAT' });
    expect(String(first.message)).toMatch(/44100/);
    c.send({ type: 'start', input: { encoding: 'opus', sample_rate: 24000, channels: 1 } });
    expect(await c.next('ready')).toMatchObject({ output: { encoding: 's16le', sample_rate: 24000 } });
    c.close();

    // The output's rate comes from the pipeline: 22.05 kHz is none of Opus' rates.
    const d = await TestClient.connect(url(to22kId));
    d.send({
      type: 'start',
      input: { encoding: 's16le', sample_rate: 48000, channels: 1 },
      output: { encoding: 'opus' },
    });
    const refused = await d.next('error');
    expect(refused).toMatchObject({ code: 'RM_ERR_BAD_FORMAT' });
    expect(String(refused.message)).toMatch(/22050/);

    const e = await TestClient.connect(url(halfId));
    e.send({ type: 'start', input: { encoding: 'opus', sample_rate: 48000, channels: 3 } });
    expect(await e.next('error')).toMatchObject({ code: 'RM_ERR_BAD_FORMAT' });
    d.close();
    e.close();
  });
});
