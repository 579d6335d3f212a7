import WebSocket, { type ClientOptions } from 'ws';

export type Received = { kind: 'text'; json: Record<string, unknown> } | { kind: 'binary'; data: Buffer };

/** A real WebSocket client that records everything it receives, in order. */
export class TestClient {
  readonly received: Received[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received.push(
        isBinary
          ? { kind: 'binary', data: Buffer.from(data) }
          : { kind: 'text', json: JSON.parse(data.toString()) },
      );
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve(code);
      });
    });
    ws.on('error', () => {});
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Connects; rejects with the HTTP status when the upgrade is refused. */
  static connect(
    url: string,
    headers: Record<string, string> = {},
    options: ClientOptions = {},
  ): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, maxPayload: 64 * 1024 * 1024, ...options });
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () =>
          reject(
            Object.assign(new Error(`HTTP ${res.statusCode} ${body}`), { status: res.statusCode, body }),
          ),
        );
      });
      ws.once('error', reject);
    });
  }

  send(message: object): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  texts(): Array<Record<string, unknown>> {
    return this.received.flatMap((r) => (r.kind === 'text' ? [r.json] : []));
  }

  binaries(): Buffer[] {
    return this.received.flatMap((r) => (r.kind === 'binary' ? [r.data] : []));
  }

  /** Waits until `pred` holds over what was received (or the socket closed), up to `ms`. */
  async until(pred: (c: TestClient) => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      if (this.closeCode !== undefined && !pred(this)) {
        throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) before the condition held`);
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for messages');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Waits for a text message of `type`. */
  async next(type: string, ms = 10_000): Promise<Record<string, unknown>> {
    await this.until((c) => c.texts().some((t) => t.type === type), ms);
    return this.texts().find((t) => t.type === type) as Record<string, unknown>;
  }

  close(): void {
    this.ws.close();
  }
}
