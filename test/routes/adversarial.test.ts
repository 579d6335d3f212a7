/**
 * The adversarial suite of issue 11 for the REST API (docs/limits.md): fast-check over random pipeline
 * documents (valid, with extreme params, corrupted, deeply nested) and random WAV headers against the
 * real app. Every answer is a 2xx or a 4xx whose `code` is in the one catalog; never a 5xx; the process
 * stays alive and its memory bounded. (The WebSocket message-sequence part lives with the transports.)
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalog } from '../../src/errors.js';
import { pipelineIssueCodes } from '../../src/pipeline/issues.js';
import { corruptedPipeline, inputFormat, validPipeline } from '../pipeline/arbitraries.js';
import { testApp } from '../support/app.js';

const RUNS = 500;
/** Memory the whole suite may add to the process (it holds an app, the engine and fast-check). */
const RSS_GROWTH_BOUND = 512 * 1024 * 1024;

let app: FastifyInstance;
const pipelines: string[] = [];
let rssBefore = 0;

beforeAll(async () => {
  app = await testApp({ RATE_LIMIT_PER_MIN: '0', MAX_UPLOAD_BYTES: String(1024 * 1024) });
  const docs = [
    { name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db: -3 } }] },
    {
      name: 'resample',
      nodes: [
        { id: 'r1', type: 'resample', params: { sample_rate: 192000, quality: 'fast' } },
        { id: 'r2', type: 'resample', params: { sample_rate: 8000, quality: 'high' } },
      ],
    },
    {
      name: 'analysis',
      nodes: [
        { id: 's', type: 'spectrum' },
        { id: 'l', type: 'level' },
        { id: 'd', type: 'dtmf' },
      ],
    },
    {
      name: 'mono',
      nodes: [
        { id: 'm', type: 'downmix' },
        { id: 'u', type: 'upmix', params: { channels: 8 } },
      ],
    },
  ];
  for (const doc of docs) {
    const res = await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc });
    expect(res.statusCode).toBe(201);
    pipelines.push(res.json().id);
  }
  rssBefore = process.memoryUsage().rss;
});

afterAll(async () => {
  await app.close();
});

/** Checks one answer: no 5xx, and every code it carries is catalogued. */
function expectCatalogued(
  res: { statusCode: number; body: string; headers: Record<string, unknown> },
  what: string,
) {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode < 400) return;
  const body = JSON.parse(res.body) as { code: string; errors?: Array<{ code: string }> };
  expect(Object.keys(errorCatalog), what).toContain(body.code);
  for (const e of body.errors ?? []) {
    // Request-schema problems carry the JSON Schema keyword; document problems a pipeline code.
    if (body.code === 'RM_ERR_INVALID_PIPELINE')
      expect(Object.keys(pipelineIssueCodes), what).toContain(e.code);
  }
}

/** Extreme but schema-valid params: the corners of every range. */
const extremeNode = fc.oneof(
  fc.record({
    id: fc.constant('r'),
    type: fc.constant('resample'),
    params: fc.record({
      sample_rate: fc.constantFrom(8000, 192000),
      quality: fc.constantFrom('fast', 'high'),
    }),
  }),
  fc.record({
    id: fc.constant('s'),
    type: fc.constant('spectrum'),
    params: fc.record({
      fft_size: fc.constantFrom(256, 8192),
      hop: fc.constantFrom(1, 2, 64),
      bands: fc.constantFrom(0, 512),
    }),
  }),
  fc.record({ id: fc.constant('u'), type: fc.constant('upmix'), params: fc.constant({ channels: 8 }) }),
  fc.record({
    id: fc.constant('n'),
    type: fc.constant('normalize'),
    params: fc.constant({ window_ms: 5000 }),
  }),
  fc.record({ id: fc.constant('lv'), type: fc.constant('level'), params: fc.constant({ interval_ms: 10 }) }),
);

const extremePipeline = fc.array(extremeNode, { minLength: 1, maxLength: 60 }).map((nodes) => ({
  name: 'extreme',
  optimization: { enable_fusion: false, constant_folding: false, remove_dead_code: false },
  nodes: nodes.map((n, i) => ({ ...n, id: `${n.id}${i}` })),
}));

const deepJunk = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '- ', '[{"x":'))
  .map(([depth, open]) => open.repeat(depth));

const documentBody = fc.oneof(
  validPipeline(24).map((g) => g.document as unknown),
  corruptedPipeline().map((c) => c.document),
  extremePipeline,
  fc.anything(),
);

