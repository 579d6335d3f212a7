/**
 * docs/limits.md: authentication and the Origin check are decided on the route that will actually run, so a
 * URL that merely looks like a streaming or open path gets no further without a key.
 */
import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { makeAuthorizer } from '../../src/plugins/auth.js';
import { testApp } from '../support/app.js';
import { connect } from '../support/ws.js';

const doc = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };

/** Requests whose raw URL ends in (or contains) `/stream` or an open path, but match a REST route. */
const lookalikes: Array<{ method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: object }> = [
  { method: 'GET', url: '/v1/pipelines?x=/stream' },
  { method: 'POST', url: '/v1/pipelines?x=/stream', payload: doc },
  { method: 'GET', url: '/v1/pipelines?/stream' },
  { method: 'GET', url: '/v1/sessions?x=/stream' },
  { method: 'GET', url: '/v1/sessions/x%2Fstream' },
  { method: 'DELETE', url: '/v1/sessions/x%2Fstream' },
  { method: 'GET', url: '/v1/sessions/x%2fstream' },
  { method: 'GET', url: '/v1/pipelines/pl_x%2Fstream' },
  { method: 'DELETE', url: '/v1/pipelines/pl_x%2Fstream' },
  { method: 'GET', url: '/v1/pipelines/pl_x/plan?/stream' },
  { method: 'GET', url: '/v1/nodes?a=/healthz' },
  { method: 'GET', url: '/v1/nodes;/stream' },
  { method: 'GET', url: '/v1/sessions/a;/stream' },
  { method: 'GET', url: '/v1/nodes#/stream' },
  { method: 'GET', url: '/v1/pipelines#/stream' },
  { method: 'POST', url: '/v1/pipelines#/stream', payload: doc },
  { method: 'DELETE', url: '/v1/sessions/ss_x#/stream' },
  { method: 'GET', url: '/v1/sessions#x/stream' },
  { method: 'GET', url: '/v1/nodes#/healthz' },
  { method: 'GET', url: '/metrics?/stream' },
  { method: 'GET', url: '/v1/sessions/%2e%2e%2fstream' },
  { method: 'GET', url: '/v1/pipelines/x/stream/' },
];

/**
 * Sends `r` over a real socket, byte for byte (`app.inject` parses the URL first and would drop a
 * `#fragment`, which the router ignores but a raw-URL test would see).
 */
async function raw(
  port: number,
  r: (typeof lookalikes)[number],
  headers: Record<string, string> = {},
): Promise<{ status: number; code: string }> {
  const body = r.payload === undefined ? undefined : JSON.stringify(r.payload);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.url,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).code }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(app: FastifyInstance): Promise<number> {
  return Number(new URL(await app.listen({ port: 0, host: '127.0.0.1' })).port);
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('authentication on the matched route', () => {
  it('lets no URL that only looks like a stream or open path reach a route without a key', async () => {
    app = await testApp({ API_KEYS: 'k1' });
    const port = await listen(app);
    for (const r of lookalikes) {
      const res = await raw(port, r);
      // 401 where a route matched; 404 where none did (the not-found handler serves nothing).
      expect([401, 404], `${r.method} ${r.url}`).toContain(res.status);
      expect(res.code).toBe(res.status === 401 ? 'RM_ERR_UNAUTHORIZED' : 'RM_ERR_NOT_FOUND');
    }
    // The router ignores a fragment; these match a REST route and must be refused by it.
    for (const url of ['/v1/nodes#/stream', '/v1/pipelines?x=/stream', '/v1/sessions/x%2Fstream']) {
      expect((await raw(port, { method: 'GET', url })).status, url).toBe(401);
    }
  });

  it('accepts ?token= only on WebSocket routes', async () => {
    app = await testApp({ API_KEYS: 'k1' });
    expect((await app.inject({ url: '/v1/pipelines?token=k1' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/sessions?token=k1&x=/stream' })).statusCode).toBe(401);
    // A plain GET of the stream route is still authenticated first (then it is no upgrade).
    const plain = await app.inject({ url: '/v1/pipelines/pl_aaaaaaaaaaaaaaaa/stream' });
    expect(plain.statusCode).toBe(401);
  });

  it('takes the Bearer scheme in any case (RFC 7235 §2.1)', async () => {
    app = await testApp({ API_KEYS: 'k1' });
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const res = await app.inject({ url: '/v1/nodes', headers: { authorization: `${scheme} k1` } });
      expect(res.statusCode, scheme).toBe(200);
    }
    for (const bad of ['Bearerk1', 'Basic k1', 'Bearer', 'Bearer  ', 'k1', 'Bearer k1 k1']) {
      const res = await app.inject({ url: '/v1/nodes', headers: { authorization: bad } });
      expect(res.statusCode, bad).toBe(401);
    }
  });

  it('authenticates WebSocket upgrades of look-alike paths before anything else', async () => {
    app = await testApp({ API_KEYS: 'k1' });
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: doc,
        headers: { authorization: 'bearer k1' },
      })
    ).json();
    const base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
    await expect(connect(`${base}/v1/pipelines/${id}/stream?x=1`)).rejects.toThrow(/401/);
    await expect(connect(`${base}/v1/pipelines/${id}/stream?token=k2`)).rejects.toThrow(/401/);
    (await connect(`${base}/v1/pipelines/${id}/stream?token=k1`)).close();
    (await connect(`${base}/v1/pipelines/${id}/stream`, { authorization: 'BEARER k1' })).close();
  });
});

describe('the Origin check on the matched route', () => {
  it('answers 403 to look-alike URLs from a foreign Origin', async () => {
    app = await testApp({ ALLOWED_ORIGINS: 'https://app.example' });
    const port = await listen(app);
    const origin = { origin: 'https://evil.example' };
    for (const r of lookalikes) {
      const res = await raw(port, r, origin);
      expect([403, 404], `${r.method} ${r.url}`).toContain(res.status);
    }
    const res = await raw(port, { method: 'GET', url: '/v1/nodes#/stream' }, origin);
    expect(res).toEqual({ status: 403, code: 'RM_ERR_ORIGIN' });
  });
});

describe('makeAuthorizer (the check both WebSocket transports call)', () => {
  const authorize = makeAuthorizer(['k1']);
  it('takes the header or ?token=, never throws on malformed URLs', () => {
    expect(authorize({ authorization: 'Bearer k1' }, '')).toBe(true);
    expect(authorize({ authorization: 'bearer k1' }, '/x')).toBe(true);
    expect(authorize({}, '/v1/pipelines/p/stream?token=k1')).toBe(true);
    expect(authorize({}, '/v1/pipelines/p/stream?token=%E0%A4%A')).toBe(false);
    expect(authorize({}, '/v1/pipelines/p/stream?token=')).toBe(false);
    expect(authorize({ authorization: ['Bearer k1'] }, '')).toBe(true);
    expect(authorize({}, '/v1/pipelines/p/stream')).toBe(false);
    expect(makeAuthorizer([])({}, '')).toBe(true);
  });
});
