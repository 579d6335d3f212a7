/**
 * The only importer of `native/`: a typed facade over the napi-rs addon, its buffer contracts and the
 * mapping of native errors to catalog codes.
 *
 * The engine delivers finished outputs in batches on the JS thread; this module routes each output to
 * the handler of its session. No sample is touched here: bytes go in, bytes come out.
 */
import { createRequire } from 'node:module';
import { fromNative, RemoteMediaError } from './errors.js';

/** The generated binding (native/binding/index.d.ts). */
type Binding = typeof import('../native/binding/index.js');
export type PlanInfo = import('../native/binding/index.js').PlanInfo;
export type WorkerInfo = import('../native/binding/index.js').WorkerInfo;
export type EngineBuckets = import('../native/binding/index.js').EngineBuckets;
export type BucketCounts = import('../native/binding/index.js').BucketCounts;

/** Percentiles of a latency histogram, microseconds. */
export interface LatencyPercentiles {
  count: number;
  p50Us: number;
  p95Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** A session's counters and latency percentiles (docs/protocol.md `stats`, docs/rest.md `/v1/sessions`). */
export interface SessionStats {
  framesIn: number;
  framesOut: number;
  framesDropped: number;
  frameErrors: number;
  events: number;
  /** Sample frames received. */
  samplesIn: number;
  /** Non-finite input samples (NaN, ±Inf) replaced by 0. */
  nonFiniteSamples: number;
  /** Hand-off → processing start. */
  queueWait: LatencyPercentiles;
  /** Processing per message. */
  process: LatencyPercentiles;
  /** Hand-off → answer ready. */
  engine: LatencyPercentiles;
  /** Received by the host → answer sent (recorded with `recordLatencies`). */
  endToEnd: LatencyPercentiles;
  nodes: Array<{ id: string; type: string; process: LatencyPercentiles }>;
}

/** `NativeSession.statsInto`'s layout: 7 counters, then 6 values per histogram. */
const STATS_COUNTERS = 7;
const STATS_BLOCK = 6;
/** Where `statsInto` writes; every read copies out of it at once. */
let statsScratch = new Float64Array(STATS_COUNTERS + STATS_BLOCK * 16);

function percentilesAt(v: Float64Array, block: number): LatencyPercentiles {
  const o = STATS_COUNTERS + STATS_BLOCK * block;
  return {
    count: v[o] as number,
    p50Us: v[o + 1] as number,
    p95Us: v[o + 2] as number,
    p99Us: v[o + 3] as number,
    p999Us: v[o + 4] as number,
    maxUs: v[o + 5] as number,
  };
}

/**
 * A native session's counters and percentiles, read through its flat `statsInto` layout; `nodes` is its
 * `statsNodes()`, which does not change. Also used by `npm run bench:native` on the bare binding.
 */
export function readNativeStats(
  native: { statsInto(out: Float64Array): number },
  nodes: ReadonlyArray<{ id: string; type: string }>,
): SessionStats {
  const len = native.statsInto(statsScratch);
  if (len > statsScratch.length) {
    statsScratch = new Float64Array(len);
    native.statsInto(statsScratch);
  }
  const v = statsScratch;
  return {
    framesIn: v[0] as number,
    framesOut: v[1] as number,
    framesDropped: v[2] as number,
    frameErrors: v[3] as number,
    events: v[4] as number,
    samplesIn: v[5] as number,
    nonFiniteSamples: v[6] as number,
    queueWait: percentilesAt(v, 0),
    process: percentilesAt(v, 1),
    engine: percentilesAt(v, 2),
    endToEnd: percentilesAt(v, 3),
    nodes: nodes.map((n, i) => ({ id: n.id, type: n.type, process: percentilesAt(v, 4 + i) })),
  };
}

const require = createRequire(import.meta.url);
const binding: Binding = require('../native/binding/index.js');

/**
 * The per-frame calls, exported beside the classes as plain Node-API functions that take a handle
 * instead of `this` (native/binding/src/fast.rs: a napi-rs method's per-call checks cost ten times
 * the call itself). The generated index.d.ts does not list them.
 */
interface FastCalls {
  fastPush(session: number, message: Uint8Array): number[] | null;
  fastWake(engine: number): null;
  fastTakeBatch(engine: number, out: Uint8Array): number;
}
const fast = binding as unknown as FastCalls;

/** Which artifact the loader picked: always `'native'` here (no WASI build is shipped). */
export const bindingTarget = binding.__napiBindingTarget;

/** Output kinds, as the native pool numbers them (`remotemedia_dsp::pool::OutputKind`). */
export const OutputKind = {
  Audio: 0,
  FrameError: 1,
  Flushed: 2,
  ParamsApplied: 3,
  Stopped: 4,
  Failed: 5,
  /** Frames that waited longer than the queue limit (docs/protocol.md (queue bound)): `frame` is the first, `count` how many. */
  Dropped: 6,
} as const;
export type OutputKindValue = (typeof OutputKind)[keyof typeof OutputKind];

/** One finished output of a session. */
export interface EngineOutput {
  session: number;
  kind: OutputKindValue;
  /** The message number this answers (the first dropped one for `Dropped`), or -1. */
  frame: number;
  /**
   * Tag of the control request this answers (`ParamsApplied`); for `Audio` and `Flushed` of a session
   * that keeps its answers (`SessionOptions.keepAnswerBytes`), where the answer starts among them
   * (`EngineSession.readAnswer`).
   */
  tag: number;
  /** Frames in a `Dropped` run. */
  count: number;
  /**
   * Encoded audio (`Audio`, possibly empty, and `Flushed`): a view into the engine's hand-back buffer,
   * valid only until the handler returns (the next batch overwrites it). A handler that keeps audio
   * beyond its call copies it.
   */
  audio: Buffer | undefined;
  /** Event wire messages, newline-separated, when there are any. */
  events: string | undefined;
  errorCode: string | undefined;
  errorMessage: string | undefined;
}

/** Layout of a batch from the engine (native/binding/src/lib.rs `OutputBatch`, `pool::word`). */
const RECORD_WORDS = 8;
const NO_FRAME = 0xffffffff;

/** A session edge's encoding (docs/protocol.md §2): PCM samples, or one Opus packet per message. */
export type Encoding = 's16le' | 'f32le' | 'mulaw' | 'alaw' | 'opus';

export interface StreamFormat {
  encoding: Encoding;
  sample_rate: number;
  channels: number;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

/** Interleaved s16le PCM to f32 in [-1, 1). Throws RM_ERR_BAD_AUDIO on an odd byte count. */
export function s16leToF32(pcm: Buffer): Float32Array {
  return call(() => binding.s16leToF32(pcm));
}

/** Upper bounds (seconds) of the buckets `Engine.buckets()` counts at: 5 µs to 1 s. */
export function engineBucketSeconds(): number[] {
  return binding.engineBucketSeconds();
}

/** Node types the native engine can build. */
export function nativeNodeTypes(): string[] {
  return binding.nodeTypes();
}

/** Output format and algorithmic latency of a plan, as the engine builds it. */
export function inspectPlan(plan: object): PlanInfo {
  return call(() => binding.inspectPlan(JSON.stringify(plan)));
}

/** Makes the `__panic` and `__stall` fault-injection nodes buildable (isolation tests only). */
export function enableFaultNodes(): void {
  binding.enableFaultNodes();
}

export interface WavInfo {
  sample_rate: number;
  channels: number;
  encoding: 's16le' | 'f32le';
  data_offset: number;
  data_bytes: number;
}

/** Reads a WAV header; throws RM_ERR_EMPTY_AUDIO for no bytes at all, RM_ERR_BAD_WAV for anything else it cannot read. */
export function parseWav(bytes: Buffer): WavInfo {
  if (bytes.length === 0)
    throw new RemoteMediaError('RM_ERR_EMPTY_AUDIO', 'the audio is empty: send a WAV file');
  const w = call(() => binding.parseWav(bytes));
  return {
    sample_rate: w.sampleRate,
    channels: w.channels,
    encoding: w.encoding as WavInfo['encoding'],
    data_offset: w.dataOffset,
    data_bytes: w.dataBytes,
  };
}

/** A 44-byte WAV header. */
/** Callbacks armed on the process's precise clock, by id. */
const armed = new Map<number, () => void>();
let clock: InstanceType<Binding['PreciseClock']> | undefined;
let nextTimerId = 0;

function fireDue(): void {
  if (clock === undefined) return;
  for (const id of clock.takeFired()) {
    const fire = armed.get(id);
    if (fire === undefined) continue; // cleared meanwhile
    armed.delete(id);
    try {
      fire();
    } catch (err) {
      // As a throwing setTimeout callback would: an uncaught exception, not a silent loss. The clock's
      // native callback must not see it (the addon treats an exception thrown into it as fatal).
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

/**
 * `setTimeout` with sub-millisecond precision (native/binding/src/clock.rs): libuv fires a timer up to
 * about 1.25 ms late, which is most of a 20 ms playback chunk's ±2 ms budget. One clock thread per
 * process wakes the JS thread when a deadline passes. Does not keep the process alive. Returns an id
 * for `clearPreciseTimeout`.
 */
export function setPreciseTimeout(fire: () => void, delayMs: number): number {
  clock ??= call(() => new binding.PreciseClock(fireDue));
  nextTimerId = nextTimerId >= 0xffff_ffff ? 1 : nextTimerId + 1;
  const id = nextTimerId;
  call(() => clock?.arm(id, delayMs));
  armed.set(id, fire);
  return id;
}

/** Cancels a `setPreciseTimeout` (its deadline then passes unheard). */
export function clearPreciseTimeout(id: number): void {
  armed.delete(id);
}

export function wavHeader(
  sampleRate: number,
  channels: number,
  encoding: 's16le' | 'f32le',
  dataBytes: number,
) {
  return call(() => binding.wavHeader(sampleRate, channels, encoding, dataBytes));
}

export type OutputHandler = (output: EngineOutput) => void;

export interface SessionOptions {
  /** Largest binary message the session accepts (sizes its buffers). */
  maxMessageBytes: number;
  /** Holds the session's writes back while a batch's outputs for it are handled (uWS `cork`). */
  cork?: ((fn: () => void) => void) | undefined;
  /** Longest a frame may wait (wall clock) before the engine starts it, else it is dropped
   * (docs/protocol.md (queue bound)); null = never drop (batch jobs). */
  queueLimitMs: number | null;
  /**
   * Keep at least this many bytes of the latest answers in the engine, for a resume (docs/protocol.md §8):
   * the worker copies each answer as it makes it, and `readAnswer` reads one back. Default: none.
   */
  keepAnswerBytes?: number | undefined;
}

/** Host-side latencies handed to the engine per call (see `EngineSession.recordLatency`). */
const LATENCY_BATCH = 64;

/** A streaming session on the engine; outputs reach `handler` in order. */
export class EngineSession {
  readonly id: number;
  readonly worker: number;
  readonly info: PlanInfo;
  private readonly handle: number;

  constructor(
    private readonly native: InstanceType<Binding['NativeSession']>,
    private readonly engine: Engine,
  ) {
    this.handle = native.handle;
    this.id = native.id;
    this.worker = native.worker;
    this.info = native.info;
  }

  /**
   * Queues one message; returns the numbers of queued messages dropped for waiting too long, or null.
   * The worker is woken once at the end of this turn of the event loop, for every message queued in it.
   */
  push(message: Uint8Array): number[] | null {
    // The per-frame path: no closure per message (`call` does the same for the rest).
    let dropped: number[] | null;
    try {
      dropped = fast.fastPush(this.handle, message);
    } catch (err) {
      throw fromNative(err);
    }
    this.engine.wakeSoon();
    return dropped;
  }

  setParams(node: string, params: Record<string, unknown>, tag: number): void {
    call(() => this.native.setParams(node, JSON.stringify(params), tag));
  }

  flush(): void {
    call(() => this.native.flush());
  }

  stop(): void {
    call(() => this.native.stop());
  }

  /**
   * Ends the session at once and forgets its handler. Its stats as they stand stay readable; the
   * engine gives the session's histograms and buffers back now, not when this object is collected.
   */
  close(): void {
    this.flushLatencies();
    this.final ??= this.stats();
    this.native.close();
    this.engine.forget(this.id);
  }

  get closed(): boolean {
    return this.native.closed;
  }

  /**
   * A kept answer (`SessionOptions.keepAnswerBytes`) of `length` bytes that started at `at` (its
   * output's tag), copied; undefined once the engine has written over it.
   */
  readAnswer(at: number, length: number): Buffer | undefined {
    return this.native.readAnswer(at, length) ?? undefined;
  }

  /** Counters and latency percentiles: live until `close`, as they stood then after it. */
  stats(): SessionStats {
    if (this.final !== undefined) return this.final;
    this.flushLatencies();
    this.statsNodes ??= this.native.statsNodes();
    return readNativeStats(this.native, this.statsNodes);
  }

  private final: SessionStats | undefined;
  /** The nodes of the stats layout, read once. */
  private statsNodes: Array<{ id: string; type: string }> | undefined;

  /**
   * Records one message's host-side latency (received → answer sent), nanoseconds. They are handed
   * to the engine LATENCY_BATCH at a time (one call instead of one per frame), and before any read.
   */
  recordLatency(ns: number): void {
    this.latencies[this.pendingLatencies++] = ns;
    if (this.pendingLatencies === LATENCY_BATCH) this.flushLatencies();
  }

  private readonly latencies = new Float64Array(LATENCY_BATCH);
  private pendingLatencies = 0;

  private flushLatencies(): void {
    if (this.pendingLatencies === 0) return;
    this.native.recordLatencies(this.latencies.subarray(0, this.pendingLatencies));
    this.pendingLatencies = 0;
  }
}

export interface EngineOptions {
  workers: number;
  pinCores: boolean;
  /** Microseconds an idle worker polls for work before it parks (default 0). */
  spinUs?: number;
}

/** First size of the hand-back buffer: a full batch of small answers (pool.rs MAX_BATCH_*) fits. */
const HAND_BACK_BYTES = 128 * 1024;
/**
 * A turn of the event loop that has queued messages for this long wakes the workers without waiting for
 * its end (see `Engine.wakeSoon`); checked every WAKE_CHECK_EVERY messages. Waking every 32 messages
 * instead, without the clock, cost the closed loop's many short turns a quarter of their frames/s (0.36×
 * the echo against 0.47×; README "Benchmarks").
 */
const WAKE_WITHIN_TURN_MS = 1;
const WAKE_CHECK_EVERY = 32;

interface OpenSession {
  session: EngineSession;
  handler: OutputHandler;
  cork: SessionOptions['cork'];
}

/** The native worker pool. One per process. */
export class Engine {
  private readonly native: InstanceType<Binding['Engine']>;
  private readonly handle: number;
  /** Open sessions by id, with their handlers (a session whose handler throws is closed). */
  private readonly open = new Map<number, OpenSession>();

  constructor(options: EngineOptions) {
    this.native = call(
      () =>
        new binding.Engine(
          { workers: options.workers, pinCores: options.pinCores, spinUs: options.spinUs },
          () => this.drain(),
        ),
    );
    this.handle = this.native.handle;
  }

  /**
   * Where every batch is copied on its way back: one buffer, reused (grown when a batch needs more),
   * so the hand-back allocates nothing for the garbage collector to track — answers arrive at
   * hundreds of MB/s, and memory allocated at that rate forced a full collection every few hundred
   * milliseconds, with pauses up to ~90 ms.
   */
  private handBack = Buffer.allocUnsafeSlow(HAND_BACK_BYTES);
  /** The same memory as u32 words (the index is little-endian; so is every host this runs on). */
  private handBackWords = new Uint32Array(this.handBack.buffer, 0, HAND_BACK_BYTES / 4);

  /** Set while `drain` dispatches: a handler that pushes must not take the next batch into the buffer being read. */
  private draining = false;

  /** Takes every batch the workers have ready and dispatches it. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      this.drainAll();
    } finally {
      this.draining = false;
    }
  }

  private drainAll(): void {
    for (;;) {
      const bytes = fast.fastTakeBatch(this.handle, this.handBack);
      if (bytes === 0) return;
      if (bytes < 0) {
        const size = Math.max(-bytes, this.handBack.length * 2);
        this.handBack = Buffer.allocUnsafeSlow(size + ((4 - (size % 4)) % 4));
        this.handBackWords = new Uint32Array(this.handBack.buffer, 0, this.handBack.length / 4);
        continue;
      }
      this.dispatch(this.handBack, this.handBackWords);
    }
  }

  private wakeScheduled = false;
  /** Messages queued since the workers were last woken, or since the clock was last read. */
  private unwoken = 0;
  /** When the workers were last woken (performance.now()), or this turn's first message queued. */
  private wokenAt = 0;
  private readonly wakeNow = () => {
    this.wakeScheduled = false;
    fast.fastWake(this.handle);
  };

  /**
   * @internal Wakes the workers given messages, once, after every socket read of this turn of the
   * event loop (setImmediate runs after the poll phase): one futex call and context switch per
   * worker per turn instead of one per message. A turn that has run WAKE_WITHIN_TURN_MS since its first
   * message (a server reading many sockets, or falling behind) also wakes them and takes back the
   * answers that are ready, so that its first frames do not wait in their queues for the turn to
   * end. The clock is read once every WAKE_CHECK_EVERY messages.
   */
  wakeSoon(): void {
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      this.unwoken = 0;
      this.wokenAt = performance.now();
      setImmediate(this.wakeNow);
    } else if (++this.unwoken >= WAKE_CHECK_EVERY) {
      this.unwoken = 0;
      const now = performance.now();
      if (now - this.wokenAt < WAKE_WITHIN_TURN_MS) return;
      this.wokenAt = now;
      fast.fastWake(this.handle);
      this.drain();
    }
  }

  /** Exceptions caught from output handlers (each closed its session); see `dispatch`. */
  dispatchErrors = 0;

  /**
   * Hands one worker's batch to the sessions' handlers, record by record. A batch is a u32 record
   * count, RECORD_WORDS u32 per record (session, kind, frame low, frame high, tag, payload offset,
   * audio bytes, text bytes), then the payloads; audio reaches the handler as a view into it, without
   * a copy. The addon treats an exception thrown back into it as fatal, so each handler is guarded:
   * one that throws loses its session (closed here, counted in `dispatchErrors`) and every other
   * output of the batch is still delivered.
   */
  private dispatch(batch: Buffer, words: Uint32Array): void {
    const n = words[0] as number;
    // The index starts at word 1.
    const index = words.subarray(1, 1 + n * RECORD_WORDS);
    const base = 4 + n * RECORD_WORDS * 4;
    let r = 0;
    while (r < n) {
      const id = index[r * RECORD_WORDS] as number;
      // A session's consecutive records form a run, handled under one cork of its socket.
      let end = r + 1;
      while (end < n && index[end * RECORD_WORDS] === id) end++;
      const entry = this.open.get(id);
      // An audio answer without events, alone in its run, is one write whether corked or not.
      const w = r * RECORD_WORDS;
      const oneWrite = end === r + 1 && index[w + 1] === OutputKind.Audio && index[w + 7] === 0;
      if (entry === undefined) {
        // closed meanwhile: its outputs have nowhere to go
      } else if (oneWrite || entry.cork === undefined) {
        for (let k = r; k < end; k++) this.deliver(entry, id, batch, index, base, k);
      } else {
        const from = r;
        try {
          entry.cork(() => {
            for (let k = from; k < end; k++) this.deliver(entry, id, batch, index, base, k);
          });
        } catch {
          this.dispatchErrors += 1;
          entry.session.close();
        }
      }
      r = end;
    }
  }

  private deliver(
    entry: OpenSession,
    id: number,
    batch: Buffer,
    index: Uint32Array,
    base: number,
    r: number,
  ) {
    if (!this.open.has(id)) return; // closed by an earlier record of the run
    const w = r * RECORD_WORDS;
    const kind = index[w + 1] as OutputKindValue;
    const lo = index[w + 2] as number;
    const hi = index[w + 3] as number;
    const tag = index[w + 4] as number;
    const at = base + (index[w + 5] as number);
    const audioEnd = at + (index[w + 6] as number);
    const textEnd = audioEnd + (index[w + 7] as number);
    const text = textEnd > audioEnd ? batch.toString('utf8', audioEnd, textEnd) : undefined;
    const error =
      kind === OutputKind.FrameError ||
      kind === OutputKind.Failed ||
      (kind === OutputKind.ParamsApplied && text !== undefined);
    const nl = error && text !== undefined ? text.indexOf('\n') : -1;
    const out: EngineOutput = {
      session: id,
      kind,
      frame: lo === NO_FRAME && hi === NO_FRAME ? -1 : hi * 2 ** 32 + lo,
      tag,
      count: kind === OutputKind.Dropped ? tag : 0,
      audio:
        kind === OutputKind.Audio || kind === OutputKind.Flushed ? batch.subarray(at, audioEnd) : undefined,
      events: error ? undefined : text,
      errorCode: error ? (nl === -1 ? text : text?.slice(0, nl)) : undefined,
      errorMessage: error && nl !== -1 ? text?.slice(nl + 1) : undefined,
    };
    if (kind === OutputKind.Stopped || kind === OutputKind.Failed) this.forget(id);
    try {
      entry.handler(out);
    } catch {
      this.dispatchErrors += 1;
      entry.session.close();
    }
  }

  /** @internal */
  forget(id: number): void {
    this.open.delete(id);
  }

  /**
   * Every frame's queue wait and per-node processing time since the engine started, as cumulative
   * counts at `engineBucketSeconds()`: one read per worker, whatever the number of sessions.
   */
  buckets(): EngineBuckets {
    return this.native.buckets();
  }

  workers(): WorkerInfo[] {
    return this.native.workers();
  }

  /**
   * The cores this (the JS) thread was confined to when the engine started: with `pinCores` and fewer
   * workers than cores, the ones no worker runs on (docs/engine.md, "Threads and cores"). Empty when
   * it was left alone.
   */
  get hostCores(): number[] {
    return this.native.hostCores;
  }

  /**
   * Worker health from each worker's heartbeat (it beats between items and every 100 ms while idle):
   * `stalled` lists the workers that have not beaten for `stallMs` — stuck in one item, or gone.
   */
  health(stallMs: number): { ok: boolean; stalled: number[] } {
    const stalled = this.native
      .workers()
      .filter((w) => w.sinceBeatMs >= stallMs)
      .map((w) => w.index);
    return { ok: stalled.length === 0, stalled };
  }

  /** Builds a session for `plan` (negotiated for `input`); throws RM_ERR_BAD_PLAN and friends. */
  createSession(
    plan: object,
    input: StreamFormat,
    output: { encoding: Encoding },
    options: SessionOptions,
    handler: OutputHandler,
  ): EngineSession {
    const native = call(() =>
      this.native.createSession(
        JSON.stringify(plan),
        { encoding: input.encoding, sampleRate: input.sample_rate, channels: input.channels },
        output.encoding,
        options.maxMessageBytes,
        options.queueLimitMs ?? undefined,
      ),
    );
    if (options.keepAnswerBytes) {
      try {
        native.keepAnswers(options.keepAnswerBytes);
      } catch (err) {
        native.close();
        throw fromNative(err);
      }
    }
    const session = new EngineSession(native, this);
    this.open.set(session.id, { session, handler, cork: options.cork });
    return session;
  }

  /**
   * Runs a whole buffer of interleaved audio through `plan` on the worker pool (the same executor as
   * streaming) and resolves with the concatenated output and every event. The input is handed over
   * in one-second messages; the result does not depend on that size (chunk-size invariance).
   */
  processBatch(
    plan: object,
    input: StreamFormat,
    pcm: Uint8Array,
    outputEncoding: Encoding,
    onProgress?: (doneBytes: number, totalBytes: number) => void,
  ): Promise<BatchResult> {
    const bytesPerFrame =
      input.channels * (input.encoding === 's16le' ? 2 : input.encoding === 'f32le' ? 4 : 1);
    const chunkBytes = bytesPerFrame * input.sample_rate;
    const audio: Buffer[] = [];
    const events: string[] = [];
    // Outputs arrive through a weak thread-safe function; keep the loop alive until the job ends.
    const keepAlive = setInterval(() => {}, 1 << 30);
    return new Promise<BatchResult>((resolve, reject) => {
      // A plan the engine refuses throws here, synchronously: the promise rejects, the timer must go.
      let session: EngineSession;
      try {
        session = this.createSession(
          plan,
          input,
          { encoding: outputEncoding },
          { maxMessageBytes: chunkBytes, queueLimitMs: null },
          (out) => {
            if (out.kind === OutputKind.Audio && onProgress) {
              onProgress(Math.min(pcm.length, (out.frame + 1) * chunkBytes), pcm.length);
            }
            // The view is valid only during this call.
            if (out.audio) audio.push(Buffer.from(out.audio));
            if (out.events) events.push(out.events);
            if (out.kind === OutputKind.FrameError || out.kind === OutputKind.Failed) {
              clearInterval(keepAlive);
              session.close();
              reject(new RemoteMediaError('RM_ERR_NATIVE', out.errorMessage ?? 'batch processing failed'));
            } else if (out.kind === OutputKind.Stopped) {
              clearInterval(keepAlive);
              resolve({
                format: { sample_rate: session.info.sampleRate, channels: session.info.channels },
                latency_ms: session.info.latencyMs,
                audio: Buffer.concat(audio),
                events: events.flatMap((text) =>
                  text
                    .split('\n')
                    .filter((l) => l.length > 0)
                    .map((l) => JSON.parse(l)),
                ),
              });
            }
          },
        );
      } catch (err) {
        clearInterval(keepAlive);
        throw err;
      }
      for (let at = 0; at < pcm.length; at += chunkBytes) {
        session.push(pcm.subarray(at, Math.min(at + chunkBytes, pcm.length)));
      }
      session.stop();
    });
  }

  /** Stops the workers; sessions get no further answers. */
  shutdown(): void {
    this.native.shutdown();
    this.open.clear();
  }
}

export interface BatchResult {
  format: { sample_rate: number; channels: number };
  latency_ms: number;
  audio: Buffer;
  events: Array<Record<string, unknown>>;
}
