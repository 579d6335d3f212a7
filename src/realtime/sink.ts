/**
 * The sink of a provider session (docs/telephony/README.md): the server dials the pipeline's `sink.url` as a WebSocket
 * client, says `session` on every (re)connect, then streams processed audio and events to it and takes
 * playback audio and commands back. The call never waits for the sink:
 *
 *   connecting ──open──▶ open ──close/error──▶ down ──backoff──▶ connecting …      close() ──▶ closed
 *
 * - the connect attempt is bounded (`connectTimeoutMs`), then retried with exponential backoff;
 * - what we send is bounded: while the sink is down or not reading (its send buffer above
 *   `maxBufferedBytes`), messages are dropped and counted, never queued without bound;
 * - what it sends is bounded by `maxMessageBytes` (ws closes bigger messages with 1009).
 */
import WebSocket from 'ws';

export type SinkState = 'connecting' | 'open' | 'down' | 'closed';

export interface SinkOptions {
  connectTimeoutMs: number;
  maxBufferedBytes: number;
  maxMessageBytes: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

export const defaultSinkOptions: SinkOptions = {
  connectTimeoutMs: 5_000,
  maxBufferedBytes: 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  backoffMinMs: 250,
  backoffMaxMs: 5_000,
};

export interface SinkHandlers {
  /** The first message of every connection (`{"type":"session",…}`). */
  hello(): string;
  text(text: string): void;
  binary(data: Uint8Array): void;
  /** The link changed state (for logs, metrics and `/v1/sessions`). */
  state(state: SinkState, detail?: string): void;
}

export interface SinkInfo {
  url: string;
  state: SinkState;
  connects: number;
  reconnects: number;
  dropped_messages: number;
  last_error: string | null;
}

export class SinkLink {
  state: SinkState = 'connecting';
  private ws: WebSocket | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempts = 0;
  private connects = 0;
  private dropped = 0;
  private lastError: string | null = null;

  constructor(
    readonly url: string,
    private readonly handlers: SinkHandlers,
    private readonly options: SinkOptions = defaultSinkOptions,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.state === 'closed') return;
    this.setState('connecting');
    const ws = new WebSocket(this.url, {
      handshakeTimeout: this.options.connectTimeoutMs,
      maxPayload: this.options.maxMessageBytes,
      perMessageDeflate: false,
    });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      if (this.state === 'closed') return ws.close(1000);
      this.attempts = 0;
      this.connects++;
      this.setState('open');
      ws.send(this.handlers.hello());
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.state !== 'open') return;
      if (isBinary) this.handlers.binary(data);
      else this.handlers.text(data.toString('utf8'));
    });
    // Without an 'error' listener a refused connection or a malformed frame would throw.
    ws.on('error', (err) => {
      this.lastError = err.message.slice(0, 200);
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.state === 'closed') return;
      if (this.lastError === null || code !== 1006) this.lastError = `closed with ${code}`;
      this.setState('down', this.lastError);
      const delay = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** this.attempts);
      this.attempts++;
      this.retry = setTimeout(() => this.connect(), delay);
    });
  }

  private setState(state: SinkState, detail?: string): void {
    this.state = state;
    this.handlers.state(state, detail);
  }

  private writable(): WebSocket | undefined {
    const ws = this.ws;
    if (this.state !== 'open' || ws === undefined || ws.readyState !== WebSocket.OPEN) return undefined;
    if (ws.bufferedAmount > this.options.maxBufferedBytes) return undefined;
    return ws;
  }

  sendText(text: string): void {
    const ws = this.writable();
    if (ws === undefined) this.dropped++;
    else ws.send(text);
  }

  sendBinary(data: Uint8Array): void {
    const ws = this.writable();
    if (ws === undefined) this.dropped++;
    // ws keeps what it cannot write at once: a copy, since `data` is only lent (session.ts `Socket`).
    else ws.send(Buffer.from(data), { binary: true });
  }

  close(code = 1000, reason = 'call ended'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.retry !== undefined) clearTimeout(this.retry);
    const ws = this.ws;
    this.ws = undefined;
    if (ws === undefined) return;
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    else ws.terminate();
  }

  info(): SinkInfo {
    return {
      url: this.url,
      state: this.state,
      connects: this.connects,
      reconnects: Math.max(0, this.connects - 1),
      dropped_messages: this.dropped,
      last_error: this.lastError,
    };
  }
}

/**
 * docs/telephony/README.md: may a sink URL be dialled? Entries are `host`, `host:port` or `*.domain` (any subdomain);
 * hosts compare case-insensitively (RFC 3986 §3.2.2), an entry without a port allows every port.
 */
export function sinkHostAllowed(allowlist: readonly string[], url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') return false;
  const host = parsed.hostname.toLowerCase();
  const port = parsed.port || (parsed.protocol === 'wss:' ? '443' : '80');
  return allowlist.some((raw) => {
    const entry = raw.toLowerCase();
    const colon = entry.lastIndexOf(':');
    const hasPort = colon > 0 && /^\d+$/.test(entry.slice(colon + 1)) && !entry.endsWith(']');
    const name = hasPort ? entry.slice(0, colon) : entry;
    if (hasPort && entry.slice(colon + 1) !== port) return false;
    if (name.startsWith('*.')) return host.endsWith(name.slice(1)) && host.length > name.length - 1;
    return host === name || host === name.replace(/^\[|\]$/g, '');
  });
}
