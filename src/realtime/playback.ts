/**
 * Playback to a telephony provider (docs/telephony/README.md): one model for every provider. Audio (already in the
 * provider's format) is cut into 20 ms chunks and sent one chunk per 20 ms of wall clock, each followed
 * by a provider mark; the provider's echo of that mark is the only evidence that the caller heard the
 * chunk, so `played_ms` counts confirmed chunks and is exact to the chunk.
 *
 *            push()                 tick every 20 ms               provider echoes rm:<epoch>:<n>
 *   sink ───────────▶ [partial]──▶ [chunk][chunk]… ──media+mark──▶ provider ─────────────────────▶ played = n
 *                        ▲ 20 ms cut     queue (bounded)            (sent ≥ played)
 *
 * `clear()` (a sink `clear`, or barge-in) drops the queue, sends the provider's own clear, and rewinds the
 * timeline to what was confirmed: marks the provider echoes afterwards carry an old epoch and are ignored
 * (Twilio echoes every mark still queued when it clears — those chunks were never heard).
 */
import { performance } from 'node:perf_hooks';
import { clearPreciseTimeout, setPreciseTimeout } from '../native.js';
import { bytesPerSample, silenceByte } from './protocol.js';
import type { AudioFormat, Outbound, ProviderWire } from './providers/wire.js';

/** Playback chunk length (docs/telephony/README.md: "paced in 20 ms chunks"). */
export const CHUNK_MS = 20;
/** A chunk sent later than this after its deadline counts as late (docs/telephony/README.md, "Pacing"). */
export const LATE_MS = 2;
/** Chunks one tick may send when it is behind its deadlines: its own and one missed one. */
export const MAX_CHUNKS_PER_TICK = 2;
/** Missed deadlines after which a run restarts from now instead of catching up (docs/telephony/README.md). */
export const MAX_LAG_CHUNKS = 3;
/**
 * A chunk may go this much before its deadline: the precise clock (src/native.ts `setPreciseTimeout`) fires
 * some 50 to 150 µs after it is due, and the send takes about 0.1 ms more.
 */
const EARLY_MS = 0.1;

export type PlaybackReport =
  | { type: 'played'; name: string; played_ms: number }
  | { type: 'cleared'; played_ms: number }
  | { type: 'interrupted'; played_ms: number };

export interface PlaybackInfo {
  state: 'idle' | 'playing' | 'paused';
  queued_ms: number;
  played_ms: number;
  sent_ms: number;
  marks_pending: number;
  chunks_sent: number;
  interruptions: number;
  /** Runs restarted after a stall of more than MAX_LAG_CHUNKS chunks. */
  pacing_restarts: number;
  /** Chunks that left more than LATE_MS after their deadline (the server's own pacing, before the network). */
  late_chunks: number;
  /** The latest any chunk left after its deadline, ms. */
  max_lateness_ms: number;
}

export class Playback {
  readonly chunkBytes: number;
  private readonly silence: number;
  private readonly maxQueueChunks: number;
  private readonly queue: Uint8Array[] = [];
  private partial: Uint8Array = new Uint8Array(0);
  /** Chunks sent to the provider on the current timeline (positions are chunk counts from the start). */
  private sent = 0;
  /** Chunks the provider confirmed played. */
  private played = 0;
  private epoch = 0;
  /** Sink marks, at the chunk position they follow. */
  private marks: Array<{ name: string; at: number }> = [];
  private timer: number | undefined;
  private t0 = 0;
  private ticks = 0;
  private paused = false;
  private closed = false;
  private chunksSent = 0;
  private interruptions = 0;
  private restarts = 0;
  private lateChunks = 0;
  private maxLateness = 0;

  constructor(
    private readonly wire: ProviderWire,
    format: AudioFormat,
    private readonly send: (message: Outbound) => void,
    private readonly report: (message: PlaybackReport) => void,
    maxQueueMs: number,
    /** Sees every chunk as it is sent to the provider (the echo reference of an `aec` pipeline). */
    private readonly tap?: (chunk: Uint8Array) => void,
    /** How long after its deadline each chunk left, ms (negative: early); for the pacing metric. */
    private readonly paced?: (latenessMs: number) => void,
  ) {
    this.chunkBytes =
      ((format.sample_rate * CHUNK_MS) / 1000) * format.channels * bytesPerSample[format.encoding];
    this.silence = silenceByte[format.encoding];
    this.maxQueueChunks = Math.max(1, Math.floor(maxQueueMs / CHUNK_MS));
  }

  /** Queues provider-format audio. False (and nothing queued) when the queue is full. */
  push(audio: Uint8Array): boolean {
    if (this.closed || audio.byteLength === 0) return true;
    const total = this.partial.byteLength + audio.byteLength;
    if (this.queue.length + Math.floor(total / this.chunkBytes) > this.maxQueueChunks) return false;
    const joined = new Uint8Array(total);
    joined.set(this.partial, 0);
    joined.set(audio, this.partial.byteLength);
    let at = 0;
    while (total - at >= this.chunkBytes) {
      this.queue.push(joined.slice(at, at + this.chunkBytes));
      at += this.chunkBytes;
    }
    this.partial = joined.slice(at);
    this.kick();
    return true;
  }

