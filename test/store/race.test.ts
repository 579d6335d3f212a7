/**
 * Optimistic concurrency under real contention (docs/rest.md: PUT with a stale If-Match is 412): of N updates
 * that all name the same version, exactly one is stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations, StoreError, schemaVersion } from '../../src/store/db.js';
import { PipelineStore } from '../../src/store/pipelines.js';
import { exited, spawnFixture, waitForLine } from './fixtures/child.js';
import { documentFor } from './fixtures/documents.js';

const N = 8;

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'rm-store-race-'));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ETag races', () => {
  it(`${N} connections in one process: one update wins, ${N - 1} get RM_ERR_PRECONDITION_FAILED`, () => {
    const stores = Array.from({ length: N }, () => PipelineStore.open(dataDir));
    const { id } = stores[0]?.create(documentFor(1)) ?? { id: '' };
    const outcomes = stores.map((store, i) => {
      try {
        return `v${store.update(id, documentFor(10 + i), { ifVersion: 1 }).version}`;
      } catch (err) {
        expect(err).toBeInstanceOf(StoreError);
        return (err as StoreError).code;
      }
    });
    expect(outcomes.filter((o) => o === 'v2')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'RM_ERR_PRECONDITION_FAILED')).toHaveLength(N - 1);
    for (const store of stores) expect(store.get(id)?.version).toBe(2);
    for (const store of stores) store.close();
  });

  it(`${N} processes released at once: exactly one update wins, the store ends at version 2`, async () => {
    const seed = PipelineStore.open(dataDir);
    const { id } = seed.create(documentFor(1));
    seed.close();

    const children = Array.from({ length: N }, (_, i) =>
      spawnFixture('updater.ts', [dataDir, id, '1', String(10 + i)]),
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
      const after = PipelineStore.open(dataDir);
      expect(after.get(id)?.version).toBe(2);
      expect(after.get(id, 3)).toBeUndefined();
      after.close();
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
    }
  });

  it(`${N} processes opening a fresh DATA_DIR at once: each migration step runs once, every create lands`, async () => {
    const children = Array.from({ length: N }, (_, i) => spawnFixture('opener.ts', [dataDir, String(i)]));
    try {
      await Promise.all(children.map((child) => waitForLine(child, (line) => line === 'ready')));
      const results = children.map((child) => waitForLine(child, (line) => line.startsWith('{')));
      for (const child of children) child.stdin?.write('go\n');
      const ids = (await Promise.all(results)).map((line) => (JSON.parse(line) as { id: string }).id);

      const after = PipelineStore.open(dataDir);
      expect(schemaVersion(after.db)).toBe(migrations.length);
      expect(
        after
          .list({ limit: 100 })
          .items.map((p) => p.id)
          .sort(),
      ).toEqual([...ids].sort());
      after.close();
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
    }
  });
});
