/**
 * The SQLite store does its I/O on the store thread, not on the JS thread that carries audio (README.md "Deployment":
 * "store I/O never blocks the event loop"): while writes are in flight, the JS thread keeps running
 * callbacks, and a failure of the store thread fails store calls, never the process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-thread.js';
import { documentFor } from './fixtures/documents.js';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'rm-store-thread-'));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the SQLite store thread', () => {
  it('leaves the JS thread free while fsynced writes are in flight', async () => {
    const store = await SqliteStore.open(dataDir);
    let ticks = 0;
    let writesDone = false;
    const ticker = () => {
      ticks++;
      if (!writesDone) setImmediate(ticker);
    };
    setImmediate(ticker);
    // 100 transactions, each fsynced (synchronous=FULL) on the store thread.
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.create(documentFor(i))));
    writesDone = true;
    // Every commit took an fsync; the JS thread turned its loop many times meanwhile.
    expect(ticks).toBeGreaterThan(10);
    expect((await store.list({ limit: 100 })).items).toHaveLength(100);
    await store.close();
  });

  it('serves several stores of one process on one thread, each with its own file', async () => {
    const other = mkdtempSync(join(tmpdir(), 'rm-store-thread-'));
    const [a, b] = await Promise.all([SqliteStore.open(dataDir), SqliteStore.open(other)]);
    const created = await a.create(documentFor(1));
    expect(await b.get(created.id)).toBeUndefined();
    await a.close();
    expect(await b.list()).toEqual({ items: [], next_cursor: null });
    await expect(a.get(created.id)).rejects.toMatchObject({ code: 'RM_ERR_STORE' }); // closed
    await b.close();
    rmSync(other, { recursive: true, force: true });
  });

  it('reports a store it cannot open as RM_ERR_STORE', async () => {
    const store = await SqliteStore.open(dataDir);
    await store.close();
    // A DATA_DIR below a regular file cannot be created.
    await expect(SqliteStore.open(join(dataDir, 'remotemedia.db', 'sub'))).rejects.toMatchObject({
      code: 'RM_ERR_STORE',
    });
  });
});
