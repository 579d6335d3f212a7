/**
 * Optimistic concurrency under real contention (docs/rest.md: PUT with a stale If-Match is 412; README "Several instances": it
 * holds across instances): of N updates that all name the same version, exactly one is stored. Runs
 * against every store, within one process and across processes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations, openDatabase, schemaVersion } from '../../src/store/db.js';
import { StoreError } from '../../src/store/errors.js';
import { PostgresStore, postgresMigrations } from '../../src/store/postgres.js';
import { backends, type Place } from './backends.js';
import { exited, spawnFixture, waitForLine } from './fixtures/child.js';
import { documentFor } from './fixtures/documents.js';

const N = 8;

describe.each(backends)('ETag races ($name)', (backend) => {
  let place: Place;
  beforeEach(async () => {
    place = await backend.place();
  });
  afterEach(async () => {
    await place.remove();
  });

  it(`${N} connections in one process: one update wins, ${N - 1} get RM_ERR_PRECONDITION_FAILED`, async () => {
    const stores = await Promise.all(Array.from({ length: N }, () => place.open()));
    const { id } = await (stores[0] ?? (await place.open())).create(documentFor(1));
    const outcomes = await Promise.all(
      stores.map(async (store, i) => {
        try {
          return `v${(await store.update(id, documentFor(10 + i), { ifVersion: 1 })).version}`;
        } catch (err) {
          expect(err).toBeInstanceOf(StoreError);
          return (err as StoreError).code;
        }
      }),
    );
    expect(outcomes.filter((o) => o === 'v2')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'RM_ERR_PRECONDITION_FAILED')).toHaveLength(N - 1);
    for (const store of stores) expect((await store.get(id))?.version).toBe(2);
    await Promise.all(stores.map((store) => store.close()));
  });

  it(`${N} processes released at once: exactly one update wins, the store ends at version 2`, async () => {
    const seed = await place.open();
    const { id } = await seed.create(documentFor(1));
    await seed.close();

    const children = Array.from({ length: N }, (_, i) =>
      spawnFixture('updater.ts', [place.location, id, '1', String(10 + i)]),
    );
    try {
      await Promise.all(children.map((child) => waitForLine(child, (line) => line === 'ready')));
      const results = children.map((child) => waitForLine(child, (line) => line.startsWith('{')));
      // Every contender holds an open connection; release them together.
      for (const child of children) child.stdin?.write('go\n');
      const outcomes = (await Promise.all(results)).map(
        (line) => JSON.parse(line) as { ok: boolean; version?: number; code?: string },
      );

      expect(outcomes.filter((o) => o.ok)).toEqual([{ ok: true, version: 2 }]);
      expect(outcomes.filter((o) => !o.ok)).toEqual(
        Array.from({ length: N - 1 }, () => ({ ok: false, code: 'RM_ERR_PRECONDITION_FAILED' })),
      );
      const after = await place.open();
      expect((await after.get(id))?.version).toBe(2);
      expect(await after.get(id, 3)).toBeUndefined();
      await after.close();
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
    }
  });

  it(`${N} processes opening a fresh store at once: each migration step runs once, every create lands`, async () => {
    const children = Array.from({ length: N }, (_, i) =>
      spawnFixture('opener.ts', [place.location, String(i)]),
    );
    try {
      await Promise.all(children.map((child) => waitForLine(child, (line) => line === 'ready')));
      const results = children.map((child) => waitForLine(child, (line) => line.startsWith('{')));
      for (const child of children) child.stdin?.write('go\n');
      const ids = (await Promise.all(results)).map((line) => (JSON.parse(line) as { id: string }).id);

      if (backend.name === 'sqlite') {
        const db = openDatabase(place.location);
        expect(schemaVersion(db)).toBe(migrations.length);
        db.close();
      } else {
        const pg = await PostgresStore.open(place.location);
        expect(await pg.schemaVersion()).toBe(postgresMigrations.length);
        await pg.close();
      }
      const after = await place.open();
      const listed = (await after.list({ limit: 100 })).items.map((p) => p.id);
      expect(listed.sort()).toEqual([...ids].sort());
      await after.close();
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
    }
  });
});
