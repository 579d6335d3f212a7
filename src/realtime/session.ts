/**
 * One streaming session (docs/protocol.md): the state machine between a transport's socket and the native
 * engine. The wire format lives in `protocol.ts`; queueing, ordering and DSP live in the engine.
 *
 *   awaiting_start ──start──▶ streaming ──stop──▶ stopping ──Stopped──▶ closed
 *        │                        │  └─engine failure──▶ closed (1011)
 *        └─binary──▶ closed (1008) └─client gone──▶ parked ──resume──▶ streaming (docs/protocol.md §8)
 *                                                     └─RESUME_GRACE_MS──▶ closed
 * A parked session is still `streaming` without a socket: the engine finishes the frames in flight and
 * their answers wait in the replay log (resume.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.js';
import { catalogCode, type ErrorCode, RemoteMediaError } from '../errors.js';
import {
  type Engine,
  type EngineOutput,
  type EngineSession,
  OutputKind,
  type SessionStats,
} from '../native.js';
import {
  bytesPerSecond,
  CloseCode,
  encode,
  type LatencySummary,
  parseClientMessage,
  type ResumeMessage,
  type ServerMessage,
  type StartMessage,
  type StreamFormatMessage,
} from './protocol.js';
import type { TelephonyInfo } from './providers/call.js';
import { TokenBucket } from './ratelimit.js';
import { newResumeToken, ReplayLog, tokenMatches } from './resume.js';
import { counters, ReceiveTimes, summary } from './timing.js';

/** What a transport offers a session. No method throws: a closed socket ignores every call. */
export interface Socket {
  sendText(text: string): void;
  /** `data` is only lent for the call (an engine answer's memory is reused): a socket that keeps it copies it. */
  sendBinary(data: Uint8Array): void;
  close(code: number, reason: string): void;
  /** Sends a WebSocket ping (RFC 6455 §5.5.2); the transport reports the pong to `onPong`. */
  ping(): void;
  /** Bytes accepted by send but not yet written to the network. */
  bufferedAmount(): number;
  /** Runs `fn` with the socket's writes held back and written together after it (uWS `cork`). */
  cork?(fn: () => void): void;
}

/** A stored pipeline version, as the session needs it. */
export interface PipelineRef {
  id: string;
  version: number;
  definition: unknown;
}

/** Plans a pipeline document for a session input format. */
export type Planner = (
  definition: unknown,
  input: { sample_rate: number; channels: number },
) =>
  | { ok: true; plan: object }
  | { ok: false; errors: ReadonlyArray<{ path: string; code: string; message: string }> };

/** Hooks for Prometheus; see plugins/metrics.ts. */
export interface RealtimeMetrics {
  frame(transport: string, latencySeconds: number): void;
  dropped(transport: string, frames: number): void;
  /** A session's output handling threw; the session was closed 1011. */
  handlerError(transport: string): void;
  /** A telephony call event (docs/telephony/README.md), counted per provider: see providers/call.ts. */
  telephony?(provider: string, event: string): void;
  /** How long after its deadline a playback chunk left for the provider, ms (playback.ts). */
  playbackLateness?(provider: string, latenessMs: number): void;
}

/** Where the realtime plane reports what a client cannot be told (a transport callback that failed). */
export interface RealtimeLog {
  warn(fields: object, message: string): void;
}

export interface RealtimeDeps {
  config: Config;
  engine: Engine;
  plan: Planner;
  metrics?: RealtimeMetrics;
  log?: RealtimeLog;
  /** A live session by id, for resume (the registry). */
  findSession?: (id: string) => StreamSession | undefined;
}

export type SessionState = 'awaiting_start' | 'streaming' | 'stopping' | 'closed';

let sessionCounter = 0;

