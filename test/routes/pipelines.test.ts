import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';

const gainDoc = { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -6 } }] };

const asrYaml = `name: asr-frontend
description: 48 kHz stereo in, 16 kHz mono out
nodes:
  - id: mono
    type: downmix
  - id: resample
    type: resample
    params: { sample_rate: 16000, quality: high }
  - id: vad
    type: vad
    inputs: [resample]
output: resample
`;

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function create(payload: unknown = gainDoc) {
  const res = await app.inject({ method: 'POST', url: '/v1/pipelines', payload: payload as object });
  expect(res.statusCode).toBe(201);
  return res;
}

describe('POST /v1/pipelines', () => {
  it('creates from JSON: 201, Location, ETag, the stored document and its plan', async () => {
    const res = await create();
    const body = res.json();
    expect(body).toMatchObject({ version: 1, name: 'gain', definition: gainDoc });
    expect(body.id).toMatch(/^pl_[a-z2-7]{16}$/);
    expect(res.headers.location).toBe(`/v1/pipelines/${body.id}`);
    expect(res.headers.etag).toBe(`"${body.id}-v1"`);
    expect(body.plan).toMatchObject({ input: { sample_rate: 48000, channels: 2 }, output: 'g' });
    expect(body.created_at).toBe(body.updated_at);
  });

  it.each(['application/yaml', 'text/yaml', 'application/x-yaml'])(
    'creates from YAML sent as %s',
    async (type) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: asrYaml,
        headers: { 'content-type': type },
      });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body.name).toBe('asr-frontend');
      expect(body.definition.nodes[1]).toEqual({
        id: 'resample',
        type: 'resample',
        params: { sample_rate: 16000, quality: 'high' },
      });
      expect(body.plan.output_format).toEqual({ sample_rate: 16000, channels: 1 });
      expect((await app.store.get(body.id))?.source).toBe(asrYaml);
    },
  );

  it('answers 422 problem+json listing every problem of an invalid document', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/pipelines',
      payload: {
        name: 'bad',
        nodes: [
          { id: 'a', type: 'gain', params: { db: 100 } },
          { id: 'a', type: 'nope' },
          { id: 'c', type: 'gain', inputs: ['zzz'] },
        ],
      },
    });
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body.code).toBe('RM_ERR_INVALID_PIPELINE');
    const codes = body.errors.map((e: { code: string }) => e.code);
    expect(codes).toEqual(
      expect.arrayContaining([
        'RM_PIPE_BAD_PARAMS',
        'RM_PIPE_DUPLICATE_ID',
        'RM_PIPE_UNKNOWN_TYPE',
        'RM_PIPE_UNKNOWN_INPUT',
      ]),
    );
    expect(body.errors).toContainEqual(
      expect.objectContaining({ path: '/nodes/0/params/db', code: 'RM_PIPE_BAD_PARAMS' }),
    );
  });

  it('answers 422 for YAML that does not parse, and for a format conflict', async () => {
    const yaml = await app.inject({
      method: 'POST',
      url: '/v1/pipelines',
      payload: 'name: [unclosed',
      headers: { 'content-type': 'application/yaml' },
    });
    expect(yaml.statusCode).toBe(422);
    expect(yaml.json().errors[0].code).toBe('RM_PIPE_PARSE');
    const conflict = await app.inject({
      method: 'POST',
      url: '/v1/pipelines',
      payload: {
        name: 'c',
        nodes: [
          { id: 'r', type: 'resample', params: { sample_rate: 16000 } },
          { id: 'd', type: 'denoise' },
        ],
      },
    });
    expect(conflict.statusCode).toBe(422);
    expect(conflict.json().errors).toContainEqual(
      expect.objectContaining({ code: 'RM_PIPE_FORMAT_CONFLICT' }),
    );
  });

  it('keeps the status of body errors: malformed JSON 400, wrong content type 415, oversized 413', async () => {
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/pipelines',
      payload: '{"name": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('RM_ERR_BAD_REQUEST');
    for (const type of ['text/plain', 'audio/wav', 'image/png']) {
      const wrong = await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: 'x',
        headers: { 'content-type': type },
      });
      expect(wrong.statusCode).toBe(415);
      expect(wrong.json().code).toBe('RM_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    const big = await app.inject({
      method: 'POST',
      url: '/v1/pipelines',
      payload: `name: x\ndescription: ${'a'.repeat(app.config.maxBodyBytes)}\n`,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe('RM_ERR_PAYLOAD_TOO_LARGE');
  });

  it('answers 422 for a missing body', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/pipelines' });
    expect(res.statusCode).toBe(422);
  });
});

