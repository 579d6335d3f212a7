import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';

describe('browser client files', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp({ API_KEYS: 'k1' });
  });
  afterAll(() => app.close());

  it('serves the page at / and its assets under /ui/ without a key', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script type="module" src="/ui/app.js">');

    for (const [url, type] of [
      ['/ui/app.js', /javascript/],
      ['/ui/worklets.js', /javascript/],
      ['/ui/styles.css', /^text\/css/],
    ] as const) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(type);
    }
  });

  it('keeps the API behind the key, whatever the path looks like', async () => {
    for (const url of ['/v1/pipelines', '/ui/../v1/pipelines', '/ui/%2e%2e/v1/pipelines', '/nope']) {
      const res = await app.inject({ method: 'GET', url });
      // Refused, or a static file that does not exist: never the API's answer.
      expect([401, 404], url).toContain(res.statusCode);
      expect(res.headers['content-type'], url).toMatch(/^application\/problem\+json/);
    }
    const res = await app.inject({ method: 'GET', url: '/ui/missing.js' });
    expect(res.statusCode).toBe(404);
  });
});
