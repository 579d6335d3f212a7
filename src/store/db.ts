/**
 * The embedded store's database (docs/configuration.md: SQLite in `DATA_DIR`, WAL, `synchronous=FULL`; nothing else
 * needs to run). Opening applies the schema migrations; a file written by a newer server is refused.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';

export { StoreError } from './errors.js';

export type Db = Database.Database;

/** The file inside `DATA_DIR`. */
export const DB_FILENAME = 'remotemedia.db';

/** Lifts SQLite failures into the catalog; a StoreError passes through unchanged. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  // SQLITE_BUSY* after the busy timeout: another writer held the lock too long; worth a retry (503).
  if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
    return new StoreError('RM_ERR_STORE_BUSY', `store busy: ${message}`, { cause: err });
  }
  return new StoreError('RM_ERR_STORE', `store failure: ${message}`, { cause: err });
}

/**
 * Schema steps, oldest first. Step i (0-based) moves `PRAGMA user_version` from i to i + 1. Steps are
 * append-only: a released step is never edited, a change is a new step.
 */
export const migrations: readonly string[] = [
  // 1: pipelines and their immutable versions. Timestamps are ISO 8601 UTC with milliseconds (fixed
  // width, so text order is time order). A soft-deleted pipeline keeps its versions (docs/rest.md: sessions
  // already running keep their version).
  `
  CREATE TABLE pipelines (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    current_version INTEGER NOT NULL CHECK (current_version >= 1),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT
  ) STRICT;

  CREATE TABLE pipeline_versions (
    pipeline_id  TEXT NOT NULL REFERENCES pipelines (id),
    version      INTEGER NOT NULL CHECK (version >= 1),
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL CHECK (json_valid(definition)),
    source       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, version)
  ) STRICT, WITHOUT ROWID;

  -- Keyset pagination of live pipelines by (created_at, id).
  CREATE INDEX pipelines_live_by_created ON pipelines (created_at, id) WHERE deleted_at IS NULL;
  `,
];

export interface OpenOptions {
  /** How long a statement waits for another connection's write lock before RM_ERR_STORE_BUSY. */
  busyTimeoutMs?: number;
  /** Schema steps to apply; tests pass their own. */
  migrations?: readonly string[];
}

/**
 * Opens (creating if needed) `${dataDir}/remotemedia.db`, sets the pragmas and migrates it.
 * Throws a StoreError when the file cannot be opened or its schema is newer than this code.
 */
export function openDatabase(dataDir: string, options: OpenOptions = {}): Db {
  const path = join(dataDir, DB_FILENAME);
  let db: Db;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (err) {
    throw new StoreError('RM_ERR_STORE', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    retryWhileBusy(options.busyTimeoutMs ?? 5000, () => {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal')
        throw new StoreError('RM_ERR_STORE', `${path}: WAL journal unavailable (got ${mode})`);
      // FULL: a commit is fsynced before it returns, so an acknowledged write survives power loss and SIGKILL.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db, options.migrations ?? migrations, path);
    });
    return db;
  } catch (err) {
    db.close();
    throw toStoreError(err);
  }
}

/**
 * Runs `fn` again while SQLite answers SQLITE_BUSY, for up to `timeoutMs`. Needed at open time: while
 * another process creates the file or switches it to WAL, SQLite can report BUSY at once, without
 * consulting the busy handler that covers ordinary statements.
 */
function retryWhileBusy(timeoutMs: number, fn: () => void): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      fn();
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 10 + Math.floor(Math.random() * 20));
    }
  }
}

/** The schema version the file is at (`PRAGMA user_version`). */
export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies the pending steps, each in its own IMMEDIATE transaction that re-reads `user_version` first,
 * so several processes opening the same fresh file apply every step exactly once.
 */
export function migrate(db: Db, steps: readonly string[] = migrations, label = db.name): number {
  const step = db.transaction(() => {
    const at = schemaVersion(db);
    if (at > steps.length) {
      throw new StoreError(
        'RM_ERR_STORE',
        `${label} has schema version ${at}, newer than this server knows (${steps.length}); ` +
          'run a newer RemoteMedia or point DATA_DIR elsewhere',
      );
    }
    const sql = steps[at];
    if (sql === undefined) return false;
    db.exec(sql);
    // user_version lives in the file header, written within this transaction.
    db.pragma(`user_version = ${at + 1}`);
    return true;
  });
  while (step.immediate()) {
    // one step per transaction until none is pending
  }
  return schemaVersion(db);
}