describe('GET /v1/pipelines', () => {
  it('pages with limit and cursor; a bad cursor or limit is 400', async () => {
    const fresh = await testApp();
    try {
      for (let i = 0; i < 5; i++) {
        await fresh.inject({ method: 'POST', url: '/v1/pipelines', payload: { ...gainDoc, name: `p${i}` } });
      }
      const names: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/v1/pipelines?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await fresh.inject({ method: 'GET', url });
        expect(res.statusCode).toBe(200);
        const page = res.json();
        names.push(...page.items.map((p: { name: string }) => p.name));
        expect(page.items[0]).not.toHaveProperty('plan');
        cursor = page.next_cursor;
        pages++;
      } while (cursor);
      expect(names).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
      expect(pages).toBe(3);
      for (const url of [
        '/v1/pipelines?cursor=garbage',
        '/v1/pipelines?limit=0',
        '/v1/pipelines?limit=101',
        '/v1/pipelines?limit=x',
      ]) {
        const bad = await fresh.inject({ method: 'GET', url });
        expect(bad.statusCode, url).toBe(400);
        expect(['RM_ERR_BAD_CURSOR', 'RM_ERR_BAD_REQUEST']).toContain(bad.json().code);
      }
    } finally {
      await fresh.close();
    }
  });
});

describe('GET /v1/pipelines/{id}', () => {
  it('answers the current version with its ETag, older ones with ?version=N, and 404 otherwise', async () => {
    const { id } = (await create()).json();
    await app.inject({ method: 'PUT', url: `/v1/pipelines/${id}`, payload: { ...gainDoc, name: 'v2' } });
    const current = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}` });
    expect(current.statusCode).toBe(200);
    expect(current.headers.etag).toBe(`"${id}-v2"`);
    expect(current.json()).toMatchObject({ id, version: 2, name: 'v2' });
    expect(current.json().plan.output).toBe('g');
    const old = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}?version=1` });
    expect(old.json()).toMatchObject({ version: 1, name: 'gain' });
    expect(old.headers.etag).toBe(`"${id}-v1"`);
    for (const url of [
      `/v1/pipelines/${id}?version=3`,
      '/v1/pipelines/pl_aaaaaaaaaaaaaaaa',
      '/v1/pipelines/nope',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().code).toBe('RM_ERR_PIPELINE_NOT_FOUND');
    }
    const bad = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}?version=zero` });
    expect(bad.statusCode).toBe(400);
  });

  it('answers If-None-Match with its current ETag by 304 with the ETag and no body', async () => {
    const { id } = (await create()).json();
    const first = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}` });
    const etag = first.headers.etag as string;
    expect(etag).toBe(`"${id}-v1"`);
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await app.inject({
        method: 'GET',
        url: `/v1/pipelines/${id}`,
        headers: { 'if-none-match': header },
      });
      expect(res.statusCode, header).toBe(304);
      expect(res.headers.etag).toBe(etag);
      expect(res.body).toBe('');
      expect(res.headers['content-length']).toBeUndefined();
    }
    const other = await app.inject({
      method: 'GET',
      url: `/v1/pipelines/${id}`,
      headers: { 'if-none-match': `"${id}-v9"` },
    });
    expect(other.statusCode).toBe(200);
    // A repeated answer (served from the cache of serialized bodies) is the same bytes and type.
    expect(other.body).toBe(first.body);
    expect(other.headers['content-type']).toBe(first.headers['content-type']);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
  });

  it('serves a new version after an update, and nothing after a delete', async () => {
    const { id } = (await create()).json();
    const v1 = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}` });
    const put = await app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: { ...gainDoc, name: 'louder', nodes: [{ id: 'g', type: 'gain', params: { db: 6 } }] },
    });
    expect(put.statusCode).toBe(200);
    const v2 = await app.inject({
      method: 'GET',
      url: `/v1/pipelines/${id}`,
      headers: { 'if-none-match': v1.headers.etag as string },
    });
    expect(v2.statusCode).toBe(200);
    expect(v2.headers.etag).toBe(`"${id}-v2"`);
    expect(v2.json()).toMatchObject({
      version: 2,
      name: 'louder',
      definition: { nodes: [{ params: { db: 6 } }] },
    });
    const again = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}?version=1` });
    expect(again.body).toBe(v1.body);
    expect((await app.inject({ method: 'DELETE', url: `/v1/pipelines/${id}` })).statusCode).toBe(204);
    const gone = await app.inject({
      method: 'GET',
      url: `/v1/pipelines/${id}`,
      headers: { 'if-none-match': v2.headers.etag as string },
    });
    expect(gone.statusCode).toBe(404);
  });
});

