/**
 * WebSocket load generator for the realtime protocol (docs/protocol.md), in its own process so that its cost
 * is measured apart from the server's. Opens N sessions against one URL and streams real audio:
 *
 *   paced   each session sends one frame every `frame_ms`, driven by one shared timer wheel
 *   closed  each session sends its next frame as soon as the previous one is answered (window 1)
 *
 * `--protocol product` speaks the session protocol (start → ready, frames, stop → stats);
 * `--protocol echo` just sends frames to a raw echo server that answers each with the same bytes.
 *
 * Prints progress as JSON lines on stderr once a second and the report as one JSON line on stdout.
 * Every run is bounded: connect, stream for `--duration`, stop, and a hard deadline over all of it.
 * Only loopback URLs are accepted.
 *
 *   node --import tsx loadtest/stream-client.ts --url ws://127.0.0.1:8081/v1/pipelines/ID/stream \
 *     --sessions 100 --duration 10 [--mode paced|closed] [--protocol product|echo]
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Histogram, type Percentiles } from './histogram.js';

export interface ClientOptions {
  url: string;
  protocol: 'product' | 'echo';
  mode: 'paced' | 'closed';
  sessions: number;
  durationS: number;
  frameMs: number;
  wav: string;
  tickMs: number;
  connectConcurrency: number;
  label: string;
  progress: boolean;
}

/** Per-session stats message fields (docs/protocol.md §5) the report aggregates. */
interface ServerStats {
  frames_in?: number;
  frames_out?: number;
  frames_dropped?: number;
  latency?: { p50_ms: number; p95_ms: number; p99_ms: number; max_ms: number; count: number };
  engine_latency?: { p50_ms: number; p95_ms: number; p99_ms: number; max_ms: number; count: number };
}

export interface ClientReport {
  label: string;
  url: string;
  protocol: ClientOptions['protocol'];
  mode: ClientOptions['mode'];
  frame_ms: number;
  frame_bytes: number;
  sessions: {
    requested: number;
    opened: number;
    /** Open from the first frame to the end of the run, and (product) ended with their stats. */
    held: number;
    /** Upgrades refused, by HTTP status (docs/protocol.md §1: 503 over MAX_SESSIONS). */
    refused: Record<string, number>;
    connect_errors: number;
    /** Closed by the server while streaming, by close code. */
    closed_early: Record<string, number>;
  };
  /** Seconds from the first frame to the last one sent. */
  stream_s: number;
  frames: {
    sent: number;
    answered: number;
    /** Sent, never answered, not reported dropped. */
    lost: number;
    /** Reported by the server in `dropped` messages (queue over SESSION_QUEUE_MS). */
    dropped: number;
    frame_errors: number;
    /** Answers that were not the frame expected next (echo only: the product transforms the audio). */
    reordered: number | null;
    /** Binary messages beyond one per frame (the product's flush tail after `stop` excluded). */
    unexpected: number;
    events: number;
  };
  answered_per_s: number;
  rtt: Percentiles;
  /** Server-side received → sent, from each session's `stats` (product only). */
  server: {
    sessions: number;
    frames_in: number;
    frames_out: number;
    frames_dropped: number;
    p50_ms_median: number;
    p95_ms_median: number;
    p99_ms_median: number;
    p99_ms_max: number;
    max_ms: number;
    engine_p99_ms_median: number;
    engine_p99_ms_max: number;
  } | null;
  generator: {
    cpu_pct: number;
    rss_mb: number;
    eld_ms: { p50: number; p99: number; max: number };
    /** How late paced sends went out against their schedule: the generator's own bottleneck signal. */
    send_lag: Percentiles;
  };
  aborted: boolean;
}

interface Progress {
  t_s: number;
  held: number;
  sent: number;
  answered: number;
  closed_early: number;
  rtt_p99_ms: number;
  send_lag_p99_ms: number;
  eld_p99_ms: number;
}

