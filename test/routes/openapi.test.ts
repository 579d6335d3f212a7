import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateOpenapi, OPENAPI_PATH } from '../../scripts/openapi.js';
import { testApp } from '../support/app.js';

describe('OpenAPI', () => {
  it('openapi/openapi.json matches the route schemas (run `npm run openapi` after changing them)', async () => {
    expect(await generateOpenapi()).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
  });

  it('serves the document at /openapi.json and its UI at /docs, assets included', async () => {
    const app = await testApp();
    try {
      const doc = await app.inject({ url: '/openapi.json' });
      expect(doc.statusCode).toBe(200);
      expect(doc.json()).toEqual(JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')));
      const ui = await app.inject({ url: '/docs/' });
      expect(ui.statusCode).toBe(200);
      expect(ui.headers['content-type']).toMatch(/text\/html/);
      const asset = await app.inject({ url: '/docs/static/swagger-ui-bundle.js' });
      expect(asset.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('documents every REST route of docs/rest.md as OpenAPI 3.1', () => {
    const doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
    expect(doc.openapi).toBe('3.1.0');
    const routes = Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST /v1/pipelines',
        'GET /v1/pipelines',
        'GET /v1/pipelines/{id}',
        'PUT /v1/pipelines/{id}',
        'DELETE /v1/pipelines/{id}',
        'GET /v1/pipelines/{id}/plan',
        'POST /v1/plan',
        'POST /v1/pipelines/{id}/process',
        'GET /v1/nodes',
        'GET /v1/sessions',
        'GET /v1/sessions/{id}',
        'DELETE /v1/sessions/{id}',
        'GET /metrics',
        'GET /healthz',
        'GET /readyz',
      ]),
    );
  });
});