describe('PUT /v1/pipelines/{id}', () => {
  it('stores a new version, checking If-Match when sent', async () => {
    const { id } = (await create()).json();
    const noMatch = await app.inject({ method: 'PUT', url: `/v1/pipelines/${id}`, payload: gainDoc });
    expect(noMatch.statusCode).toBe(200);
    expect(noMatch.headers.etag).toBe(`"${id}-v2"`);
    const stale = await app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: gainDoc,
      headers: { 'if-match': `"${id}-v1"` },
    });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().code).toBe('RM_ERR_PRECONDITION_FAILED');
    const fresh = await app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: asrYaml,
      headers: { 'if-match': `"${id}-v2"`, 'content-type': 'application/yaml' },
    });
    expect(fresh.statusCode).toBe(200);
    expect(fresh.json()).toMatchObject({ version: 3, name: 'asr-frontend' });
    const star = await app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: gainDoc,
      headers: { 'if-match': '*' },
    });
    expect(star.statusCode).toBe(200);
  });

  it('answers 404 for an unknown pipeline and 422 for an invalid document', async () => {
    const missing = await app.inject({
      method: 'PUT',
      url: '/v1/pipelines/pl_aaaaaaaaaaaaaaaa',
      payload: gainDoc,
    });
    expect(missing.statusCode).toBe(404);
    const { id } = (await create()).json();
    const invalid = await app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: { name: 'x', nodes: [] },
    });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json().code).toBe('RM_ERR_INVALID_PIPELINE');
  });

  it('lets exactly one of 8 concurrent PUTs with the same If-Match win; the rest get 412', async () => {
    const { id } = (await create()).json();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        app.inject({
          method: 'PUT',
          url: `/v1/pipelines/${id}`,
          payload: { ...gainDoc, name: `writer-${i}` },
          headers: { 'if-match': `"${id}-v1"` },
        }),
      ),
    );
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, 412, 412, 412, 412, 412, 412, 412]);
    const now = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}` });
    expect(now.json().version).toBe(2);
  });
});

describe('DELETE /v1/pipelines/{id}', () => {
  it('answers 204, then 404; If-Match is honoured', async () => {
    const { id } = (await create()).json();
    const stale = await app.inject({
      method: 'DELETE',
      url: `/v1/pipelines/${id}`,
      headers: { 'if-match': `"${id}-v9"` },
    });
    expect(stale.statusCode).toBe(412);
    const ok = await app.inject({
      method: 'DELETE',
      url: `/v1/pipelines/${id}`,
      headers: { 'if-match': `"${id}-v1"` },
    });
    expect(ok.statusCode).toBe(204);
    expect(ok.body).toBe('');
    expect((await app.inject({ method: 'GET', url: `/v1/pipelines/${id}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/v1/pipelines/${id}` })).statusCode).toBe(404);
  });
});

describe('plans', () => {
  it('GET /v1/pipelines/{id}/plan answers the plan, for an input format when asked', async () => {
    const { id } = (
      await app.inject({
        method: 'POST',
        url: '/v1/pipelines',
        payload: asrYaml,
        headers: { 'content-type': 'application/yaml' },
      })
    ).json();
    const res = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}/plan` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      input: { sample_rate: 48000, channels: 2 },
      output_format: { sample_rate: 16000, channels: 1 },
    });
    expect(res.json().latency_ms).toBeGreaterThan(0);
    const mono16k = await app.inject({
      method: 'GET',
      url: `/v1/pipelines/${id}/plan?sample_rate=16000&channels=1`,
    });
    expect(mono16k.json().input).toEqual({ sample_rate: 16000, channels: 1 });
    expect(
      (await app.inject({ method: 'GET', url: '/v1/pipelines/pl_aaaaaaaaaaaaaaaa/plan' })).statusCode,
    ).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/v1/pipelines/${id}/plan?channels=9` })).statusCode).toBe(
      400,
    );
  });

  it('GET /v1/pipelines/{id}/plan answers 422 when the input format conflicts with the pipeline', async () => {
    const { id } = (await create({ name: 'dn', nodes: [{ id: 'd', type: 'denoise' }] })).json();
    const res = await app.inject({ method: 'GET', url: `/v1/pipelines/${id}/plan?sample_rate=16000` });
    expect(res.statusCode).toBe(422);
    expect(res.json().errors[0].code).toBe('RM_PIPE_FORMAT_CONFLICT');
  });

  it('POST /v1/plan validates and plans without storing (JSON and YAML), 422 when invalid', async () => {
    const before = (await app.store.list({ limit: 100 })).items.length;
    const json = await app.inject({ method: 'POST', url: '/v1/plan', payload: gainDoc });
    expect(json.statusCode).toBe(200);
    expect(json.json().nodes[0]).toMatchObject({ id: 'g', type: 'gain' });
    const yaml = await app.inject({
      method: 'POST',
      url: '/v1/plan?sample_rate=8000&channels=1',
      payload: asrYaml,
      headers: { 'content-type': 'text/yaml' },
    });
    expect(yaml.statusCode).toBe(200);
    expect(yaml.json().input).toEqual({ sample_rate: 8000, channels: 1 });
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: { name: 'x', nodes: [{ id: 'a', type: 'zzz' }] },
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().errors[0]).toMatchObject({ path: '/nodes/0/type', code: 'RM_PIPE_UNKNOWN_TYPE' });
    expect((await app.store.list({ limit: 100 })).items.length).toBe(before);
  });
});

describe('GET /v1/nodes', () => {
  it('lists every node type with its params schema and events', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nodes' });
    expect(res.statusCode).toBe(200);
    const items = res.json().items as Array<{
      type: string;
      emits_events: boolean;
      events: string[];
      params: object;
    }>;
    expect(items.map((n) => n.type)).toEqual(
      expect.arrayContaining([
        'gain',
        'downmix',
        'upmix',
        'resample',
        'normalize',
        'biquad',
        'limiter',
        'noise_gate',
        'denoise',
        'vad',
        'spectrum',
        'level',
        'dtmf',
      ]),
    );
    const vad = items.find((n) => n.type === 'vad');
    expect(vad).toMatchObject({ emits_events: true, events: ['speech_start', 'speech_end'] });
    expect(items.find((n) => n.type === 'gain')?.params).toMatchObject({
      type: 'object',
      properties: { db: { type: 'number' } },
    });
  });
});
