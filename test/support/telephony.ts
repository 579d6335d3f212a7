/**
 * Telephony provider simulators for tests (docs/telephony/README.md): each plays the provider's side of its documented
 * WebSocket protocol against a real server, including what real providers do that users get wrong —
 * Twilio's numbers as strings and `both_tracks` media, marks echoed after `clear`. Each keeps a playout
 * model: outbound media plays one 20 ms chunk per 20 ms, and a mark is reported when everything sent
 * before it has played.
 */
import WebSocket, { WebSocketServer } from 'ws';
import { quantile } from '../../loadtest/stats.js';
import { CHUNK_MS, MAX_LAG_CHUNKS } from '../../src/realtime/playback.js';
import { readFixtureWav } from './audio.js';

export type Provider = 'twilio' | 'vonage' | 'jambonz' | 'asterisk';

/** What each simulator sends and expects back. */
export const providerFormat: Record<
  Provider,
  { encoding: 'mulaw' | 's16le'; sample_rate: number; bytes20ms: number }
> = {
  twilio: { encoding: 'mulaw', sample_rate: 8000, bytes20ms: 160 },
  vonage: { encoding: 's16le', sample_rate: 16000, bytes20ms: 640 },
  jambonz: { encoding: 's16le', sample_rate: 16000, bytes20ms: 640 },
  asterisk: { encoding: 's16le', sample_rate: 16000, bytes20ms: 640 },
};

/** ITU-T G.711 μ-law encoding of one 16-bit sample (bias 0x84, segment search, inverted bits). */
export function mulawEncode(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(sample), CLIP) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  magnitude = sign | (exponent << 4) | mantissa;
  return ~magnitude & 0xff;
}

