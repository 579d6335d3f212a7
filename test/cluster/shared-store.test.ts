/**
 * Several instances on one PostgreSQL (README.md "Deployment"), in one process: two apps built with the same
 * STORE_URL. A pipeline made through one is served and planned by the other at once, the other hears
 * of every change within a second (and drops its memoised plans), and If-Match holds across them.
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedPlanCount } from '../../src/planner.js';
import type { PipelineChange } from '../../src/store/index.js';
import { testApp } from '../support/app.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

const admin = postgresUrl();
const doc = (db: number) => ({ name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db } }] });

describe.skipIf(admin === undefined)('two instances on one PostgreSQL', () => {
  let a: FastifyInstance;
  let b: FastifyInstance;
  let drop: () => Promise<void>;
  let storeUrl: string;
  beforeAll(async () => {
    const db = await freshDatabase(admin ?? '');
    drop = db.drop;
    storeUrl = db.url;
    [a, b] = await Promise.all([testApp({ STORE_URL: storeUrl }), testApp({ STORE_URL: storeUrl })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await drop?.();
  });

  /** Resolves with the first change `app`'s store hears that satisfies `match`. */
  function hear(app: FastifyInstance, match: (c: PipelineChange) => boolean): Promise<PipelineChange> {
    return new Promise((resolve) => {
      const off = app.store.subscribe((change) => {
        if (!match(change)) return;
        off();
        resolve(change);
      });
    });
  }

  async function listening(app: FastifyInstance) {
    await (app.store as unknown as { listening(): Promise<void> }).listening();
  }

  it('serves a pipeline created through the other at once, and hears each change within a second', async () => {
    await listening(b);
    const created = await a.inject({ method: 'POST', url: '/v1/pipelines', payload: doc(-6) });
    expect(created.statusCode).toBe(201);
    const { id } = created.json();
    const read = await b.inject({ method: 'GET', url: `/v1/pipelines/${id}` });
    expect(read.statusCode).toBe(200);
    expect(read.headers.etag).toBe(created.headers.etag);
    expect(read.json().plan.nodes[0]).toMatchObject({ id: 'g', type: 'gain' });
    expect(cachedPlanCount(id)).toBeGreaterThan(0);

    const t0 = Date.now();
    const heard = hear(b, (c) => c.kind === 'updated' && c.id === id);
    const put = await a.inject({ method: 'PUT', url: `/v1/pipelines/${id}`, payload: doc(-3) });
    expect(put.statusCode).toBe(200);
    expect(await heard).toEqual({ kind: 'updated', id, version: 2 });
    expect(Date.now() - t0).toBeLessThan(1000); // README.md "Deployment": "its new version within one second"
    // Both apps share this process's plan cache: the notification dropped the pipeline's plans.
    expect(cachedPlanCount(id)).toBe(0);
    expect((await b.inject({ method: 'GET', url: `/v1/pipelines/${id}` })).json()).toMatchObject({
      version: 2,
      definition: doc(-3),
    });

    const gone = hear(b, (c) => c.kind === 'deleted' && c.id === id);
    expect((await a.inject({ method: 'DELETE', url: `/v1/pipelines/${id}` })).statusCode).toBe(204);
    await gone;
    expect((await b.inject({ method: 'GET', url: `/v1/pipelines/${id}` })).statusCode).toBe(404);
  });

  it('holds If-Match across instances: a stale ETag from one is 412 on the other, and one of two racing PUTs wins', async () => {
    const created = await a.inject({ method: 'POST', url: '/v1/pipelines', payload: doc(-1) });
    const { id } = created.json();
    const v1 = created.headers.etag as string;
    const moved = await b.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: doc(-2),
      headers: { 'if-match': v1 },
    });
    expect(moved.statusCode).toBe(200);
    const stale = await a.inject({
      method: 'PUT',
      url: `/v1/pipelines/${id}`,
      payload: doc(-4),
      headers: { 'if-match': v1 },
    });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().code).toBe('RM_ERR_PRECONDITION_FAILED');

    const v2 = moved.headers.etag as string;
    const racing = await Promise.all(
      [a, b, a, b].map((app, i) =>
        app.inject({
          method: 'PUT',
          url: `/v1/pipelines/${id}`,
          payload: doc(-10 - i),
          headers: { 'if-match': v2 },
        }),
      ),
    );
    expect(racing.map((r) => r.statusCode).sort()).toEqual([200, 412, 412, 412]);
    expect((await a.inject({ method: 'GET', url: `/v1/pipelines/${id}` })).json().version).toBe(3);
  });

  it('listens again after losing its notification connection, and says resync', async () => {
    await listening(b);
    const resync = hear(b, (c) => c.kind === 'resync');
    const client = new pg.Client({ connectionString: storeUrl });
    await client.connect();
    // The database drops the listening connection (a restart or failover would).
    await client.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    );
    await client.end();
    await resync;
    // Listen before writing: b may hear the NOTIFY before a's answer is back.
    const heard = hear(b, (c) => c.kind === 'created');
    const created = await a.inject({ method: 'POST', url: '/v1/pipelines', payload: doc(-5) });
    expect(created.statusCode).toBe(201);
    expect(await heard).toEqual({ kind: 'created', id: created.json().id, version: 1 });
  });

  it('answers 503 RM_ERR_STORE_BUSY while the database is unreachable, and recovers by itself', async () => {
    // A TCP relay between the instance and PostgreSQL stands for the network: cut it, then mend it.
    const target = new URL(storeUrl);
    const sockets = new Set<Socket>();
    const relay = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const port = (relay.address() as AddressInfo).port;
    const relayed = new URL(storeUrl);
    relayed.port = String(port);
    const app = await testApp({ STORE_URL: relayed.toString(), STORE_CONNECT_TIMEOUT_MS: '500' });
    expect((await app.inject({ method: 'GET', url: '/v1/pipelines' })).statusCode).toBe(200);

    await new Promise((resolve) => {
      relay.close(resolve);
      for (const s of sockets) s.destroy();
    });
    const cut = await app.inject({ method: 'GET', url: '/v1/pipelines' });
    expect(cut.statusCode).toBe(503);
    expect(cut.json().code).toBe('RM_ERR_STORE_BUSY');
    const created = await app.inject({ method: 'POST', url: '/v1/pipelines', payload: doc(-1) });
    expect(created.statusCode).toBe(503);

    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    expect((await app.inject({ method: 'GET', url: '/v1/pipelines' })).statusCode).toBe(200);
    await app.close();
    relay.close();
  });

  it('refuses to boot when the database cannot be reached', async () => {
    const nowhere = new URL(storeUrl);
    nowhere.port = '1';
    await expect(
      testApp({ STORE_URL: nowhere.toString(), STORE_CONNECT_TIMEOUT_MS: '500' }),
    ).rejects.toMatchObject({ code: 'RM_ERR_STORE_BUSY' });
  });
});
