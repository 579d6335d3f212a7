import WebSocket from 'ws';

/** What a streaming client saw: binary answers in order, text messages parsed, and the close. */
export interface StreamRecord {
  binary: Buffer[];
  text: Array<Record<string, unknown>>;
  close: { code: number; reason: string };
}

/** Opens a WebSocket to `url`; rejects with the HTTP status when the upgrade is refused. */
export function connect(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      // With this listener, ws leaves the refused request open; end it so the server can close.
      req.destroy();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

/** Records everything the server sends on `ws` until it closes. */
export function record(ws: WebSocket): { record: StreamRecord; closed: Promise<StreamRecord> } {
  const rec: StreamRecord = { binary: [], text: [], close: { code: 0, reason: '' } };
  const closed = new Promise<StreamRecord>((resolve) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) rec.binary.push(data);
      else rec.text.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    });
    ws.on('close', (code, reason) => {
      rec.close = { code, reason: reason.toString() };
      resolve(rec);
    });
  });
  return { record: rec, closed };
}

/** Waits until a text message of `type` has arrived. */
export async function waitFor(
  rec: StreamRecord,
  type: string,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = rec.text.find((m) => m.type === type);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no "${type}" message; got ${JSON.stringify(rec.text)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Streams `frames` through a started session and stops it (docs/protocol.md): start, ready, binary frames,
 * stop, then everything up to the close.
 */
export async function streamFrames(
  url: string,
  input: { encoding: string; sample_rate: number; channels: number },
  frames: Buffer[],
  output: { encoding: string } = { encoding: 's16le' },
): Promise<StreamRecord> {
  const ws = await connect(url);
  const { record: rec, closed } = record(ws);
  ws.send(JSON.stringify({ type: 'start', input, output }));
  await waitFor(rec, 'ready');
  for (const f of frames) ws.send(f, { binary: true });
  ws.send(JSON.stringify({ type: 'stop' }));
  return closed;
}
