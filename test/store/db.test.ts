import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILENAME, migrations, openDatabase, schemaVersion } from '../../src/store/db.js';
import { SyncSqliteStore as PipelineStore } from '../../src/store/sqlite.js';
import { codeOf } from './code-of.js';
import { documentFor } from './fixtures/documents.js';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'rm-store-'));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('openDatabase', () => {
  it('creates DATA_DIR and the file with WAL, synchronous=FULL and foreign keys (docs/configuration.md)', () => {
    const nested = join(dataDir, 'a', 'b');
    const db = openDatabase(nested, { busyTimeoutMs: 1234 });
    expect(db.name).toBe(join(nested, DB_FILENAME));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // 2 = FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(1234);
    expect(schemaVersion(db)).toBe(migrations.length);
    db.close();
  });

  it('is idempotent: opening again applies nothing and keeps the data', () => {
    const first = PipelineStore.open(dataDir);
    const created = first.create(documentFor(1));
    first.close();
    for (let i = 0; i < 3; i++) {
      const again = PipelineStore.open(dataDir);
      expect(schemaVersion(again.db)).toBe(migrations.length);
      expect(again.get(created.id)).toEqual(created);
      again.close();
    }
  });

  it('applies pending steps in order, each moving user_version by one', () => {
    openDatabase(dataDir).close();
    const more = [
      ...migrations,
      'CREATE TABLE extra_a (x INTEGER) STRICT',
      'ALTER TABLE extra_a ADD COLUMN y TEXT',
    ];
    const db = openDatabase(dataDir, { migrations: more });
    expect(schemaVersion(db)).toBe(migrations.length + 2);
    db.prepare('INSERT INTO extra_a (x, y) VALUES (1, ?)').run('ok');
    db.close();
  });

  it('rolls a failing step back whole and leaves user_version where it was', () => {
    openDatabase(dataDir).close();
    const broken = [...migrations, 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1)'];
    expect(codeOf(() => openDatabase(dataDir, { migrations: broken }))).toBe('RM_ERR_STORE');
    const db = openDatabase(dataDir);
    expect(schemaVersion(db)).toBe(migrations.length);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'half'").get()).toEqual({ n: 0 });
    db.close();
  });

  it('refuses a file whose schema is newer than the code', () => {
    openDatabase(dataDir).close();
    const raw = new Database(join(dataDir, DB_FILENAME));
    raw.pragma(`user_version = ${migrations.length + 1}`);
    raw.close();
    expect(codeOf(() => openDatabase(dataDir))).toBe('RM_ERR_STORE');
    expect(codeOf(() => PipelineStore.open(dataDir))).toBe('RM_ERR_STORE');
    // Refusing does not touch the file.
    const check = new Database(join(dataDir, DB_FILENAME), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(migrations.length + 1);
    check.close();
  });

  it('reports a path it cannot create as RM_ERR_STORE', () => {
    const blocked = join(dataDir, DB_FILENAME, 'sub'); // under a regular file
    openDatabase(dataDir).close();
    expect(codeOf(() => openDatabase(blocked))).toBe('RM_ERR_STORE');
  });
});
