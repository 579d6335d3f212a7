/**
 * One telephony call (docs/telephony/README.md): a provider's WebSocket mapped onto an ordinary StreamSession whose input
 * format is the provider's, plus the call's sink and playback.
 *
 *   provider ──wire.text/binary──▶ ProviderCall ──start / frames / stop──▶ StreamSession ──▶ engine
 *       ▲                              │ ▲                                     │ processed frames, events
 *       │ media + marks (paced)        │ │ playback audio, mark, clear         ▼
 *   Playback ◀── playback chain ◀──────┘ └──────────────── SinkLink ◀── (and /v1/sessions/{id}/listen)
 *
 * The session drives the pipeline through its public methods only; what it would send to a `/stream`
 * client goes to the sink and to listeners instead, and its close closes the provider's socket.
 */

import { type EngineOutput, type EngineSession, OutputKind } from '../../native.js';
import { type SinkSpec, sinkSchema } from '../../pipeline/document.js';
import { Playback, type PlaybackInfo } from '../playback.js';
import { bytesPerSample, CloseCode } from '../protocol.js';
import { TokenBucket } from '../ratelimit.js';
import type { PipelineRef, RealtimeDeps, Socket } from '../session.js';
import { StreamSession } from '../session.js';
import { type SinkInfo, SinkLink, type SinkOptions, type SinkState, sinkHostAllowed } from '../sink.js';
import { createWire } from './index.js';
import { EchoReference, referenceLayout } from './reference.js';
import {
  type AudioFormat,
  type CallInfo,
  type Inbound,
  isObject,
  type Outbound,
  type ProviderName,
  type ProviderWire,
  parseJson,
} from './wire.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Playback audio queued per call, at most (docs/limits.md: bounded memory; a flooding sink is cut off here). */
export const MAX_PLAYBACK_QUEUE_MS = 60_000;
/** Listeners per session on `/v1/sessions/{id}/listen`. */
export const MAX_LISTENERS = 8;
/** Unsent bytes a listener may hold; a listener that does not read misses what comes meanwhile. */
export const MAX_LISTENER_BUFFER = 1024 * 1024;
/** Sink marks waiting to be played, per call (docs/limits.md: a sink cannot grow them without bound). */
export const MAX_PENDING_MARKS = 1024;

export interface TelephonyInfo {
  provider: ProviderName;
  call: CallInfo | null;
  sink: (SinkInfo & { barge_in: boolean }) | { state: 'none' | 'not_allowed'; url: string | null };
  playback: PlaybackInfo | null;
  /** The pipeline has an `aec` node: playback is its reference channel (reference.ts). */
  echo_reference: boolean;
  listeners: number;
  provider_errors: number;
}

export class ProviderCall {
  readonly session: StreamSession;
  private readonly wire: ProviderWire;
  private call: CallInfo | null = null;
  private output: AudioFormat | undefined;
  private processed: unknown = null;
  private playback: Playback | undefined;
  /** What the caller hears, as the `aec` node's reference channel; only when the pipeline has one. */
  private reference: EchoReference | undefined;
  private sink: SinkLink | undefined;
  private readonly sinkSpec: SinkSpec | undefined;
  private sinkRefused = false;
  private readonly listeners = new Set<Socket>();
  private frameBytes = 1;
  private framesIn = 0;
  private samplesIn = 0;
  private providerErrors = 0;
  private startError = '';
  private closed = false;
  // The playback chain: sink audio → playback nodes → provider format.
  private chain: EngineSession | undefined;
  private chainPushed = 0;
  private chainAnswered = 0;
  /** Answers for frames pushed before this index were cleared. */
  private chainFloor = 0;
  private deferredMarks: Array<{ name: string; after: number }> = [];
  private overflowing = false;
  /** MAX_MESSAGES_PER_SEC applies to every provider message, not only the media the session sees. */
  private readonly rate: TokenBucket;