describe('random pipeline documents', () => {
  it(`never get a 5xx on /v1/plan or /v1/pipelines (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(documentBody, inputFormat, fc.boolean(), async (doc, format, store) => {
        const query = `?sample_rate=${format.sample_rate}&channels=${format.channels}`;
        const url = store ? '/v1/pipelines' : `/v1/plan${query}`;
        const payload = JSON.stringify(doc) ?? 'null';
        const res = await app.inject({
          method: 'POST',
          url,
          payload,
          headers: { 'content-type': 'application/json' },
        });
        expectCatalogued(res, `POST ${url}`);
      }),
      { numRuns: RUNS, seed: 11_2026 },
    );
  });

  it('never get a 5xx for deep or broken text, JSON or YAML', async () => {
    await fc.assert(
      fc.asyncProperty(
        deepJunk,
        fc.constantFrom('application/json', 'application/yaml'),
        async (text, type) => {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/plan',
            payload: text,
            headers: { 'content-type': type },
          });
          expectCatalogued(res, `deep ${type} ${text.slice(0, 12)}…`);
        },
      ),
      { numRuns: 60, seed: 11_2027 },
    );
  });
});

/** A WAV whose every header field may lie. */
const randomWav = fc
  .record({
    riff: fc.constantFrom('RIFF', 'RIFX', 'RIFF', 'RIFF'),
    riffSize: fc.oneof(fc.constant(-1), fc.nat()),
    wave: fc.constantFrom('WAVE', 'WAVE', 'AVI '),
    fmtSize: fc.constantFrom(16, 18, 40, 0, 8, 0xffffffff),
    tag: fc.constantFrom(1, 3, 0xfffe, 0, 2, 0xffff),
    channels: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(0xffff)),
    rate: fc.oneof(fc.constantFrom(0, 1, 7999, 8000, 48000, 192000, 192001, 0xffffffff), fc.nat()),
    bits: fc.constantFrom(0, 8, 16, 24, 32, 64),
    blockAlign: fc.integer({ min: 0, max: 0xffff }),
    extraChunk: fc.option(fc.record({ id: fc.constantFrom('LIST', 'junk', 'data', 'fmt '), size: fc.nat() })),
    dataSize: fc.oneof(fc.constant(-1), fc.nat(), fc.constant(0)),
    payload: fc.uint8Array({ maxLength: 4096 }),
  })
  .map((w) => {
    const fmt = Buffer.alloc(Math.min(w.fmtSize, 40));
    if (fmt.length >= 16) {
      fmt.writeUInt16LE(w.tag, 0);
      fmt.writeUInt16LE(w.channels, 2);
      fmt.writeUInt32LE(w.rate >>> 0, 4);
      fmt.writeUInt32LE((w.rate * Math.max(1, w.blockAlign)) >>> 0, 8);
      fmt.writeUInt16LE(w.blockAlign, 12);
      fmt.writeUInt16LE(w.bits, 14);
    }
    const chunk = (id: string, size: number, body: Uint8Array) => {
      const head = Buffer.alloc(8);
      head.write(id, 0, 'latin1');
      head.writeUInt32LE(size >>> 0, 4);
      return Buffer.concat([head, body]);
    };
    const parts = [Buffer.from(w.wave, 'latin1'), chunk('fmt ', w.fmtSize, fmt)];
    if (w.extraChunk) parts.push(chunk(w.extraChunk.id, w.extraChunk.size, new Uint8Array(7)));
    parts.push(chunk('data', w.dataSize < 0 ? w.payload.length : w.dataSize, w.payload));
    const body = Buffer.concat(parts);
    const riff = Buffer.alloc(8);
    riff.write(w.riff, 0, 'latin1');
    riff.writeUInt32LE((w.riffSize < 0 ? body.length : w.riffSize) >>> 0, 4);
    return Buffer.concat([riff, body]);
  });

describe('random WAV headers', () => {
  it(`never get a 5xx on /process (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        randomWav,
        fc.nat(),
        fc.constantFrom('audio/wav', 'application/json'),
        async (wav, k, accept) => {
          const id = pipelines[k % pipelines.length] as string;
          const res = await app.inject({
            method: 'POST',
            url: `/v1/pipelines/${id}/process`,
            payload: wav,
            headers: { 'content-type': 'audio/wav', accept },
          });
          if (res.statusCode >= 400) expectCatalogued(res, `process ${wav.subarray(0, 44).toString('hex')}`);
          else expect(res.statusCode).toBe(200);
        },
      ),
      { numRuns: RUNS, seed: 11_2028 },
    );
  });
});

describe('after the suite', () => {
  it('the process is alive and its memory bounded', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
