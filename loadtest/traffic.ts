/**
 * Random realtime traffic (docs/limits.md): random message sequences — valid and broken control messages in
 * any order, random JSON, binary frames of random sizes, invalid UTF-8, oversized messages — sent to
 * either transport, and the check that every one ends in a valid answer or a catalogued close code.
 * Used by the adversarial suite (test/realtime/adversarial.test.ts) and the soak run (loadtest/soak.ts).
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { errorCatalog } from '../src/errors.js';

/** One client message: text, binary, or raw bytes sent as a text frame (possibly not UTF-8). */
export type Step =
  | { kind: 'text'; text: string }
  | { kind: 'binary'; size: number; fill: number }
  | { kind: 'raw'; bytes: Uint8Array };

export type Transport = 'ws' | 'uws';

const encodings = ['s16le', 'f32le', 'mulaw', 'alaw'];
const text = (value: unknown): Step => ({ kind: 'text', text: JSON.stringify(value) });

/** Random steps for a server whose MAX_FRAME_BYTES is `maxFrameBytes`. */
export function stepArb(maxFrameBytes: number): fc.Arbitrary<Step> {
  const start = fc
    .record({
      encoding: fc.oneof(fc.constantFrom(...encodings), fc.string({ maxLength: 8 })),
      sample_rate: fc.oneof(fc.constantFrom(8000, 16000, 48000), fc.integer({ min: -1, max: 400_000 })),
      channels: fc.oneof(fc.constantFrom(1, 2), fc.integer({ min: -1, max: 16 })),
    })
    .map((input) => text({ type: 'start', input }));
  const params = fc
    .record({
      node: fc.oneof(fc.constant('g'), fc.string({ maxLength: 70 })),
      params: fc.oneof(
        fc.record({ db: fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -100, max: 30 })) }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
      ),
    })
    .map((p) => text({ type: 'params', ...p }));
  const control = fc.constantFrom('flush', 'ping').map((type) => text({ type }));
  const binary = (size: fc.Arbitrary<number>) =>
    fc.record({ kind: fc.constant('binary' as const), size, fill: fc.integer({ min: 0, max: 255 }) });
  const oversized = fc.integer({ min: maxFrameBytes + 1, max: 2 * maxFrameBytes });
  // Weights out of ~100: what ends a session (stop, oversized, invalid UTF-8) is rare, so that sessions
  // live long enough for the rest to meet every state.
  return fc.oneof(
    { weight: 60, arbitrary: binary(fc.integer({ min: 0, max: 2048 })) },
    { weight: 8, arbitrary: binary(fc.integer({ min: 0, max: maxFrameBytes })) },
    { weight: 3, arbitrary: start },
    { weight: 6, arbitrary: params },
    { weight: 8, arbitrary: control },
    { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => text(v)) },
    { weight: 4, arbitrary: fc.string({ maxLength: 200 }).map((s): Step => ({ kind: 'text', text: s })) },
    {
      weight: 2,
      arbitrary: fc
        .integer({ min: 0, max: 500 })
        .map((depth): Step => ({ kind: 'text', text: '['.repeat(depth) + ']'.repeat(depth) })),
    },
    { weight: 1, arbitrary: fc.constant(text({ type: 'stop' })) },
    { weight: 1, arbitrary: binary(oversized) },
    { weight: 1, arbitrary: oversized.map((n): Step => ({ kind: 'text', text: 'x'.repeat(n) })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes): Step => ({ kind: 'raw', bytes })) },
  );
}

/** A random session: usually a valid start first, then random steps in any order. */
export function sequenceArb(maxFrameBytes: number, maxLength = 200): fc.Arbitrary<Step[]> {
  const validStart = fc
    .record({
      rate: fc.constantFrom(8000, 16000, 48000),
      channels: fc.constantFrom(1, 2),
      encoding: fc.constantFrom(...encodings),
    })
    .map(({ rate, channels, encoding }) =>
      text({ type: 'start', input: { encoding, sample_rate: rate, channels } }),
    );
  return fc
    .tuple(
      fc.option(validStart, { freq: 5 }),
      fc.array(stepArb(maxFrameBytes), { minLength: 1, maxLength, size: 'max' }),
    )
    .map(([first, rest]) => (first === null ? rest : [first, ...rest]));
}