/** 16-bit PCM samples → one message of the provider's media. */
export function encodeFor(provider: Provider, samples: Int16Array): Buffer {
  if (providerFormat[provider].encoding === 'mulaw') return Buffer.from(Array.from(samples, mulawEncode));
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** ITU-T G.711 μ-law decoding of one byte to a 16-bit sample. */
export function mulawDecode(byte: number): number {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** One message of the provider's media → 16-bit PCM samples. */
export function decodeFor(provider: Provider, media: Buffer): Int16Array {
  if (providerFormat[provider].encoding === 'mulaw') return Int16Array.from(media, mulawDecode);
  const copy = Buffer.from(media);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.byteLength >> 1);
}

/**
 * The acoustic path from the caller's loudspeaker back into their microphone: what the provider plays comes
 * back in its inbound media `delay_ms` later through the impulse response `ir` (which carries the attenuation).
 */
export interface EchoPath {
  delay_ms: number;
  ir: Float32Array;
}

type Item = { kind: 'media'; audio: Int16Array | undefined } | { kind: 'mark'; name: string };

export class ProviderSim {
  /** Outbound media chunks received, with the time each arrived (ms, performance.now()). */
  readonly mediaTimes: number[] = [];
  /** Outbound media chunks the caller has heard. */
  played = 0;
  /** Marks reported back as played (not counting those reported after a clear). */
  readonly marksPlayed: string[] = [];
  /** Clears received, with how many chunks had been played at that moment. */
  readonly clears: number[] = [];
  /** How many media chunks had arrived when each clear arrived. */
  readonly clearsAtMedia: number[] = [];
  /** Inbound media messages sent so far, and how many had been sent when each clear arrived. */
  inboundSent = 0;
  readonly clearsAtInbound: number[] = [];
  readonly texts: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;
  private readonly queue: Item[] = [];
  private playStart: number | undefined;
  private playedSinceStart = 0;
  private readonly timer: NodeJS.Timeout;
  private seq = 1;
  private chunk = 1;
  /**
   * With an echo path: what was played, on the inbound sample clock (index = inbound sample position), and the
   * echo-free caller audio and the echo each inbound message carried.
   */
  private echoPath: EchoPath | undefined;
  private playedLine: Float32Array = new Float32Array(0);
  private inboundSamples = 0;
  readonly echoSent: Float32Array[] = [];
  private heardEnd = 0;
  private readonly streamSid = `MZ${Math.random().toString(16).slice(2, 18)}`;

  private constructor(
    readonly ws: WebSocket,
    readonly provider: Provider,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        clearInterval(this.timer);
        resolve(code);
      }),
    );
    ws.on('error', () => {});
    this.timer = setInterval(() => this.playout(), 20);
  }

  static connect(
    base: string,
    pipelineId: string,
    provider: Provider,
    headers: Record<string, string> = {},
  ): Promise<ProviderSim> {
    const url = `${base}/v1/pipelines/${pipelineId}/${provider}`;
    // jambonz listen: "accept websocket connections with a subprotocol name of 'audio.jambonz.org'".
    const protocols = provider === 'jambonz' ? ['audio.jambonz.org'] : [];
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      const sim = new ProviderSim(ws, provider);
      ws.once('open', () => resolve(sim));
      ws.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
      );
      ws.once('error', reject);
    });
  }

  /** The provider's opening messages, as documented. */
  start(call: { id: string; params?: Record<string, string> }): void {
    switch (this.provider) {
      case 'twilio':
        this.json({ event: 'connected', protocol: 'Call', version: '1.0.0' });
        this.json({
          event: 'start',
          sequenceNumber: String(this.seq++),
          start: {
            accountSid: 'AC0000',
            streamSid: this.streamSid,
            callSid: call.id,
            // <Stream track="both_tracks">: both directions arrive, each media message names its track.
            tracks: ['inbound', 'outbound'],
            customParameters: call.params ?? {},
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          },
          streamSid: this.streamSid,
        });
        return;
      case 'vonage':
        this.json({
          event: 'websocket:connected',
          'content-type': 'audio/l16;rate=16000',
          uuid: call.id,
          ...call.params,
        });
        return;
      case 'jambonz':
        this.json({
          callSid: call.id,
          direction: 'inbound',
          from: '+15550001',
          to: '+15550002',
          sampleRate: 16000,
          mixType: 'mono',
          metadata: call.params ?? {},
        });
        return;
      case 'asterisk':
        this.ws.send(
          `MEDIA_START connection_id:${call.id} channel:WebSocket/${call.id}/0x1 channel_id:${call.id}.1 format:slin16 optimal_frame_size:640 ptime:20`,
        );
        return;
    }
  }

  /** From now on, what the provider plays comes back into the caller's audio through `path`. */
  setEcho(path: EchoPath, seconds: number): void {
    this.echoPath = path;
    this.playedLine = new Float32Array(Math.ceil(providerFormat[this.provider].sample_rate * seconds));
  }

  /**
   * One message of the caller's audio as 16-bit samples: with an echo path, the echo of what was played is
   * mixed in first (and kept in `echoSent`), as a phone with its loudspeaker near the microphone does.
   */
  sendSamples(caller: Int16Array): void {
    const path = this.echoPath;
    let mixed = caller;
    if (path !== undefined) {
      const echo = new Float32Array(caller.length);
      const base =
        this.inboundSamples - Math.round((path.delay_ms * providerFormat[this.provider].sample_rate) / 1000);
      for (let i = 0; i < caller.length; i++) {
        let y = 0;
        for (let k = 0; k < path.ir.length; k++) {
          const at = base + i - k;
          if (at >= 0 && at < this.playedLine.length) y += (path.ir[k] ?? 0) * (this.playedLine[at] ?? 0);
        }
        echo[i] = y;
      }
      this.echoSent.push(echo);
      mixed = Int16Array.from(caller, (x, i) =>
        Math.max(-32768, Math.min(32767, Math.round(x + (echo[i] ?? 0)))),
      );
    }
    this.inboundSamples += caller.length;
    this.sendMedia(encodeFor(this.provider, mixed));
  }

  /** One inbound media message (the caller's audio), as the provider frames it. */
  sendMedia(media: Buffer): void {
    this.inboundSent++;
    if (this.provider !== 'twilio') {
      this.ws.send(media, { binary: true });
      return;
    }
    const chunk = this.chunk++;
    this.json({
      event: 'media',
      sequenceNumber: String(this.seq++),
      media: {
        track: 'inbound',
        chunk: String(chunk),
        timestamp: String((chunk - 1) * 20),
        payload: media.toString('base64'),
      },
      streamSid: this.streamSid,
    });
    // both_tracks: Twilio also sends what the caller hears; it must not be processed.
    this.json({
      event: 'media',
      sequenceNumber: String(this.seq++),
      media: {
        track: 'outbound',
        chunk: String(chunk),
        timestamp: String((chunk - 1) * 20),
        payload: Buffer.alloc(media.length, 0x7f).toString('base64'),
      },
      streamSid: this.streamSid,
    });
  }

  dtmf(digit: string): void {
    if (this.provider === 'twilio')
      this.json({
        event: 'dtmf',
        streamSid: this.streamSid,
        sequenceNumber: String(this.seq++),
        dtmf: { track: 'inbound_track', digit },
      });
    else if (this.provider === 'vonage') this.json({ event: 'websocket:dtmf', digit, duration: 250 });
    else if (this.provider === 'jambonz') this.json({ event: 'dtmf', dtmf: digit, duration: '250' });
    else this.ws.send(`DTMF_END digit:${digit} channel_id:x.1`);
  }

  /** Ends the stream the way the provider does. */
  stop(): void {
    if (this.provider === 'twilio')
      this.json({
        event: 'stop',
        sequenceNumber: String(this.seq++),
        streamSid: this.streamSid,
        stop: { accountSid: 'AC0000', callSid: 'CA' },
      });
    else this.ws.close(1000);
  }

  json(message: object): void {
    this.ws.send(JSON.stringify(message));
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.onMedia(data);
      return;
    }
    const text = data.toString();
    this.texts.push(text);
    if (this.provider === 'asterisk') {
      if (text.startsWith('MARK_MEDIA ')) this.queue.push({ kind: 'mark', name: text.slice(11) });
      else if (text === 'FLUSH_MEDIA') this.clear();
      return;
    }
    const m = JSON.parse(text);
    if (this.provider === 'twilio') {
      if (m.event === 'media') this.onMedia(Buffer.from(m.media.payload, 'base64'));
      else if (m.event === 'mark') this.queue.push({ kind: 'mark', name: m.mark.name });
      else if (m.event === 'clear') this.clear();
    } else if (this.provider === 'vonage') {
      if (m.action === 'notify') this.queue.push({ kind: 'mark', name: m.payload.name });
      else if (m.action === 'clear') this.clear();
    } else if (m.type === 'mark') this.queue.push({ kind: 'mark', name: m.data.name });
    else if (m.type === 'killAudio') this.clear();
  }

  private onMedia(media: Buffer): void {
    this.mediaTimes.push(performance.now());
    this.queue.push({
      kind: 'media',
      audio: this.echoPath ? decodeFor(this.provider, media) : undefined,
    });
  }

  /** A chunk the caller hears now: it starts at the inbound position of this moment (the echo delay follows). */
  private heard(audio: Int16Array | undefined): void {
    if (audio === undefined || this.echoPath === undefined) return;
    const at = Math.max(this.heardEnd, this.inboundSamples);
    for (let i = 0; i < audio.length && at + i < this.playedLine.length; i++)
      this.playedLine[at + i] = audio[i] ?? 0;
    this.heardEnd = at + audio.length;
  }

  private echo(name: string, played: boolean): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.provider === 'twilio')
      this.json({
        event: 'mark',
        sequenceNumber: String(this.seq++),
        streamSid: this.streamSid,
        mark: { name },
      });
    else if (this.provider === 'vonage') this.json({ event: 'websocket:notify', payload: { name } });
    else if (this.provider === 'jambonz')
      this.json({ type: 'mark', data: { name, event: played ? 'playout' : 'cleared' } });
    else if (played) this.ws.send(`MEDIA_MARK_PROCESSED ${name}`);
  }

  /**
   * Plays what is due by the wall clock — one chunk per 20 ms since playback started, however late the
   * timer fires — reporting each mark once everything before it has played.
   */
  private playout(): void {
    const now = performance.now();
    const flushMarks = () => {
      while (this.queue[0]?.kind === 'mark') {
        const m = this.queue.shift() as { kind: 'mark'; name: string };
        this.marksPlayed.push(m.name);
        this.echo(m.name, true);
      }
    };
    flushMarks();
    if (this.queue.length === 0) {
      this.playStart = undefined;
      return;
    }
    if (this.playStart === undefined) {
      this.playStart = now;
      this.playedSinceStart = 0;
    }
    const due = Math.floor((now - this.playStart) / 20) + 1;
    while (this.playedSinceStart < due && this.queue[0]?.kind === 'media') {
      const item = this.queue.shift() as { kind: 'media'; audio: Int16Array | undefined };
      this.heard(item.audio);
      this.played++;
      this.playedSinceStart++;
      flushMarks();
    }
  }

  private clear(): void {
    this.playStart = undefined;
    this.clears.push(this.played);
    this.clearsAtMedia.push(this.mediaTimes.length);
    this.clearsAtInbound.push(this.inboundSent);
    const pending = this.queue
      .splice(0)
      .filter((i): i is { kind: 'mark'; name: string } => i.kind === 'mark');
    // Twilio: "Twilio will send back mark messages matching any remaining mark messages" — unplayed.
    if (this.provider === 'twilio' || this.provider === 'jambonz')
      for (const m of pending) this.echo(m.name, false);
    if (this.provider === 'vonage') this.json({ event: 'websocket:cleared' });
  }

  close(): void {
    this.ws.close(1000);
  }
}