  /** A sink mark: answered `played` once the provider confirms every chunk queued before it. */
  mark(name: string): void {
    if (this.closed) return;
    this.padPartial();
    const at = this.sent + this.queue.length;
    if (at <= this.played) this.report({ type: 'played', name, played_ms: at * CHUNK_MS });
    else this.marks.push({ name, at });
    this.kick();
  }

  /** Empties our queue and the provider's; reports how far the caller heard. */
  clear(reason: 'cleared' | 'interrupted'): void {
    if (this.closed) return;
    this.queue.length = 0;
    this.partial = new Uint8Array(0);
    this.marks = [];
    this.sent = this.played;
    this.epoch++;
    if (reason === 'interrupted') this.interruptions++;
    for (const m of this.wire.clear()) this.send(m);
    this.report({ type: reason, played_ms: this.played * CHUNK_MS });
  }

  /** Whether anything is queued or still unconfirmed at the provider (barge-in applies then). */
  get active(): boolean {
    return this.queue.length > 0 || this.partial.byteLength > 0 || this.sent > this.played;
  }

  /** A mark the provider reports; only our own current-epoch chunk marks move the position. */
  onProviderMark(name: string): void {
    const m = /^rm:(\d+):(\d+)$/.exec(name);
    if (m === null || Number(m[1]) !== this.epoch) return;
    const n = Number(m[2]);
    if (n <= this.played || n > this.sent) return;
    this.played = n;
    while (this.marks.length > 0 && (this.marks[0]?.at ?? Infinity) <= this.played) {
      const done = this.marks.shift();
      if (done) this.report({ type: 'played', name: done.name, played_ms: done.at * CHUNK_MS });
    }
  }

  /** Provider flow control (Asterisk MEDIA_XOFF / MEDIA_XON). */
  flow(paused: boolean): void {
    this.paused = paused;
    if (paused) this.stopTimer();
    else this.kick();
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
    this.queue.length = 0;
  }

  info(): PlaybackInfo {
    return {
      state: this.paused ? 'paused' : this.active ? 'playing' : 'idle',
      queued_ms: (this.queue.length + (this.partial.byteLength > 0 ? 1 : 0)) * CHUNK_MS,
      played_ms: this.played * CHUNK_MS,
      sent_ms: this.sent * CHUNK_MS,
      marks_pending: this.marks.length,
      chunks_sent: this.chunksSent,
      interruptions: this.interruptions,
      pacing_restarts: this.restarts,
      late_chunks: this.lateChunks,
      max_lateness_ms: Math.round(this.maxLateness * 1000) / 1000,
    };
  }

  private padPartial(): void {
    if (this.partial.byteLength === 0) return;
    const chunk = new Uint8Array(this.chunkBytes).fill(this.silence);
    chunk.set(this.partial, 0);
    this.queue.push(chunk);
    this.partial = new Uint8Array(0);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearPreciseTimeout(this.timer);
    this.timer = undefined;
  }

  /** Starts pacing when there is something to send and nothing is pacing yet: slot 0 is now. */
  private kick(): void {
    if (this.timer !== undefined || this.paused || this.closed) return;
    if (this.queue.length === 0) return;
    this.t0 = performance.now();
    this.ticks = 0;
    this.tick();
  }

  /**
   * Sends the chunks whose deadlines have come and schedules the next deadline. Chunk n of a run is due at
   * t0 + n·20 ms, an absolute deadline, so a late timer never adds drift. A tick that finds itself behind
   * (a late timer, a short stall) catches up at most MAX_CHUNKS_PER_TICK chunks at a time; behind by more than
   * MAX_LAG_CHUNKS, the run restarts from now instead.
   */
  private readonly tick = (): void => {
    this.timer = undefined;
    if (this.paused || this.closed) return;
    const now = performance.now();
    let due = Math.floor((now + EARLY_MS - this.t0) / CHUNK_MS) + 1;
    if (due - this.ticks > MAX_LAG_CHUNKS + 1) {
      // The stall is a gap the caller already heard; a burst of the backlog would only fill the provider's
      // buffer (and Asterisk answers a full one with MEDIA_XOFF).
      this.t0 = now;
      this.ticks = 0;
      this.restarts++;
      due = 1;
    }
    for (let sent = 0; this.ticks < due && sent < MAX_CHUNKS_PER_TICK; sent++) {
      // The queue ran dry with a tail left: that tail is the end of what the sink sent, so it plays now.
      if (this.queue.length === 0) this.padPartial();
      const chunk = this.queue.shift();
      // Nothing left: the run ends here, and the next push starts a new one.
      if (chunk === undefined) return;
      const lateness = performance.now() - (this.t0 + this.ticks * CHUNK_MS);
      this.send(this.wire.media(chunk));
      this.tap?.(chunk);
      if (lateness > LATE_MS) this.lateChunks++;
      if (lateness > this.maxLateness) this.maxLateness = lateness;
      this.paced?.(lateness);
      this.sent++;
      this.chunksSent++;
      this.send(this.wire.mark(`rm:${this.epoch}:${this.sent}`));
      this.ticks++;
    }
    const next = this.t0 + this.ticks * CHUNK_MS - EARLY_MS;
    this.timer = setPreciseTimeout(this.tick, next - performance.now());
  };
}