const serverTypes = new Set([
  'ready',
  'error',
  'dropped',
  'params_applied',
  'flushed',
  'pong',
  'stats',
  'event',
]);

export interface Outcome {
  transport: Transport;
  sent: number;
  close: number | undefined;
  /** The HTTP status of a refused upgrade (e.g. 503 while the server sheds load). */
  refused: number | undefined;
  /** What is wrong with the answers, if anything. */
  problem: string | undefined;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Close codes a session may end with for random input (RFC 6455 §7.4.1, docs/protocol.md §6). */
function closeAllowed(
  code: number,
  transport: Transport,
  steps: Step[],
  maxFrameBytes: number,
  reset: boolean,
): boolean {
  if ([1000, 1001, 1007, 1008, 1009].includes(code)) return code !== 1007 || transport === 'ws';
  if (code !== 1006 || transport !== 'uws') return false;
  // uWebSockets.js closes the TCP connection soon after its close frame; a client still writing at full
  // speed may, rarely and only under load, get a reset before it reads that frame.
  if (reset) return true;
  // uWebSockets.js drops, without a close frame, text that is not UTF-8 and messages over its cap.
  return steps.some(
    (s) =>
      (s.kind === 'raw' && !isUtf8(s.bytes)) ||
      (s.kind === 'binary' && s.size > 2 * maxFrameBytes) ||
      (s.kind === 'text' && Buffer.byteLength(s.text) > 2 * maxFrameBytes),
  );
}

/**
 * Connects, sends every step without waiting, then a ping; resolves once the pong (or the close)
 * arrived and every text answer was checked.
 */
export function runCase(
  url: string,
  transport: Transport,
  steps: Step[],
  maxFrameBytes: number,
  timeoutMs = 15_000,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    let problem: string | undefined;
    let refused: number | undefined;
    let reset = false;
    let sent = 0;
    // Pings are answered in every state; the last pong is the answer to the final ping.
    let pongsDue = steps.filter((s) => s.kind === 'text' && s.text === '{"type":"ping"}').length + 1;
    let finished = false;
    const finish = (close: number | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (close === undefined) ws.terminate();
      resolve({ transport, sent, close, refused, problem });
    };
    const timer = setTimeout(() => {
      problem ??= `no pong and no close within ${timeoutMs} ms`;
      finish(undefined);
    }, timeoutMs);
    ws.on('error', (err) => {
      if (refused === undefined) problem ??= `socket error: ${err.message}`;
    });
    // `ws` ends the WebSocket with 1006 on a TCP error without emitting one: watch the socket itself.
    ws.on('upgrade', (res) => {
      res.socket.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true;
      });
    });
    ws.on('unexpected-response', (_req, res) => {
      refused = res.statusCode;
      finish(undefined);
    });
    const last: string[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      last.push(data.toString('utf8').slice(0, 120));
      if (last.length > 4) last.shift();
      let m: { type?: unknown; code?: unknown };
      try {
        m = JSON.parse(data.toString('utf8'));
      } catch {
        problem ??= `answer is not JSON: ${data.toString('utf8').slice(0, 80)}`;
        return;
      }
      if (typeof m.type !== 'string' || !serverTypes.has(m.type))
        problem ??= `unknown answer type ${String(m.type)}`;
      else if (m.type === 'error' && !(typeof m.code === 'string' && m.code in errorCatalog))
        problem ??= `error code not in the catalog: ${String(m.code)}`;
      if (m.type === 'pong' && --pongsDue === 0) ws.close(1000);
    });
    ws.on('close', (code) => {
      if (!closeAllowed(code, transport, steps, maxFrameBytes, reset) && !(code === 1000 || code === 1005)) {
        problem ??= `close code ${code} is not allowed for this input (${sent} of ${steps.length} sent${reset ? ', connection reset' : ''}; last answers ${last.join(' | ')})`;
      }
      finish(code);
    });
    ws.on('open', () => {
      for (const s of steps) {
        if (ws.readyState !== ws.OPEN) return;
        if (s.kind === 'text') ws.send(s.text);
        else if (s.kind === 'raw') ws.send(s.bytes, { binary: false });
        else ws.send(Buffer.alloc(s.size, s.fill), { binary: true });
        sent++;
      }
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'ping' }));
        sent++;
      }
    });
  });
}