/** A sink on loopback: records everything, and runs `script` on each connection. */
export interface SinkConnection {
  ws: WebSocket;
  texts: Array<Record<string, unknown>>;
  binaries: Buffer[];
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export class TestSink {
  readonly connections: SinkConnection[] = [];
  private constructor(
    readonly server: WebSocketServer,
    readonly url: string,
  ) {}

  static start(script: (c: SinkConnection) => void = () => {}): Promise<TestSink> {
    return new Promise((resolve) => {
      const server = new WebSocketServer({ host: '127.0.0.1', port: 0 }, () => {
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        const sink = new TestSink(server, `ws://127.0.0.1:${port}/bot`);
        server.on('connection', (ws) => {
          const waiters: Array<() => void> = [];
          const c: SinkConnection = {
            ws,
            texts: [],
            binaries: [],
            next: (type, timeoutMs = 10_000) =>
              new Promise((res, rej) => {
                let seen = 0;
                const check = () => {
                  for (; seen < c.texts.length; seen++) {
                    const t = c.texts[seen];
                    if (t?.type === type) return res(t);
                  }
                  waiters.push(check);
                };
                setTimeout(() => rej(new Error(`sink: no ${type} in ${timeoutMs} ms`)), timeoutMs).unref();
                check();
              }),
          };
          ws.on('message', (data: Buffer, isBinary: boolean) => {
            if (isBinary) c.binaries.push(Buffer.from(data));
            else c.texts.push(JSON.parse(data.toString()));
            for (const w of waiters.splice(0)) w();
          });
          ws.on('error', () => {});
          sink.connections.push(c);
          script(c);
        });
        resolve(sink);
      });
    });
  }

  close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** n samples of a sine at `hz`, amplitude `amp` (0..1), 16-bit. */
export function sine(n: number, rate: number, hz: number, amp = 0.3): Int16Array {
  return Int16Array.from({ length: n }, (_, i) =>
    Math.round(amp * 32767 * Math.sin((2 * Math.PI * hz * i) / rate)),
  );
}

/** Waits until `f()` is true (polling every 10 ms), or throws after `timeoutMs`. */
export async function until(f: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * n samples of a synthetic vowel: harmonics of a 140 Hz voice shaped by formants near 700, 1200 and
 * 2600 Hz, with a 4 Hz syllable envelope — enough for the WebRTC VAD to call it speech.
 */
export function voiced(n: number, rate: number, amp = 0.4): Int16Array {
  const f0 = 140;
  const formants = [700, 1200, 2600];
  const weights: number[] = [];
  for (let k = 1; k * f0 < Math.min(3600, rate / 2); k++) {
    weights.push(formants.reduce((w, f) => w + 1 / (1 + ((k * f0 - f) / 150) ** 2), 0) / Math.sqrt(k));
  }
  const norm = weights.reduce((a, b) => a + b, 0);
  return Int16Array.from({ length: n }, (_, i) => {
    const t = i / rate;
    let x = 0;
    weights.forEach((w, j) => {
      x += w * Math.sin(2 * Math.PI * (j + 1) * f0 * t);
    });
    const envelope = 0.6 + 0.4 * Math.sin(2 * Math.PI * 4 * t);
    return Math.round((amp * 32767 * envelope * x) / norm);
  });
}

/** A mono 16-bit recording of test/fixtures/audio/ at `rate` (an integer divisor of its own rate: averaged down). */
export function fixtureAt(name: string, rate: number): Int16Array {
  const { info, pcm } = readFixtureWav(name);
  const own = new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
  const k = info.sample_rate / rate;
  if (!Number.isInteger(k) || k < 1) throw new Error(`${name}: cannot take ${rate} Hz`);
  return Int16Array.from({ length: Math.floor(own.length / k) }, (_, i) => {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += own[i * k + j] ?? 0;
    return Math.round(sum / k);
  });
}

/**
 * A noisy recorded caller at `rate`: `leadSeconds` of the fixture noise alone, then the speech recording with the
 * noise (looped) under it — speech at -20 dBFS over noise at -30 dBFS, as from a phone in a busy room.
 */
export function noisyCaller(rate: number, leadSeconds: number): { samples: Int16Array; speechAt: number } {
  const speech = fixtureAt('speech-16k-mono.wav', rate);
  const noise = fixtureAt('noise-48k-mono.wav', rate);
  const speechAt = Math.round(leadSeconds * rate);
  // Looped forward then backward, so the loop has no click (a click reads as speech).
  const L = noise.length;
  const noiseAt = (i: number) => {
    const j = i % (2 * L);
    return noise[j < L ? j : 2 * L - 1 - j] ?? 0;
  };
  const samples = Int16Array.from({ length: speechAt + speech.length }, (_, i) => {
    const x = noiseAt(i) + (i >= speechAt ? (speech[i - speechAt] ?? 0) : 0);
    return Math.max(-32768, Math.min(32767, x));
  });
  return { samples, speechAt };
}

/**
 * Each playback chunk's offset from its slot, arrival − (t0 + n·20 ms), n counted from the start of its run.
 * Playback restarts a run after a stall of more than MAX_LAG_CHUNKS chunks (docs/telephony/README.md,
 * "Pacing"), so every gap that long between two arrivals may start a new run: it is split there. t0 is the
 * earliest of (arrival − n·20 ms) over the run's first 25 chunks (0.5 s), so a split where the server did
 * not restart finds the same grid again, and a first chunk that happened to arrive late does not make every
 * later one look early.
 */
export function scheduleOffsets(times: readonly number[]): { offsets: number[]; runs: number } {
  const starts = [0];
  for (let i = 1; i < times.length; i++) {
    if ((times[i] ?? 0) - (times[i - 1] ?? 0) > MAX_LAG_CHUNKS * CHUNK_MS) starts.push(i);
  }
  starts.push(times.length);
  const offsets: number[] = [];
  for (let r = 0; r + 1 < starts.length; r++) {
    const run = times.slice(starts[r], starts[r + 1]);
    const t0 = Math.min(...run.slice(0, 25).map((t, n) => t - n * CHUNK_MS));
    run.forEach((t, n) => {
      offsets.push(t - (t0 + n * CHUNK_MS));
    });
  }
  return { offsets, runs: starts.length - 1 };
}

/** One line of pacing figures: share within ±2 ms, |offset| percentiles, the earliest chunk. */
export function pacingSummary(offsets: readonly number[], runs: number): string {
  const abs = offsets.map(Math.abs);
  const within = abs.filter((d) => d <= 2).length;
  return (
    `${offsets.length} chunks in ${runs} run(s), ${((100 * within) / Math.max(1, offsets.length)).toFixed(1)} % within ±2 ms of t0 + n·20 ms; ` +
    `|offset| p50 ${quantile(abs, 0.5).toFixed(2)} p95 ${quantile(abs, 0.95).toFixed(2)} p99 ${quantile(abs, 0.99).toFixed(2)} ` +
    `max ${Math.max(...abs).toFixed(2)} ms; earliest ${Math.min(...offsets).toFixed(2)} ms`
  );
}