  constructor(
    private readonly provider: Socket,
    private readonly deps: RealtimeDeps,
    readonly pipeline: PipelineRef,
    transport: string,
    readonly providerName: ProviderName,
    private readonly sinkOptions?: SinkOptions,
  ) {
    this.wire = createWire(providerName);
    this.rate = new TokenBucket(deps.config.maxMessagesPerSec);
    // No provider protocol can resume a call: when the provider hangs up, the session ends.
    this.session = new StreamSession(this.pipelineSocket(), deps, pipeline, transport, false);
    this.session.describe = () => ({ telephony: this.info() });
    const spec = isObject(pipeline.definition) ? sinkSchema.safeParse(pipeline.definition.sink) : undefined;
    this.sinkSpec = spec?.success ? spec.data : undefined;
  }

  /** What the session would send a `/stream` client: processed audio and events go to sink and listeners. */
  private pipelineSocket(): Socket {
    return {
      sendText: (text) => {
        if (this.session.state === 'awaiting_start') {
          // The only text before `ready` is the reason `start` failed (format conflict, engine refusal).
          this.startError = text;
          return;
        }
        if (text.startsWith('{"type":"ready"')) {
          this.processed = (JSON.parse(text) as { output?: unknown }).output ?? null;
          return;
        }
        if (this.sinkSpec?.playback.barge_in && text.includes('"speech_start"')) this.bargeIn(text);
        this.fanOut(text);
      },
      sendBinary: (data) => {
        this.sink?.sendBinary(data);
        for (const l of this.listeners) if (l.bufferedAmount() <= MAX_LISTENER_BUFFER) l.sendBinary(data);
      },
      close: (code, reason) => this.teardown(code, reason),
      // Heartbeats (HEARTBEAT_MS) go to the provider's socket; its pongs come back through onPong.
      ping: () => this.provider.ping(),
      bufferedAmount: () => this.provider.bufferedAmount(),
    };
  }

  private fanOut(text: string): void {
    this.sink?.sendText(text);
    for (const l of this.listeners) if (l.bufferedAmount() <= MAX_LISTENER_BUFFER) l.sendText(text);
  }

  private hello(): string {
    return JSON.stringify({
      type: 'session',
      session_id: this.session.id,
      provider: this.providerName,
      call: this.call ?? {},
      output: this.processed,
    });
  }

  // ─── provider side ────────────────────────────────────────────────────────────────────────────────