/** When a session last saw its client do something, for the watchdog (milliseconds, `performance.now()`). */
export interface Activity {
  /** The socket was upgraded. */
  readonly openedAt: number;
  /** The last message (text or binary) from the client. */
  lastMessageAt: number;
  /** The last ping sent, if any, and the last pong received. */
  pingedAt: number | undefined;
  pongedAt: number;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A public view of a session, for `/v1/sessions` (docs/rest.md). */
export interface SessionInfo {
  id: string;
  state: SessionState;
  transport: string;
  pipeline: { id: string; version: number };
  started_at: string;
  input: StreamFormatMessage | null;
  output: StreamFormatMessage | null;
  worker: number | null;
  frames_in: number;
  frames_out: number;
  frames_dropped: number;
  frame_errors: number;
  events: number;
  non_finite_samples: number;
  latency: LatencySummary;
  engine_latency: LatencySummary;
  queue_wait: LatencySummary;
  nodes: Array<{ id: string; type: string; process: LatencySummary }>;
  /** Provider sessions only (docs/telephony/README.md): provider, call ids, sink and playback state. */
  telephony?: TelephonyInfo;
}

export class StreamSession {
  readonly id: string;
  readonly startedAt = new Date();
  state: SessionState = 'awaiting_start';
  private native: EngineSession | undefined;
  private input: StreamFormatMessage | null = null;
  private output: StreamFormatMessage | null = null;
  private framesReceived = 0;
  private readonly receivedAt = new ReceiveTimes();
  private paramsTag = 0;
  private readonly pendingParams = new Map<number, { node: string; params: Record<string, unknown> }>();
  private readonly rate: TokenBucket;
  readonly activity: Activity;
  /** Called once when the session is closed for good. */
  onClosed: (() => void) | undefined;
  /** Extra fields for `info()`: a telephony call adds its provider, call ids and playback (providers/call.ts). */
  describe: (() => { telephony: TelephonyInfo }) | undefined;
  /** Called once when this socket's session turned out to be another's resume (see `resume`). */
  onDelegated: (() => void) | undefined;
  /** Called when the session is parked (true) or resumed (false) (docs/protocol.md §8). */
  onParked: ((parked: boolean) => void) | undefined;
  /** Called when a `start` is accepted, before the session is planned: the registry makes room then. */
  onStarting: (() => void) | undefined;
  /** The socket the session talks through; undefined while parked (docs/protocol.md, resume). */
  private socket: Socket | undefined;
  /** Secret the client must present to resume this session. */
  readonly resumeToken = newResumeToken();
  /** What was sent, for replay after a resume; only with RESUME_GRACE_MS > 0, from `ready` on. */
  private replay: ReplayLog | undefined;
  private parkTimer: NodeJS.Timeout | undefined;
  /** The resumed session this socket now carries: every message and the close go to it. */
  private delegate: StreamSession | undefined;

  constructor(
    private readonly ownSocket: Socket,
    private readonly deps: RealtimeDeps,
    readonly pipeline: PipelineRef,
    readonly transport: string,
    /**
     * Whether a dropped socket parks the session for a `resume` (docs/protocol.md §8). Telephony calls say
     * no: no provider protocol has a resume, so a call whose provider hung up ends at once.
     */
    private readonly resumeAllowed = true,
  ) {
    sessionCounter += 1;
    this.id = `ss_${Date.now().toString(36)}${sessionCounter.toString(36)}`;
    this.rate = new TokenBucket(deps.config.maxMessagesPerSec);
    const now = performance.now();
    this.activity = { openedAt: now, lastMessageAt: now, pingedAt: undefined, pongedAt: now };
    this.socket = ownSocket;
  }

  /** True while the session has no socket and waits for a resume. */
  get parked(): boolean {
    return this.socket === undefined && this.state !== 'closed';
  }

  /** Ends a parked session for good, to make room for a client that is here (admission.ts). */
  evict(): boolean {
    if (!this.parked) return false;
    this.expire();
    return true;
  }

