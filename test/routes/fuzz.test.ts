/**
 * Property test: random requests against every route of the OpenAPI document (random path params,
 * query strings, bodies including garbage, random content types) never get a 5xx.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH } from '../../scripts/openapi.js';
import { testApp } from '../support/app.js';
import { fixtureWavBytes } from '../support/audio.js';

interface Operation {
  method: string;
  path: string;
  query: string[];
}

const doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as {
  paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
};
const operations: Operation[] = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
  })),
);

const RUNS = 1000;
const validDoc = { name: 'fuzz', nodes: [{ id: 'g', type: 'gain', params: { db: -3 } }] };

let app: FastifyInstance;
let knownId: string;
beforeAll(async () => {
  app = await testApp({ RATE_LIMIT_PER_MIN: '0', MAX_UPLOAD_BYTES: '262144' });
  knownId = (await app.inject({ method: 'POST', url: '/v1/pipelines', payload: validDoc })).json().id;
});
afterAll(async () => {
  await app.close();
});

const contentTypes = fc.constantFrom(
  undefined,
  'application/json',
  'application/yaml',
  'text/yaml',
  'application/x-yaml',
  'audio/wav',
  'audio/x-wav',
  'application/octet-stream',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  'nonsense',
);

const pathParam = fc.oneof(
  fc.constant(() => knownId),
  fc.constant(() => 'pl_aaaaaaaaaaaaaaaa'),
  fc.string({ maxLength: 40 }).map((s) => () => s),
);

const queryValue = fc.oneof(
  fc.integer({ min: -5, max: 200_000 }).map(String),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('', '1', '16000', '8', 'NaN', '1e400', 'eyJ4IjoxfQ'),
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.json().map((s) => s),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constant(JSON.stringify(validDoc)),
  fc.constant('name: y\nnodes:\n  - id: r\n    type: resample\n    params: { sample_rate: 16000 }\n'),
  fc.constant(null).map(() => fixtureWavBytes('dtmf-8k-159.wav')),
  fc
    .uint8Array({ maxLength: 64 })
    .map((tail) => Buffer.concat([fixtureWavBytes('dtmf-8k-159.wav').subarray(0, 44), Buffer.from(tail)])),
);

describe('every route of the OpenAPI document', () => {
  it(`never answers 5xx to random requests (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...operations),
        pathParam,
        fc.dictionary(fc.string({ maxLength: 12 }), queryValue, { maxKeys: 3 }),
        fc.array(queryValue, { minLength: 4, maxLength: 4 }),
        body,
        contentTypes,
        fc.constantFrom(undefined, 'application/json', 'audio/wav', '*/*'),
        async (op, param, extraQuery, values, payload, contentType, accept) => {
          const path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(param()));
          const query = new URLSearchParams(extraQuery);
          op.query.forEach((name, i) => {
            if (values[i] !== undefined && i % 2 === 0) query.set(name, values[i]);
          });
          const headers: Record<string, string> = {};
          if (contentType) headers['content-type'] = contentType;
          if (accept) headers.accept = accept;
          const withBody = op.method === 'POST' || op.method === 'PUT';
          const res = await app.inject({
            method: op.method as 'GET',
            url: `${path}?${query}`,
            headers,
            ...(withBody && payload !== undefined ? { payload } : {}),
          });
          expect(
            res.statusCode,
            `${op.method} ${path}?${query} ${contentType}: ${res.body.slice(0, 300)}`,
          ).toBeLessThan(500);
        },
      ),
      { numRuns: RUNS, seed: 20_260_524 },
    );
  });
});