  /** One WebSocket message from the provider, as either transport received it. */
  onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.closed || !this.admit()) return;
    if (data.byteLength > this.deps.config.maxFrameBytes) {
      // RFC 6455 §7.4.1: 1009 = message too big (MAX_FRAME_BYTES, as on /stream).
      this.session.kill(CloseCode.MessageTooBig, 'RM_ERR_MESSAGE_TOO_BIG: message too big');
      return;
    }
    if (isBinary) {
      this.handle(this.wire.binary(data));
      return;
    }
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      // RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
      this.session.kill(CloseCode.InvalidPayload, 'RM_ERR_BAD_UTF8: text message is not valid UTF-8');
      return;
    }
    this.handle(this.wire.text(text));
  }

  /** The provider answered a heartbeat ping. */
  onPong(): void {
    this.session.onPong();
  }

  private admit(): boolean {
    if (this.rate.take()) return true;
    this.session.kill(
      CloseCode.PolicyViolation,
      `RM_ERR_RATE_LIMITED: more than ${this.rate.ratePerSecond} messages per second`,
    );
    return false;
  }

  /** The provider's socket closed. */
  onClose(): void {
    this.session.onClose();
    this.teardown();
  }

  private handle(ev: Inbound): void {
    switch (ev.kind) {
      case 'start': {
        this.start(ev.call, ev.input, ev.output);
        return;
      }
      case 'media':
        this.framesIn++;
        this.samplesIn += Math.floor(ev.audio.byteLength / this.frameBytes);
        this.session.onMessage(this.reference?.interleave(ev.audio) ?? ev.audio, true);
        return;
      case 'dtmf': {
        // Shaped like the `dtmf` node's events (docs/pipelines.md): name "digit", data.digit; the node is the provider.
        const data =
          ev.duration_ms === null ? { digit: ev.digit } : { digit: ev.digit, duration_ms: ev.duration_ms };
        const frame = Math.max(0, this.framesIn - 1);
        this.fanOut(
          JSON.stringify({
            type: 'event',
            node: this.providerName,
            name: 'digit',
            frame,
            sample: this.samplesIn,
            data,
          }),
        );
        this.deps.metrics?.telephony?.(this.providerName, 'dtmf');
        return;
      }
      case 'mark':
        this.playback?.onProviderMark(ev.name);
        return;
      case 'flow':
        this.playback?.flow(ev.paused);
        return;
      case 'stop':
        // docs/protocol.md §5 semantics: flush, stats (to the sink), then the close.
        this.session.onMessage(Buffer.from('{"type":"stop"}'), false);
        return;
      case 'cleared':
      case 'ignore':
        return;
      case 'error':
        this.providerErrors++;
        this.deps.metrics?.telephony?.(this.providerName, 'provider_error');
        this.fanOut(JSON.stringify({ type: 'error', code: ev.code, message: ev.message }));
        // docs/limits.md: a bad message ends only this call, with a close code and the catalog code as reason.
        if (ev.fatal) this.session.kill(CloseCode.PolicyViolation, `${ev.code}: ${ev.message}`.slice(0, 120));
        return;
    }
  }

  private start(call: CallInfo, input: AudioFormat, output: AudioFormat): void {
    this.call = call;
    this.output = output;
    this.frameBytes = input.channels * bytesPerSample[input.encoding];
    // An `aec` node gets what the caller hears as its reference, added to the caller's audio as one more
    // channel; playback is in the caller's encoding and rate for every provider (wire.ts `start`).
    const layout = referenceLayout(this.pipeline.definition, input.channels);
    if (
      layout !== undefined &&
      output.encoding === input.encoding &&
      output.sample_rate === input.sample_rate &&
      output.channels === 1
    ) {
      this.reference = new EchoReference(input, layout);
    }
    const sessionInput = this.reference?.input ?? input;
    this.session.onMessage(Buffer.from(JSON.stringify({ type: 'start', input: sessionInput })), false);
    if (this.session.state !== 'streaming') {
      let code = 'RM_ERR_FORMAT_CONFLICT';
      try {
        code = String((JSON.parse(this.startError) as { code?: unknown }).code ?? code);
      } catch {}
      this.session.kill(
        CloseCode.PolicyViolation,
        `${code}: pipeline cannot take ${this.providerName} audio`,
      );
      return;
    }
    this.deps.metrics?.telephony?.(this.providerName, 'call');
    this.playback = new Playback(
      this.wire,
      output,
      (m) => this.toProvider(m),
      (report) => {
        if (report.type !== 'played') this.deps.metrics?.telephony?.(this.providerName, report.type);
        this.fanOut(JSON.stringify(report));
      },
      MAX_PLAYBACK_QUEUE_MS,
      this.reference ? (chunk) => this.reference?.write(chunk) : undefined,
      (ms) => this.deps.metrics?.playbackLateness?.(this.providerName, ms),
    );
    const spec = this.sinkSpec;
    if (spec === undefined) return;
    if (!sinkHostAllowed(this.deps.config.sinkAllowlist, spec.url)) {
      this.sinkRefused = true;
      return;
    }
    this.sink = new SinkLink(
      spec.url,
      {
        hello: () => this.hello(),
        text: (t) => this.onSinkText(t),
        binary: (b) => this.onSinkBinary(b),
        state: (s: SinkState, detail?: string) => {
          if (s !== 'down') return;
          // The call goes on without its sink, and says so: metric, log, listeners, /v1/sessions.
          this.deps.metrics?.telephony?.(this.providerName, 'sink_down');
          this.deps.log?.warn(
            { session: this.session.id, sink: spec.url, detail },
            'sink is down; the call goes on',
          );
          const down = {
            type: 'error',
            code: 'RM_ERR_SINK_UNAVAILABLE',
            message: `sink is down: ${detail ?? ''}`,
          };
          for (const l of this.listeners) l.sendText(JSON.stringify(down));
        },
      },
      this.sinkOptions,
    );
  }

  private toProvider(message: Outbound): void {
    if (this.closed) return;
    if ('text' in message) this.provider.sendText(message.text);
    else this.provider.sendBinary(message.binary);
  }

  // ─── sink side ────────────────────────────────────────────────────────────────────────────────────

  private sinkError(code: string, message: string): void {
    this.sink?.sendText(JSON.stringify({ type: 'error', code, message }));
  }

  private onSinkText(text: string): void {
    const parsed = parseJson(text);
    if (!parsed.ok) {
      this.sinkError('RM_ERR_SINK_MESSAGE', 'sink messages are JSON objects');
      return;
    }
    const m = parsed.value;
    if (m.type === 'playback') {
      this.openChain(m.format);
      return;
    }
    if (m.type === 'clear') {
      this.clear('cleared');
      return;
    }
    if (m.type === 'mark') {
      if (typeof m.name !== 'string' || m.name.length === 0 || m.name.length > 256) {
        this.sinkError('RM_ERR_SINK_MESSAGE', 'mark needs a name (1-256 characters)');
        return;
      }
      const pending = this.deferredMarks.length + (this.playback?.info().marks_pending ?? 0);
      if (pending >= MAX_PENDING_MARKS) {
        this.sinkError('RM_ERR_SINK_MESSAGE', `at most ${MAX_PENDING_MARKS} marks may wait to be played`);
        return;
      }
      if (this.chainAnswered >= this.chainPushed) this.playback?.mark(m.name);
      else this.deferredMarks.push({ name: m.name, after: this.chainPushed });
      return;
    }
    this.sinkError('RM_ERR_SINK_MESSAGE', 'sink messages are playback, mark or clear');
  }

  private onSinkBinary(data: Uint8Array): void {
    const chain = this.chain;
    if (chain === undefined) {
      this.sinkError('RM_ERR_SINK_MESSAGE', 'send {"type":"playback","format":{…}} before audio');
      return;
    }
    try {
      chain.push(data);
      this.chainPushed++;
    } catch (err) {
      this.sinkError('RM_ERR_SINK_MESSAGE', (err as Error).message);
    }
  }

  /** `{"type":"playback","format":{…}}`: plans the playback nodes for the sink's format → provider's format. */
  private openChain(format: unknown): void {
    const output = this.output;
    if (output === undefined || this.sinkSpec === undefined) return;
    const f = isObject(format) ? format : {};
    const encoding = f.encoding;
    const sample_rate = f.sample_rate;
    const channels = f.channels ?? 1;
    if (
      (encoding !== 's16le' && encoding !== 'f32le' && encoding !== 'mulaw' && encoding !== 'alaw') ||
      typeof sample_rate !== 'number' ||
      !Number.isInteger(sample_rate) ||
      sample_rate < 8000 ||
      sample_rate > 192000 ||
      typeof channels !== 'number' ||
      !Number.isInteger(channels) ||
      channels < 1 ||
      channels > 8
    ) {
      this.sinkError('RM_ERR_SINK_MESSAGE', 'playback format needs encoding, sample_rate and channels');
      return;
    }
    const document = {
      name: 'playback',
      nodes: [
        ...this.sinkSpec.playback.nodes,
        { id: 'rm-playback-mono', type: 'downmix' },
        {
          id: 'rm-playback-rate',
          type: 'resample',
          params: { sample_rate: output.sample_rate, quality: 'high' },
        },
      ],
    };
    const planned = this.deps.plan(document, { sample_rate, channels });
    if (!planned.ok) {
      const first = planned.errors[0];
      this.sinkError(
        'RM_ERR_FORMAT_CONFLICT',
        `playback nodes: ${first?.path ?? ''} ${first?.message ?? ''}`,
      );
      return;
    }
    this.chain?.close();
    try {
      this.chain = this.deps.engine.createSession(
        planned.plan,
        { encoding, sample_rate, channels },
        { encoding: output.encoding },
        { maxMessageBytes: this.sinkOptions?.maxMessageBytes ?? 1024 * 1024, queueLimitMs: null },
        (out) => this.onChainOutput(out),
      );
    } catch (err) {
      this.chain = undefined;
      this.sinkError('RM_ERR_NATIVE', (err as Error).message);
      return;
    }
    this.chainPushed = 0;
    this.chainAnswered = 0;
    this.chainFloor = 0;
  }

  private onChainOutput(out: EngineOutput): void {
    if (this.closed) return;
    if (out.kind === OutputKind.Audio) {
      this.chainAnswered = out.frame + 1;
      if (out.frame >= this.chainFloor && out.audio && out.audio.byteLength > 0) {
        const accepted = this.playback?.push(out.audio) ?? true;
        if (!accepted && !this.overflowing) {
          this.sinkError(
            'RM_ERR_PLAYBACK_FULL',
            `playback holds at most ${MAX_PLAYBACK_QUEUE_MS / 1000} s of audio`,
          );
        }
        this.overflowing = !accepted;
      }
      while (
        this.deferredMarks.length > 0 &&
        (this.deferredMarks[0]?.after ?? Infinity) <= this.chainAnswered
      ) {
        const m = this.deferredMarks.shift();
        if (m) this.playback?.mark(m.name);
      }
    } else if (out.kind === OutputKind.FrameError) {
      this.chainAnswered = out.frame + 1;
      this.sinkError(out.errorCode ?? 'RM_ERR_BAD_FRAME', out.errorMessage ?? 'malformed playback audio');
    } else if (out.kind === OutputKind.Failed) {
      this.chain = undefined;
      this.sinkError(out.errorCode ?? 'RM_ERR_SESSION_FAILED', out.errorMessage ?? 'playback chain failed');
    }
  }

  /** A sink `clear` or a barge-in: drop audio still in the chain, then clear the playback. */
  private clear(reason: 'cleared' | 'interrupted'): void {
    this.chainFloor = this.chainPushed;
    this.deferredMarks = [];
    this.playback?.clear(reason);
  }

  private bargeIn(text: string): void {
    if (!this.playback?.active) return;
    try {
      if ((JSON.parse(text) as { name?: unknown }).name === 'speech_start') this.clear('interrupted');
    } catch {}
  }

  // ─── listeners, info, teardown ────────────────────────────────────────────────────────────────────

  /** `GET /v1/sessions/{id}/listen`: false when the session already has its maximum of listeners. */
  addListener(socket: Socket): boolean {
    if (this.closed || this.listeners.size >= MAX_LISTENERS) return false;
    this.listeners.add(socket);
    socket.sendText(this.hello());
    return true;
  }

  removeListener(socket: Socket): void {
    this.listeners.delete(socket);
  }

  info(): TelephonyInfo {
    const spec = this.sinkSpec;
    return {
      provider: this.providerName,
      call: this.call,
      sink: this.sink
        ? { ...this.sink.info(), barge_in: spec?.playback.barge_in ?? false }
        : { state: this.sinkRefused ? 'not_allowed' : 'none', url: spec?.url ?? null },
      playback: this.playback?.info() ?? null,
      echo_reference: this.reference !== undefined,
      listeners: this.listeners.size,
      provider_errors: this.providerErrors,
    };
  }

  private teardown(code?: number, reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.playback?.close();
    this.chain?.close();
    this.chain = undefined;
    this.sink?.close(1000, 'call ended');
    for (const l of this.listeners) l.close(1000, 'call ended');
    this.listeners.clear();
    if (code !== undefined) this.provider.close(code, reason ?? '');
  }
}
