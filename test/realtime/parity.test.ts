/**
 * docs/protocol.md: both transports give the same answers and close codes for the same input. Every bad input
 * runs against the `ws` port and the uWebSockets.js port of one server, and the two transcripts must match.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

const MAX_FRAME_BYTES = 32 * 1024;
const API_KEY = 'parity-key';
const auth = { authorization: `Bearer ${API_KEY}` };
const start = { type: 'start', input: { encoding: 's16le', sample_rate: 16000, channels: 1 } };
const gain = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };

type Step = string | Buffer | { text: Buffer };

/** What a client saw, without what may differ by design (ids, timings, free-text messages). */
interface Transcript {
  texts: Array<Record<string, unknown>>;
  binaries: number[];
  close: number | undefined;
  reason: string;
}

const json = (m: object) => JSON.stringify(m);
const started = (...steps: Step[]): Step[] => [json(start), ...steps];

/** Every bad input, as the steps a client sends after the upgrade. */
const cases: Record<string, Step[]> = {
  'not JSON': ['{not json'],
  'unknown type': [json({ type: 'dance' })],
  'not an object': ['[1,2]', 'null', '"start"'],
  'bad start': [json({ type: 'start', input: { encoding: 'flac', sample_rate: 16000, channels: 1 } })],
  'start with extra keys': [json({ ...start, extra: 1 })],
  'control before start': [
    json({ type: 'flush' }),
    json({ type: 'stop' }),
    json({ type: 'params', node: 'g', params: {} }),
  ],
  'binary before start': [Buffer.alloc(4)],
  'start twice': started(json(start)),
  'odd-length frame': started(Buffer.alloc(7), Buffer.alloc(640)),
  'empty frame': started(Buffer.alloc(0), Buffer.alloc(2)),
  'params to an unknown node': started(json({ type: 'params', node: 'nope', params: { db: 1 } })),
  'params with a bad value': started(json({ type: 'params', node: 'g', params: { db: 'loud' } })),
  'long text under the frame limit': started('x'.repeat(20_000)),
  'text over the frame limit': started(`"${'x'.repeat(MAX_FRAME_BYTES)}"`),
  'binary over the frame limit': started(Buffer.alloc(MAX_FRAME_BYTES + 2)),
  'binary far over the frame limit (under the transport cap)': started(
    Buffer.alloc(2 * MAX_FRAME_BYTES - 16),
  ),
  'flush then stop': started(Buffer.alloc(640), json({ type: 'flush' }), json({ type: 'stop' })),
};

function normalize(c: TestClient): Transcript {
  return {
    texts: c.texts().map((t) => {
      const { type, code, frame, node } = t;
      return Object.fromEntries(
        Object.entries({ type, code, frame, node }).filter(([, v]) => v !== undefined),
      );
    }),
    binaries: c.binaries().map((b) => b.length),
    close: c.closeCode,
    reason: c.closeReason,
  };
}

let server: Running;
let id: string;
const url = (t: 'ws' | 'uws') => `${server.base[t]}/v1/pipelines/${id}/stream`;

beforeAll(async () => {
  server = await startTestServer({
    MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
    API_KEYS: API_KEY,
    ALLOWED_ORIGINS: 'https://app.example',
  });
  id = await storePipeline(server.app, gain);
});
afterAll(() => server.close());

/** Sends the steps; the transcript is complete at the close, or once nothing more arrived for a while. */
async function transcript(t: 'ws' | 'uws', steps: Step[]): Promise<Transcript> {
  const c = await TestClient.connect(url(t), auth);
  for (const s of steps) {
    if (typeof s === 'string') c.sendRaw(s);
    else if (Buffer.isBuffer(s)) c.sendRaw(s, true);
    else c.sendRaw(s.text, false);
    // Answers to a start come before the next step is judged, on both transports.
    if (s === json(start)) await c.until((x) => x.texts().length > 0).catch(() => {});
  }
  let seen = -1;
  while (c.closeCode === undefined && seen !== c.received.length) {
    seen = c.received.length;
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 200))]);
  }
  if (c.closeCode === undefined) {
    const answered = normalize(c);
    c.close();
    await c.closed;
    return { ...answered, close: undefined, reason: '' };
  }
  return normalize(c);
}

describe('both transports answer every bad message alike', () => {
  it.each(Object.entries(cases))('%s', async (_name, steps) => {
    const ws = await transcript('ws', steps);
    const uws = await transcript('uws', steps);
    expect(uws).toEqual(ws);
    expect(ws.texts.every((m) => m.type !== 'error' || typeof m.code === 'string')).toBe(true);
  });

  it('closes invalid UTF-8 text with 1007 on ws; uWebSockets.js drops it without a close frame (1006)', async () => {
    // uWebSockets.js validates text itself and refuses to pass invalid UTF-8 on, closing without a close
    // frame; it has no option to do otherwise. The `ws` port applies RFC 6455 §8.1 (1007).
    const bad = started({ text: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect((await transcript('ws', bad)).close).toBe(1007);
    expect((await transcript('uws', bad)).close).toBe(1006);
  });
});

describe('both transports refuse bad upgrades alike', () => {
  const refusal = async (target: string, headers: Record<string, string>) => {
    const err = (await TestClient.connect(target, headers).then(
      (c) => {
        c.close();
        return { status: 101, body: '{}' };
      },
      (e: unknown) => e,
    )) as { status: number; body: string };
    const { status, code, title } = JSON.parse(err.body) as Record<string, unknown>;
    return { http: err.status, status, code, title };
  };
  const upgrades: Record<string, [path: (id: string) => string, headers: Record<string, string>]> = {
    'no API key': [(p) => `/v1/pipelines/${p}/stream`, {}],
    'wrong API key': [(p) => `/v1/pipelines/${p}/stream`, { authorization: 'Bearer nope' }],
    'foreign Origin': [(p) => `/v1/pipelines/${p}/stream`, { ...auth, origin: 'https://evil.example' }],
    'unknown pipeline': [() => '/v1/pipelines/pl_doesnotexist0000/stream', auth],
    'malformed percent-escape': [() => '/v1/pipelines/%E0%A4%A/stream', auth],
  };
  it.each(Object.entries(upgrades))('%s', async (_name, [path, headers]) => {
    const ws = await refusal(server.base.ws + path(id), headers);
    const uws = await refusal(server.base.uws + path(id), headers);
    expect(ws.http).toBeGreaterThanOrEqual(400);
    expect(uws).toEqual(ws);
  });
});