  /**
   * One WebSocket message from the client, as either transport received it: the size and UTF-8 rules
   * are here so that both transports answer the same input the same way (docs/errors.md).
   */
  onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.delegate) {
      this.delegate.onMessage(data, isBinary);
      return;
    }
    if (this.state === 'closed') return;
    this.activity.lastMessageAt = performance.now();
    if (data.byteLength > this.deps.config.maxFrameBytes) {
      // RFC 6455 §7.4.1 / docs/protocol.md §6: 1009 = message too big, text or binary alike.
      this.error('RM_ERR_MESSAGE_TOO_BIG', `messages are limited to ${this.deps.config.maxFrameBytes} bytes`);
      this.closeWith(CloseCode.MessageTooBig, 'message too big');
      return;
    }
    if (isBinary) {
      this.onBinary(data);
      return;
    }
    let text: string;
    try {
      text = textDecoder.decode(data);
    } catch {
      // RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
      this.error('RM_ERR_BAD_UTF8', 'text message is not valid UTF-8');
      this.closeWith(CloseCode.InvalidPayload, 'invalid UTF-8');
      return;
    }
    this.onText(text);
  }

  /** The client answered a ping. */
  onPong(): void {
    if (this.delegate) {
      this.delegate.onPong();
      return;
    }
    this.activity.pongedAt = performance.now();
  }

  /** Sends a heartbeat ping. */
  ping(): void {
    if (this.state === 'closed' || this.socket === undefined) return;
    this.activity.pingedAt = performance.now();
    this.socket.ping();
  }

  private send(message: ServerMessage): void {
    if (this.state !== 'closed') this.sendText(encode(message));
  }

  /** Every text message to the client goes through here: logged for replay, sent when connected. */
  private sendText(text: string): void {
    this.replay?.appendText(text);
    this.socket?.sendText(text);
  }

  /** Every binary answer goes through here (see sendText); the engine keeps its bytes at `at` (its tag). */
  private sendBinary(data: Uint8Array, at: number): void {
    this.replay?.appendAnswer(at, data.byteLength);
    this.socket?.sendBinary(data);
  }

  private error(code: ErrorCode, message: string, frame?: number): void {
    this.send(
      frame === undefined ? { type: 'error', code, message } : { type: 'error', code, message, frame },
    );
  }

  /**
   * The one teardown: releases the engine session and leaves the registry, whatever fails on the way
   * (a session that stayed registered would hold its MAX_SESSIONS and per-IP slots forever).
   * False when the session was already closed.
   */
  private release(): boolean {
    if (this.state === 'closed') return false;
    this.state = 'closed';
    clearTimeout(this.parkTimer);
    // Nothing is replayed after this; the engine's copy of its answers goes with the engine session.
    this.replay?.close();
    this.replay = undefined;
    try {
      this.native?.close();
    } finally {
      this.onClosed?.();
    }
    return true;
  }

  /** Releases the session, then closes the socket (if it has one: a parked session has none). Idempotent. */
  private closeWith(code: number, reason: string): void {
    if (this.release()) this.socket?.close(code, reason);
  }

  /** Admits one message against the rate limit; false means the session was closed for it. */
  private admit(now?: number): boolean {
    if (this.rate.take(now)) return true;
    this.error('RM_ERR_RATE_LIMITED', `more than ${this.rate.ratePerSecond} messages per second`);
    this.closeWith(CloseCode.PolicyViolation, 'message rate limit exceeded');
    return false;
  }

  private onText(text: string): void {
    if (this.state === 'closed' || !this.admit()) return;
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      this.error(parsed.code, parsed.message);
      return;
    }
    const m = parsed.message;
    switch (m.type) {
      case 'ping':
        this.send({ type: 'pong' });
        return;
      case 'start':
        this.start(m);
        return;
      case 'resume':
        this.resume(m);
        return;
      default:
        if (this.state !== 'streaming' || this.native === undefined) {
          this.error('RM_ERR_NOT_STARTED', `"${m.type}" needs a started session`);
          return;
        }
    }
    const native = this.native;
    if (m.type === 'params') {
      const tag = ++this.paramsTag;
      this.pendingParams.set(tag, { node: m.node, params: m.params });
      if (!this.guard(() => native.setParams(m.node, m.params, tag))) this.pendingParams.delete(tag);
    } else if (m.type === 'flush') {
      this.guard(() => native.flush());
    } else if (m.type === 'stop') {
      this.state = 'stopping';
      this.guard(() => native.stop());
    }
  }

  /**
   * Runs a call into the engine session. If the engine has already ended the session (a node panicked
   * and its Failed output is on its way), the call is moot: that output closes the socket.
   */
  private guard(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      this.engineError(err);
      return false;
    }
  }

  /** An engine call threw: see `guard`. */
  private engineError(err: unknown): void {
    if (err instanceof RemoteMediaError && err.code === 'RM_ERR_SESSION_CLOSED') return;
    this.error(err instanceof RemoteMediaError ? err.code : 'RM_ERR_NATIVE', String((err as Error).message));
  }

  private start(m: StartMessage): void {
    if (this.state !== 'awaiting_start') {
      this.error('RM_ERR_ALREADY_STARTED', 'the session has already started');
      return;
    }
    this.onStarting?.();
    const planned = this.deps.plan(this.pipeline.definition, {
      sample_rate: m.input.sample_rate,
      channels: m.input.channels,
    });
    if (!planned.ok) {
      const first = planned.errors[0];
      this.send({
        type: 'error',
        code: 'RM_ERR_FORMAT_CONFLICT',
        message: `pipeline cannot take this input: ${first ? `${first.path}: ${first.message}` : 'invalid'}`,
      });
      return;
    }
    const outputEncoding = m.output?.encoding ?? 's16le';
    const resumes = this.resumeAllowed && this.deps.config.resumeGraceMs > 0;
    try {
      this.native = this.deps.engine.createSession(
        planned.plan,
        m.input,
        { encoding: outputEncoding },
        {
          maxMessageBytes: this.deps.config.maxFrameBytes,
          queueLimitMs: this.deps.config.sessionQueueMs,
          keepAnswerBytes: resumes ? this.deps.config.resumeBufferBytes : undefined,
          // Whichever socket carries the session when a batch arrives (a resume replaces it).
          cork: (fn) => {
            const socket = this.socket;
            if (socket?.cork) socket.cork(fn);
            else fn();
          },
        },
        (out) => this.onOutput(out),
      );
    } catch (err) {
      this.error(
        err instanceof RemoteMediaError ? err.code : 'RM_ERR_NATIVE',
        String((err as Error).message),
      );
      return;
    }
    this.input = m.input;
    this.output = {
      encoding: outputEncoding,
      sample_rate: this.native.info.sampleRate,
      channels: this.native.info.channels,
    };
    this.state = 'streaming';
    this.send({
      type: 'ready',
      session_id: this.id,
      pipeline: { id: this.pipeline.id, version: this.pipeline.version },
      input: m.input,
      output: this.output,
      latency_ms: Math.round(this.native.info.latencyMs * 1000) / 1000,
      ...(resumes ? { resume_token: this.resumeToken } : {}),
    });
    if (resumes) {
      const native = this.native;
      this.replay = new ReplayLog(this.deps.config.resumeBufferBytes, (at, length) =>
        native.readAnswer(at, length),
      );
    }
  }

  /**
   * docs/protocol.md §8: this socket picks up session `m.session_id`, parked (or whose old socket has not noticed
   * yet that it is dead). The client gets `resumed` with the next frame index, then every message sent
   * after its last answer; from then on this socket carries that session.
   */
  private resume(m: ResumeMessage): void {
    if (this.state !== 'awaiting_start') {
      this.error('RM_ERR_ALREADY_STARTED', 'the session has already started');
      return;
    }
    const target = this.deps.findSession?.(m.session_id);
    if (
      target === undefined ||
      target === this ||
      target.pipeline.id !== this.pipeline.id ||
      !target.resumable
    ) {
      this.refuse(
        'RM_ERR_SESSION_GONE',
        `session ${m.session_id.slice(0, 64)} cannot be resumed`,
        CloseCode.PolicyViolation,
        'session gone',
      );
      return;
    }
    if (!tokenMatches(target.resumeToken, m.resume_token)) {
      this.refuse(
        'RM_ERR_BAD_RESUME_TOKEN',
        'resume_token does not match',
        CloseCode.PolicyViolation,
        'bad resume token',
      );
      return;
    }
    if (!target.adopt(this.ownSocket, m.last_answer)) {
      this.refuse(
        'RM_ERR_SESSION_GONE',
        `answers after ${m.last_answer} can no longer be replayed`,
        CloseCode.PolicyViolation,
        'session gone',
      );
      return;
    }
    this.delegate = target;
    this.state = 'closed';
    this.onDelegated?.();
  }

  /** True when a resume may pick this session up. */
  private get resumable(): boolean {
    return this.replay !== undefined && (this.state === 'streaming' || this.state === 'stopping');
  }

  /** Takes `socket` over from a resuming client; false when answer `lastAnswer` + 1 onwards is not held. */
  private adopt(socket: Socket, lastAnswer: number): boolean {
    const replay = this.replay?.after(lastAnswer);
    if (replay === undefined) return false;
    // A socket that has not noticed yet that its peer is gone is replaced, and closed once this callback
    // (the new socket's) has returned: uWebSockets.js corks the socket whose callback runs, and a close
    // written to another socket meanwhile can end up on the wrong connection.
    const old = this.socket;
    if (old !== undefined)
      setImmediate(() => old.close(CloseCode.GoingAway, 'resumed on another connection'));
    if (old === undefined) this.onParked?.(false);
    clearTimeout(this.parkTimer);
    this.parkTimer = undefined;
    this.socket = socket;
    const now = performance.now();
    this.activity.lastMessageAt = now;
    this.activity.pingedAt = undefined;
    this.activity.pongedAt = now;
    socket.sendText(encode({ type: 'resumed', next_frame: this.framesReceived }));
    for (const m of replay) {
      if (typeof m.data === 'string') socket.sendText(m.data);
      else socket.sendBinary(m.data);
    }
    return true;
  }

  /** A binary message: one frame of audio (docs/protocol.md §3). The bytes are copied by the engine at once. */
  private onBinary(data: Uint8Array): void {
    if (this.state === 'closed') return;
    if (this.state === 'awaiting_start') {
      // docs/protocol.md §6: binary before start is a policy violation.
      this.error('RM_ERR_NOT_STARTED', 'binary message before start');
      this.closeWith(CloseCode.PolicyViolation, 'binary message before start');
      return;
    }
    const now = performance.now();
    if (this.state !== 'streaming' || this.native === undefined || !this.admit(now)) return;
    this.receivedAt.mark(this.framesReceived, now);
    // The per-frame path: no closure per message (see `guard` for the rest).
    let dropped: number[] | null;
    try {
      dropped = this.native.push(data);
    } catch (err) {
      this.engineError(err);
      return;
    }
    this.framesReceived++;
    if (dropped !== null) this.reportDropped(dropped);
  }

  /** docs/protocol.md (queue bound): frames that waited longer than SESSION_QUEUE_MS before the engine reached them. */
  private reportDropped(frames: number[]): void {
    this.send({ type: 'dropped', frames });
    this.deps.metrics?.dropped(this.transport, frames.length);
  }

  /**
   * The engine's hand-back for this session. Whatever goes wrong while answering it stays in this
   * session: it is closed 1011 and counted, and every other session goes on (docs/limits.md).
   */
  private onOutput(out: EngineOutput): void {
    try {
      this.answer(out);
    } catch {
      this.deps.metrics?.handlerError(this.transport);
      this.fail('RM_ERR_INTERNAL', 'the server failed to answer this session');
    }
  }

  private answer(out: EngineOutput): void {
    if (this.state === 'closed') return;
    switch (out.kind) {
      case OutputKind.Audio: {
        this.sendBinary(out.audio ?? new Uint8Array(0), out.tag);
        const ms = this.receivedAt.elapsedMs(out.frame);
        this.native?.recordLatency(ms * 1e6);
        this.deps.metrics?.frame(this.transport, ms / 1000);
        this.sendEvents(out.events);
        return;
      }
      case OutputKind.FrameError:
        this.error(
          catalogCode(out.errorCode, 'RM_ERR_BAD_FRAME'),
          out.errorMessage ?? 'malformed frame',
          out.frame,
        );
        return;
      case OutputKind.Flushed:
        this.sendBinary(out.audio ?? new Uint8Array(0), out.tag);
        this.sendEvents(out.events);
        this.send({ type: 'flushed' });
        return;
      case OutputKind.ParamsApplied: {
        const pending = this.pendingParams.get(out.tag);
        this.pendingParams.delete(out.tag);
        if (out.errorCode)
          this.error(catalogCode(out.errorCode, 'RM_ERR_BAD_PARAMS'), out.errorMessage ?? 'params rejected');
        else if (pending) this.send({ type: 'params_applied', node: pending.node, params: pending.params });
        return;
      }
      case OutputKind.Stopped: {
        this.send({ type: 'stats', ...this.statsMessage() });
        // A server-side end (shutdown: 1001, DELETE /v1/sessions: 1000) closes with its own code.
        const { code, reason } = this.endCode ?? { code: CloseCode.Normal, reason: 'stopped' };
        this.closeWith(code, reason);
        return;
      }
      case OutputKind.Failed:
        this.fail(catalogCode(out.errorCode, 'RM_ERR_SESSION_FAILED'), out.errorMessage ?? 'session failed');
        return;
      case OutputKind.Dropped:
        this.reportDropped(Array.from({ length: out.count }, (_, i) => out.frame + i));
        return;
    }
  }

  private sendEvents(events: string | undefined): void {
    if (events === undefined) return;
    // The engine writes complete wire messages, one per line.
    let at = 0;
    while (at < events.length) {
      const nl = events.indexOf('\n', at);
      const end = nl === -1 ? events.length : nl;
      if (end > at) this.sendText(events.slice(at, end));
      at = end + 1;
    }
  }

  /** This socket closed (the client went away, or the network did). */
  onClose(): void {
    (this.delegate ?? this).socketClosed(this.ownSocket);
  }

  /**
   * `socket` closed. A streaming session with resume on is parked for RESUME_GRACE_MS (docs/protocol.md §8); any
   * other is dropped. A socket the session has already replaced is no news.
   */
  private socketClosed(socket: Socket): void {
    if (this.state === 'closed' || socket !== this.socket) return;
    this.socket = undefined;
    if (this.state === 'streaming' && this.replay !== undefined) {
      this.parkTimer = setTimeout(() => this.expire(), this.deps.config.resumeGraceMs);
      this.parkTimer.unref();
      this.onParked?.(true);
      return;
    }
    this.expire();
  }

  /** Drops everything: the client is gone for good. */
  private expire(): void {
    this.release();
  }

  /**
   * Ends the session from the server side (docs/protocol.md §6 shutdown, `DELETE /v1/sessions/{id}`): a started
   * session is flushed and gets its stats before the close; one never started is closed at once.
   */
  end(code: number, reason: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'streaming' && this.native !== undefined) {
      this.state = 'stopping';
      this.endCode = { code, reason };
      this.native.stop();
    } else if (this.state === 'awaiting_start') {
      this.closeWith(code, reason);
    }
  }

  private endCode: { code: number; reason: string } | undefined;

  /** Tells the client why, then closes 1011 (docs/engine.md: an internal failure ends only its own session). */
  fail(code: ErrorCode, message: string): void {
    this.error(code, message);
    this.closeWith(CloseCode.InternalError, 'internal error');
  }

  /** Tells the client why, then closes at once with `code` (watchdog limits, policy). */
  refuse(code: ErrorCode, message: string, closeCode: number, reason: string): void {
    this.error(code, message);
    this.closeWith(closeCode, reason);
  }

  /** Closes abruptly (stalled reader, forced shutdown). */
  kill(code: number, reason: string): void {
    this.closeWith(code, reason);
  }

  private statsMessage() {
    return { session_id: this.id, ...counters(this.nativeStats()) };
  }

  /** The native worker the session lives on (undefined before start). */
  get worker(): number | undefined {
    return this.native?.worker;
  }

  /** Bytes the transport holds for this client, unsent. */
  bufferedAmount(): number {
    return this.socket?.bufferedAmount() ?? 0;
  }

  /** Bytes per second of output audio, for the slow-reader limit. */
  outputBytesPerSecond(): number {
    const o = this.output;
    return o ? bytesPerSecond(o) : 0;
  }

  /** The native counters and latency percentiles: live while streaming, final once closed. */
  nativeStats(): SessionStats | undefined {
    return this.native?.stats();
  }

  info(): SessionInfo {
    const s = this.nativeStats();
    return {
      id: this.id,
      state: this.state,
      transport: this.transport,
      pipeline: { id: this.pipeline.id, version: this.pipeline.version },
      started_at: this.startedAt.toISOString(),
      input: this.input,
      output: this.output,
      worker: this.native?.worker ?? null,
      ...counters(s),
      queue_wait: summary(s?.queueWait),
      nodes: (s?.nodes ?? []).map((n) => ({ id: n.id, type: n.type, process: summary(n.process) })),
      ...this.describe?.(),
    };
  }
}
