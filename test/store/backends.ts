/**
 * The stores one suite runs against (README.md "Deployment": "the same store test suite runs against SQLite and
 * PostgreSQL"): each test gets an empty store of its own — a fresh DATA_DIR, or a fresh database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import type { PipelineStore } from '../../src/store/model.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { SqliteStore } from '../../src/store/sqlite-thread.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

export interface Place {
  /** `DATA_DIR` for SQLite, `STORE_URL` for PostgreSQL: what a server process would be given. */
  location: string;
  /** Opens another connection (pool, thread) to the same store, as another process or instance would. */
  open<D>(): Promise<PipelineStore<D>>;
  remove(): Promise<void>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A new empty store location. */
  place(): Promise<Place>;
}

const sqlite: Backend = {
  name: 'sqlite',
  place: async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rm-store-'));
    return {
      location: dataDir,
      open: <D>() => SqliteStore.open<D>(dataDir),
      remove: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  },
};

function postgres(admin: string): Backend {
  return {
    name: 'postgres',
    place: async () => {
      const db = await freshDatabase(admin);
      return { location: db.url, open: <D>() => PostgresStore.open<D>(db.url), remove: db.drop };
    },
  };
}

const pgAdmin = postgresUrl();

/** Every store this run can test: SQLite always, PostgreSQL when RM_TEST_PG_URL is set (always in CI). */
export const backends: Backend[] = pgAdmin === undefined ? [sqlite] : [sqlite, postgres(pgAdmin)];

/** The StoreError code a promise rejects with, or undefined when it resolves. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return (err as StoreError).code;
  }
  return undefined;
}
