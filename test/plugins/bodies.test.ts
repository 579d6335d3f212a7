/**
 * docs/limits.md: deeply nested bodies (JSON and YAML) get 400 with a code, never a 500 or a stalled or dead
 * process; client errors are not logged at error level and carry no stack.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { nestsTooDeep } from '../../src/pipeline/depth.js';
import { testApp, testConfig } from '../support/app.js';
import { lagEventLoop } from '../support/lag.js';

const DEPTH = 10_000;
const deepBodies: Array<{ type: string; body: string }> = [
  { type: 'application/json', body: `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}` },
  { type: 'application/json', body: `{"name":"x","nodes":[${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}]}` },
  { type: 'application/yaml', body: `name: x\nnodes: ${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}\n` },
  { type: 'application/yaml', body: `${'- '.repeat(5000)}x` },
  { type: 'application/yaml', body: `name: x\nnodes:\n${'- a: '.repeat(3000)}1\n` },
  {
    type: 'application/yaml',
    body: Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'),
  },
];

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('deeply nested bodies', () => {
  it('answer 400 RM_ERR_BODY_TOO_DEEP on every document route', async () => {
    app = await testApp();
    for (const { type, body } of deepBodies) {
      for (const [method, url] of [
        ['POST', '/v1/plan'],
        ['POST', '/v1/pipelines'],
        ['PUT', '/v1/pipelines/pl_aaaaaaaaaaaaaaaa'],
      ] as const) {
        const res = await app.inject({ method, url, payload: body, headers: { 'content-type': type } });
        expect(res.statusCode, `${method} ${url} ${type} ${body.slice(0, 20)}`).toBe(400);
        expect(res.json().code).toBe('RM_ERR_BODY_TOO_DEEP');
      }
    }
  });

  it('leave ordinary documents alone', async () => {
    app = await testApp();
    const doc = { name: 'ok', description: "it's [fine] {really}", nodes: [{ id: 'g', type: 'gain' }] };
    expect((await app.inject({ method: 'POST', url: '/v1/plan', payload: doc })).statusCode).toBe(200);
    const yaml =
      "name: ok # a [comment\ndescription: it's [fine]\nnodes:\n  - id: g\n    type: gain\n    params: { db: -3 }\n";
    const res = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: yaml,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(res.statusCode).toBe(200);
  });

  it('the scan bounds flow and block nesting', () => {
    expect(nestsTooDeep('[[[]]]', false)).toBe(false);
    expect(nestsTooDeep(`${'['.repeat(65)}${']'.repeat(65)}`, false)).toBe(true);
    expect(nestsTooDeep(`"${'['.repeat(100)}"`, false)).toBe(false);
    expect(nestsTooDeep(`a: "${'{'.repeat(100)}"`, true)).toBe(false);
    expect(nestsTooDeep(`${'- '.repeat(70)}x`, true)).toBe(true);
    expect(nestsTooDeep(`${' '.repeat(200)}x: 1`, true)).toBe(true);
  });
});

describe('client errors in the log', () => {
  it('are never logged at error level nor with a stack', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    app = await buildApp(testConfig(), { logger: { level: 'trace', stream } });
    const bad: Array<{ method: 'GET' | 'POST'; url: string; payload?: string; type?: string }> = [
      { method: 'POST', url: '/v1/plan', payload: '{not json', type: 'application/json' },
      { method: 'POST', url: '/v1/plan', payload: deepBodies[0]?.body ?? '', type: 'application/json' },
      { method: 'POST', url: '/v1/plan', payload: deepBodies[3]?.body ?? '', type: 'application/yaml' },
      { method: 'POST', url: '/v1/pipelines', payload: '{"name":1}', type: 'application/json' },
      { method: 'POST', url: '/v1/pipelines', payload: 'x', type: 'text/plain' },
      { method: 'GET', url: '/v1/pipelines/nope' },
      { method: 'GET', url: '/nothing/here' },
      { method: 'GET', url: '/v1/pipelines?limit=-1' },
    ];
    for (const r of bad) {
      const res = await app.inject({
        method: r.method,
        url: r.url,
        ...(r.payload === undefined ? {} : { payload: r.payload }),
        headers: r.type === undefined ? {} : { 'content-type': r.type },
      });
      expect(res.statusCode, `${r.method} ${r.url}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `${r.method} ${r.url}`).toBeLessThan(500);
    }
    expect(lines.length).toBeGreaterThan(0);
    const loud = lines.filter((l) => Number(l.level) >= 50 || JSON.stringify(l).includes('"stack"'));
    expect(loud).toEqual([]);
  });
});

describe('load shed in the log', () => {
  it('a 503 the server sheds on purpose (overloaded) is one warn line without a stack', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    app = await buildApp(testConfig({ MAX_EVENT_LOOP_DELAY_MS: '20' }), {
      logger: { level: 'info', stream },
    });
    await app.ready();
    const stopLag = await lagEventLoop(app);
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/pipelines' });
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('RM_ERR_OVERLOADED');
    } finally {
      stopLag();
    }
    const shed = lines.filter((l) => l.msg === 'request shed');
    expect(shed).toHaveLength(1);
    expect(shed[0]).toMatchObject({ level: 40, code: 'RM_ERR_OVERLOADED', status: 503 });
    const loud = lines.filter((l) => Number(l.level) >= 50 || JSON.stringify(l).includes('"stack"'));
    expect(loud).toEqual([]);
  });
});
