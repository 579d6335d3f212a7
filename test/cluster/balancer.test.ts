/**
 * Several instances (README.md "Deployment"), as the README's deployment section runs them: three server processes
 * from dist/ on one PostgreSQL, Debian's HAProxy in front (least connections, health checks on /readyz,
 * WebSocket upgrades), all on loopback. Create through the balancer, stream through every instance,
 * update mid-stream, SIGTERM one instance (its sessions drain with 1001, /readyz takes it out, new
 * sessions land on the others), SIGKILL another (no acknowledged write lost, the last one serves all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { connect, record, type StreamRecord, waitFor } from '../support/ws.js';
import {
  type Balancer,
  eventually,
  haproxyPath,
  type Instance,
  startBalancer,
  startInstance,
} from './processes.js';

const admin = postgresUrl();
const haproxy = haproxyPath();
if (haproxy === undefined) {
  if (process.env.CI) throw new Error('CI must provide HAProxy (apt-get install haproxy; see .ci/run)');
  console.warn(
    '\n!!! haproxy is not installed: the multi-instance test is SKIPPED (apt-get install haproxy)\n',
  );
}

const SHUTDOWN_GRACE_MS = 3000;
/** Longer than HAProxy's check interval (250 ms) with room for a loaded CI machine. */
const DRAIN_DELAY_MS = 2500;
const input = { encoding: 's16le', sample_rate: 16000, channels: 1 };
const gain = (db: number) => ({ name: 'gain', nodes: [{ id: 'g', type: 'gain', params: { db } }] });

/** Frame n: 20 ms of 16 kHz mono s16le, a ramp that differs per frame. */
function frame(n: number): Buffer {
  const samples = new Int16Array(320);
  for (let i = 0; i < samples.length; i++) samples[i] = (((n * 320 + i) * 37) % 20000) - 10000;
  return Buffer.from(samples.buffer);
}

interface Session {
  ws: WebSocket;
  rec: StreamRecord;
  closed: Promise<StreamRecord>;
  id: string;
  version: number;
}