/** Reads the interleaved PCM of a RIFF/WAVE file (PCM s16 only) and its format. */
export function readWav(path: string): { pcm: Buffer; sampleRate: number; channels: number } {
  const bytes = readFileSync(path);
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${path} is not a RIFF/WAVE file`);
  }
  let at = 12;
  let sampleRate = 0;
  let channels = 0;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      const format = bytes.readUInt16LE(body);
      channels = bytes.readUInt16LE(body + 2);
      sampleRate = bytes.readUInt32LE(body + 4);
      const bits = bytes.readUInt16LE(body + 14);
      if ((format !== 1 && format !== 0xfffe) || bits !== 16) throw new Error(`${path}: not 16-bit PCM`);
    } else if (id === 'data') {
      if (channels === 0) throw new Error(`${path}: data before fmt`);
      return { pcm: bytes.subarray(body, Math.min(body + size, bytes.length)), sampleRate, channels };
    }
    at = body + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

/** Frames sent whose send time is remembered; a session this far behind is hopeless anyway. */
const RING = 4096;
const CONNECT_TIMEOUT_MS = 10_000;
const ELD_RESOLUTION_MS = 5;
/** Event-loop delay beyond the sampling interval (the histogram counts the interval in), in ms. */
const eldMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - ELD_RESOLUTION_MS) * 1000) / 1000);
const STOP_TIMEOUT_MS = 15_000;

// RFC 6455 §5.3: a client must mask, but the key is the client's choice. An all-zero key lets `ws`
// skip the XOR pass and write the shared frame buffer as is: the generator stays cheap per message.
const zeroMask = (mask: Buffer) => {
  mask.fill(0);
};

class Session {
  ws: WebSocket | undefined;
  /** Set once the session may stream (open, and `ready` for the product). */
  streaming = false;
  stopping = false;
  closed = false;
  closeCode: number | undefined;
  gotStats = false;
  stats: ServerStats | undefined;
  sent = 0;
  answered = 0;
  /** Frame expected to be answered next. */
  nextAnswer = 0;
  readonly sentAt = new Float64Array(RING);
  /** Frames the server said it dropped or refused (rare), not yet passed by `nextAnswer`. */
  skipped: Set<number> | null = null;
  ready: (() => void) | undefined;
  onDone: (() => void) | undefined;

  constructor(
    readonly index: number,
    readonly offset: number,
  ) {}
}

export async function runClient(o: ClientOptions): Promise<ClientReport> {
  const url = new URL(o.url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(`only loopback targets are allowed, not ${url.hostname}`);
  }
  const wav = readWav(o.wav);
  const frameBytes = Math.round((wav.sampleRate * o.frameMs) / 1000) * wav.channels * 2;
  const chunks: Buffer[] = [];
  for (let at = 0; at + frameBytes <= wav.pcm.length; at += frameBytes) {
    chunks.push(Buffer.from(wav.pcm.subarray(at, at + frameBytes)));
  }
  if (chunks.length === 0) throw new Error(`${o.wav} is shorter than one frame`);

  const rtt = new Histogram();
  const rttWindow = new Histogram();
  const sendLag = new Histogram();
  const lagWindow = new Histogram();
  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  const refused: Record<string, number> = {};
  const closedEarly: Record<string, number> = {};
  let connectErrors = 0;
  let reordered = 0;
  let unexpected = 0;
  let dropped = 0;
  let frameErrors = 0;
  let events = 0;
  let sent = 0;
  let answered = 0;
  let aborted = false;
  let sendingDone = false;
  let streamStart = 0;
  let streamEnd = 0;

  const sessions: Session[] = [];
  for (let i = 0; i < o.sessions; i++) sessions.push(new Session(i, (i * 7) % chunks.length));

  const send = (s: Session, now: number): void => {
    const ws = s.ws;
    if (ws === undefined || s.closed || !s.streaming) return;
    s.sentAt[s.sent % RING] = now;
    s.sent++;
    sent++;
    ws.send(chunks[(s.offset + s.sent - 1) % chunks.length] as Buffer, { binary: true });
  };

  const skip = (s: Session, frame: number) => {
    s.skipped ??= new Set();
    s.skipped.add(frame);
  };

  const onBinary = (s: Session, data: Buffer) => {
    const now = performance.now();
    if (s.skipped !== null) {
      while (s.skipped.delete(s.nextAnswer)) s.nextAnswer++;
    }
    if (s.nextAnswer >= s.sent) {
      // After `stop` the product sends the flushed tail as one more binary message.
      if (!s.stopping) unexpected++;
      return;
    }
    const frame = s.nextAnswer++;
    const ms = now - (s.sentAt[frame % RING] ?? now);
    rtt.record(ms);
    rttWindow.record(ms);
    s.answered++;
    answered++;
    if (o.protocol === 'echo') {
      const expected = chunks[(s.offset + frame) % chunks.length] as Buffer;
      if (data.length !== expected.length || !data.equals(expected)) reordered++;
    }
    if (o.mode === 'closed' && !sendingDone && !s.stopping) send(s, now);
  };

  const onText = (s: Session, text: string) => {
    let m: { type?: string; frame?: number; frames?: number[] } & ServerStats;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (m.type) {
      case 'ready':
        s.ready?.();
        return;
      case 'event':
        events++;
        return;
      case 'dropped':
        for (const f of m.frames ?? []) skip(s, f);
        dropped += m.frames?.length ?? 0;
        return;
      case 'error':
        if (typeof m.frame === 'number') {
          skip(s, m.frame);
          frameErrors++;
        }
        return;
      case 'stats':
        s.gotStats = true;
        s.stats = m;
        return;
    }
  };

  const connect = (s: Session): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = () => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        connectErrors++;
        s.ws?.terminate();
        settle();
      }, CONNECT_TIMEOUT_MS);
      const ws = new WebSocket(o.url, {
        perMessageDeflate: false,
        maxPayload: 64 * 1024 * 1024,
        skipUTF8Validation: true,
        generateMask: zeroMask,
      });
      s.ws = ws;
      ws.on('unexpected-response', (_req, res) => {
        const status = String(res.statusCode ?? 0);
        refused[status] = (refused[status] ?? 0) + 1;
        res.resume();
        ws.terminate();
        settle();
      });
      ws.on('error', () => {
        if (!settled) connectErrors++;
        settle();
      });
      ws.on('open', () => {
        if (o.protocol === 'echo') {
          s.streaming = true;
          settle();
          return;
        }
        s.ready = () => {
          s.streaming = true;
          settle();
        };
        ws.send(
          JSON.stringify({
            type: 'start',
            input: { encoding: 's16le', sample_rate: wav.sampleRate, channels: wav.channels },
            output: { encoding: 's16le' },
          }),
        );
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) onBinary(s, data);
        else onText(s, data.toString('utf8'));
      });
      ws.on('close', (code) => {
        s.closed = true;
        s.closeCode = code;
        if (s.streaming && !s.stopping) {
          const key = String(code);
          closedEarly[key] = (closedEarly[key] ?? 0) + 1;
        }
        s.onDone?.();
        settle();
      });
    });

  // Connect with bounded concurrency: a burst of N handshakes measures the accept path, not streaming.
  let nextToConnect = 0;
  const connector = async () => {
    while (nextToConnect < sessions.length) {
      const s = sessions[nextToConnect++] as Session;
      await connect(s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.connectConcurrency, sessions.length) }, connector));
  const live = sessions.filter((s) => s.streaming && !s.closed);

  // Stream.
  const cpu0 = process.cpuUsage();
  eld.enable();
  streamStart = performance.now() + 20;
  const durationMs = o.durationS * 1000;
  const t0 = performance.now();
  let progressTimer: NodeJS.Timeout | undefined;
  if (o.progress) {
    progressTimer = setInterval(() => {
      const p: Progress = {
        t_s: Math.round((performance.now() - t0) / 100) / 10,
        held: live.filter((s) => !s.closed).length,
        sent,
        answered,
        closed_early: closedEarlyCount(closedEarly),
        rtt_p99_ms: Math.round(rttWindow.percentile(99) * 1000) / 1000,
        send_lag_p99_ms: Math.round(lagWindow.percentile(99) * 1000) / 1000,
        eld_p99_ms: eldMs(eld.percentile(99)),
      };
      rttWindow.reset();
      lagWindow.reset();
      process.stderr.write(`${JSON.stringify({ progress: p })}\n`);
    }, 1000);
  }

  await new Promise<void>((resolve) => {
    if (live.length === 0) {
      resolve();
      return;
    }
    if (o.mode === 'closed') {
      setTimeout(() => {
        const now = performance.now();
        for (const s of live) send(s, now);
        setTimeout(() => {
          sendingDone = true;
          resolve();
        }, durationMs);
      }, 20);
      return;
    }
    // Paced: a timer wheel. Session i sits in slot i % slots; slot k of frame n is due at
    // streamStart + n·frame_ms + k·tick_ms, so sends spread evenly over the frame period. Each tick
    // sends every slot that is due, catching up when the loop ran late (as a real client would).
    const slots = Math.max(1, Math.round(o.frameMs / o.tickMs));
    const bySlot: Session[][] = Array.from({ length: slots }, () => []);
    for (const s of live) bySlot[s.index % slots]?.push(s);
    const slotMs = o.frameMs / slots;
    const totalFrames = Math.max(1, Math.round(durationMs / o.frameMs));
    let frame = 0;
    let slot = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      for (;;) {
        const due = streamStart + frame * o.frameMs + slot * slotMs;
        if (now < due) break;
        const group = bySlot[slot] as Session[];
        if (group.length > 0) {
          const lag = now - due;
          sendLag.record(lag);
          lagWindow.record(lag);
          for (const s of group) send(s, now);
        }
        slot++;
        if (slot === slots) {
          slot = 0;
          frame++;
          if (frame === totalFrames) {
            clearInterval(tick);
            sendingDone = true;
            resolve();
            return;
          }
        }
      }
    }, o.tickMs);
  });
  streamEnd = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const cpuWallMs = streamEnd - t0;
  eld.disable();

  // Stop: the product flushes, answers every frame, sends stats and closes 1000; an echo server has
  // answered everything once in-flight frames are back.
  await new Promise<void>((resolve) => {
    const deadline = setTimeout(() => {
      aborted = true;
      resolve();
    }, STOP_TIMEOUT_MS);
    let open = 0;
    const done = () => {
      open--;
      if (open === 0) {
        clearTimeout(deadline);
        resolve();
      }
    };
    for (const s of live) {
      if (s.closed) continue;
      open++;
      s.onDone = done;
      s.stopping = true;
      if (o.protocol === 'product') {
        s.ws?.send(JSON.stringify({ type: 'stop' }));
      } else {
        const waitAnswers = () => {
          if (s.closed) return;
          if (s.nextAnswer >= s.sent || performance.now() - streamEnd > 5_000) s.ws?.close(1000, 'done');
          else setTimeout(waitAnswers, 10);
        };
        waitAnswers();
      }
    }
    if (open === 0) {
      clearTimeout(deadline);
      resolve();
    }
  });
  if (progressTimer) clearInterval(progressTimer);
  for (const s of sessions) if (!s.closed) s.ws?.terminate();

  const held = live.filter(
    (s) => s.stopping && (o.protocol === 'echo' ? s.closeCode === 1000 || s.closeCode === 1005 : s.gotStats),
  ).length;
  let lost = 0;
  for (const s of live) {
    let skippedAhead = 0;
    if (s.skipped) for (const f of s.skipped) if (f >= s.nextAnswer) skippedAhead++;
    lost += Math.max(0, s.sent - s.nextAnswer - skippedAhead);
  }

  const withStats = live.flatMap((s) => (s.stats?.latency ? [s.stats] : []));
  const median = (xs: number[]) => {
    if (xs.length === 0) return 0;
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  };
  const server =
    o.protocol === 'product'
      ? {
          sessions: withStats.length,
          frames_in: withStats.reduce((a, s) => a + (s.frames_in ?? 0), 0),
          frames_out: withStats.reduce((a, s) => a + (s.frames_out ?? 0), 0),
          frames_dropped: withStats.reduce((a, s) => a + (s.frames_dropped ?? 0), 0),
          p50_ms_median: median(withStats.map((s) => s.latency?.p50_ms ?? 0)),
          p95_ms_median: median(withStats.map((s) => s.latency?.p95_ms ?? 0)),
          p99_ms_median: median(withStats.map((s) => s.latency?.p99_ms ?? 0)),
          p99_ms_max: Math.max(0, ...withStats.map((s) => s.latency?.p99_ms ?? 0)),
          max_ms: Math.max(0, ...withStats.map((s) => s.latency?.max_ms ?? 0)),
          engine_p99_ms_median: median(withStats.map((s) => s.engine_latency?.p99_ms ?? 0)),
          engine_p99_ms_max: Math.max(0, ...withStats.map((s) => s.engine_latency?.p99_ms ?? 0)),
        }
      : null;

  const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    label: o.label,
    url: o.url,
    protocol: o.protocol,
    mode: o.mode,
    frame_ms: o.frameMs,
    frame_bytes: frameBytes,
    sessions: {
      requested: o.sessions,
      opened: live.length,
      held,
      refused,
      connect_errors: connectErrors,
      closed_early: closedEarly,
    },
    stream_s: round((streamEnd - streamStart) / 1000),
    frames: {
      sent,
      answered,
      lost,
      dropped,
      frame_errors: frameErrors,
      reordered: o.protocol === 'echo' ? reordered : null,
      unexpected,
      events,
    },
    answered_per_s: round(answered / Math.max(0.001, (streamEnd - streamStart) / 1000), 1),
    rtt: rtt.summary(),
    server,
    generator: {
      cpu_pct: round(((cpu.user + cpu.system) / 1000 / cpuWallMs) * 100, 1),
      rss_mb: round(process.memoryUsage.rss() / 2 ** 20, 1),
      eld_ms: {
        p50: eldMs(eld.percentile(50)),
        p99: eldMs(eld.percentile(99)),
        max: eldMs(eld.max),
      },
      send_lag: sendLag.summary(),
    },
    aborted,
  };
}

function closedEarlyCount(closed: Record<string, number>): number {
  return Object.values(closed).reduce((a, b) => a + b, 0);
}

const defaultWav = fileURLToPath(new URL('../test/fixtures/audio/tones-48k-stereo.wav', import.meta.url));

export function parseClientArgs(argv: string[]): ClientOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      protocol: { type: 'string', default: 'product' },
      mode: { type: 'string', default: 'paced' },
      sessions: { type: 'string', default: '100' },
      duration: { type: 'string', default: '10' },
      'frame-ms': { type: 'string', default: '20' },
      wav: { type: 'string', default: defaultWav },
      'tick-ms': { type: 'string', default: '1' },
      'connect-concurrency': { type: 'string', default: '64' },
      label: { type: 'string', default: '' },
      progress: { type: 'boolean', default: false },
    },
  });
  if (values.url === undefined) throw new Error('--url is required');
  const protocol = values.protocol;
  const mode = values.mode;
  if (protocol !== 'product' && protocol !== 'echo') throw new Error('--protocol is product or echo');
  if (mode !== 'paced' && mode !== 'closed') throw new Error('--mode is paced or closed');
  const num = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be in ${min}..${max}`);
    return n;
  };
  return {
    url: values.url,
    protocol,
    mode,
    sessions: Math.floor(num('sessions', values.sessions, 1, 20_000)),
    durationS: num('duration', values.duration, 0.1, 600),
    frameMs: num('frame-ms', values['frame-ms'], 1, 1000),
    wav: values.wav,
    tickMs: num('tick-ms', values['tick-ms'], 1, 100),
    connectConcurrency: Math.floor(num('connect-concurrency', values['connect-concurrency'], 1, 1000)),
    label: values.label,
    progress: values.progress,
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const options = parseClientArgs(process.argv.slice(2));
  // Hard bound over the whole run, whatever happens: connect + stream + stop + slack.
  const hardMs =
    Math.ceil(options.sessions / options.connectConcurrency) * CONNECT_TIMEOUT_MS +
    options.durationS * 1000 +
    STOP_TIMEOUT_MS +
    10_000;
  setTimeout(() => {
    process.stderr.write(`stream-client: hard deadline of ${hardMs} ms reached\n`);
    process.exit(3);
  }, hardMs).unref();
  runClient(options).then(
    (report) => {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`stream-client: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