describe.skipIf(admin === undefined || haproxy === undefined)(
  'three instances behind HAProxy on one PostgreSQL',
  () => {
    let drop: () => Promise<void>;
    let instances: Instance[] = [];
    let balancer: Balancer | undefined;

    beforeAll(async () => {
      const db = await freshDatabase(admin ?? '');
      drop = db.drop;
      const env = {
        STORE_URL: db.url,
        SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
        DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
      };
      instances = await Promise.all(['i0', 'i1', 'i2'].map((name) => startInstance(name, env)));
      balancer = await startBalancer(instances);
    }, 60_000);

    afterAll(async () => {
      for (const i of instances) i.child.kill('SIGKILL');
      await Promise.all(instances.map((i) => i.exited));
      await balancer?.stop();
      await drop?.();
    });

    it('spreads sessions, follows an update, drains on SIGTERM and survives SIGKILL', async () => {
      const lb = balancer as Balancer;
      const [i0, i1, i2] = instances as [Instance, Instance, Instance];
      const wsBase = lb.url.replace('http', 'ws');

      // Create through the balancer; every instance serves the pipeline at once.
      const created = await fetch(`${lb.url}/v1/pipelines`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(gain(-6)),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      for (const i of instances) expect((await fetch(`${i.url}/v1/pipelines/${id}`)).status).toBe(200);

      async function open(): Promise<Session> {
        const ws = await connect(`${wsBase}/v1/pipelines/${id}/stream`);
        const { record: rec, closed } = record(ws);
        ws.send(JSON.stringify({ type: 'start', input }));
        const ready = await waitFor(rec, 'ready');
        const pipeline = ready.pipeline as { version: number };
        return { ws, rec, closed, id: ready.session_id as string, version: pipeline.version };
      }
      async function stream(s: Session, from: number, count: number): Promise<void> {
        const expected = s.rec.binary.length + count;
        for (let n = from; n < from + count; n++) s.ws.send(frame(n));
        await eventually(`${count} answers`, async () =>
          s.rec.binary.length === expected ? true : undefined,
        );
      }
      /** Which instance holds each session, from each instance's own /v1/sessions. */
      async function placement(among: Instance[]): Promise<Map<string, string>> {
        const where = new Map<string, string>();
        for (const i of among) {
          const { items } = (await (await fetch(`${i.url}/v1/sessions`)).json()) as {
            items: { id: string }[];
          };
          for (const s of items) where.set(s.id, i.name);
        }
        return where;
      }
      const output = (s: Session) => Buffer.concat(s.rec.binary);

      // Six sessions through the balancer: least connections puts two on each instance.
      const first: Session[] = [];
      for (let k = 0; k < 6; k++) first.push(await open());
      const where = await placement(instances);
      for (const i of instances) {
        expect(first.filter((s) => where.get(s.id) === i.name).length, i.name).toBe(2);
      }
      for (const s of first) await stream(s, 0, 10);
      // Same input, same pipeline version: byte-identical output, whichever instance ran it.
      for (const s of first) expect(output(s).equals(output(first[0] as Session))).toBe(true);
      expect(
        output(first[0] as Session).equals(Buffer.concat(Array.from({ length: 10 }, (_, n) => frame(n)))),
      ).toBe(false);

      // Update mid-stream: running sessions keep version 1 (docs/rest.md), new ones get version 2 anywhere.
      const put = await fetch(`${lb.url}/v1/pipelines/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'if-match': created.headers.get('etag') ?? '' },
        body: JSON.stringify(gain(-12)),
      });
      expect(put.status).toBe(200);
      for (const s of first) await stream(s, 10, 5);
      for (const s of first) expect(output(s).equals(output(first[0] as Session))).toBe(true);
      const second: Session[] = [];
      for (let k = 0; k < 3; k++) second.push(await open());
      expect(second.map((s) => s.version)).toEqual([2, 2, 2]);
      const whereSecond = await placement(instances);
      expect(new Set(second.map((s) => whereSecond.get(s.id))).size).toBe(3);
      for (const s of second) await stream(s, 0, 10);
      const v2 = output(second[0] as Session);
      expect(v2.equals(output(first[0] as Session).subarray(0, v2.length))).toBe(false);
      for (const s of second) expect(output(s).equals(v2)).toBe(true);

      // SIGTERM i0. For DRAIN_DELAY_MS its /readyz answers 503 while its sessions go on, so HAProxy's
      // health check takes it out; then its sessions are drained: stats, then 1001.
      const onI0 = [...first, ...second].filter((s) => whereSecond.get(s.id) === 'i0');
      expect(onI0.length).toBeGreaterThan(0);
      i0.child.kill('SIGTERM');
      await eventually('i0 to fail /readyz', async () =>
        (await fetch(`${i0.url}/readyz`)).status === 503 ? true : undefined,
      );
      for (const s of onI0) await stream(s, 20, 3); // still streaming while the balancer lets go
      const out = await eventually('HAProxy to take i0 out', async () => {
        const state = (await lb.servers()).get('i0');
        return state?.status.startsWith('DOWN') ? state : undefined;
      });
      // Taken out by its readiness answer (layer 7: HTTP 503), not by a refused connection.
      expect(out).toMatchObject({ check: 'L7STS', code: '503' });
      const third: Session[] = [];
      for (let k = 0; k < 4; k++) third.push(await open());
      const whereThird = await placement([i1, i2]);
      for (const s of third) expect(['i1', 'i2']).toContain(whereThird.get(s.id));
      for (const s of third) await stream(s, 0, 3);
      for (const s of onI0) {
        const closed = await s.closed;
        expect(closed.close.code, 'drained with 1001').toBe(1001);
        expect(closed.text.some((m) => m.type === 'stats')).toBe(true);
      }
      expect(await i0.exited).toEqual({ code: 0, signal: null });

      // SIGKILL i1 right after it acknowledged a write: the write is there, i2 serves everything.
      const direct = await fetch(`${i1.url}/v1/pipelines/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'if-match': put.headers.get('etag') ?? '' },
        body: JSON.stringify(gain(-3)),
      });
      expect(direct.status).toBe(200);
      i1.child.kill('SIGKILL');
      const onI1 = [...first, ...second, ...third].filter(
        (s) => (whereThird.get(s.id) ?? whereSecond.get(s.id)) === 'i1' && s.rec.close.code === 0,
      );
      expect(onI1.length).toBeGreaterThan(0);
      for (const s of onI1) expect((await s.closed).close.code).toBe(1006); // no close frame from a dead process
      await eventually('HAProxy to take i1 out', async () =>
        (await lb.servers()).get('i1')?.status.startsWith('DOWN') ? true : undefined,
      );
      const read = await fetch(`${lb.url}/v1/pipelines/${id}`);
      expect(((await read.json()) as { version: number }).version).toBe(3);
      const last = await open();
      expect(last.version).toBe(3);
      expect((await placement([i2])).get(last.id)).toBe('i2');
      await stream(last, 0, 5);
      last.ws.send(JSON.stringify({ type: 'stop' }));
      expect((await last.closed).close.code).toBe(1000);
    }, 90_000);
  },
);
