/**
 * The SQLite pipeline store, synchronous like better-sqlite3: each call is one transaction. It runs on
 * the store's own worker thread (sqlite-thread.ts), never on the thread that carries audio; tests of
 * SQLite-only behaviour (pragmas, the file, SIGKILL of a writer) use it directly.
 */
import type { Statement } from 'better-sqlite3';
import { type Db, type OpenOptions, openDatabase, StoreError, toStoreError } from './db.js';
import {
  acceptedVersions,
  decodeCursor,
  type GetOptions,
  type ListOptions,
  newPipelineId,
  notFound,
  type Page,
  type PipelineInput,
  type PipelineVersion,
  type Precondition,
  pageLimit,
  preconditionFailed,
  toJson,
  toPage,
} from './model.js';
import { type VersionRow as Row, SELECT_CURRENT, SELECT_VERSION, versionFromRow } from './rows.js';

type VersionRow = Row<string>;

interface VersionOnlyRow {
  version: number;
  deleted_at: string | null;
}

interface VersionInsert {
  id: string;
  version: number;
  name: string;
  definition: string;
  source: string;
  content_type: string;
  now: string;
}

function versionInsert(
  id: string,
  version: number,
  input: PipelineInput,
  definition: string,
  now: string,
): VersionInsert {
  return {
    id,
    version,
    name: input.name,
    definition,
    source: input.source,
    content_type: input.contentType,
    now,
  };
}

interface HeadRow {
  current_version: number;
  deleted_at: string | null;
}

export class SyncSqliteStore<D = unknown> {
  readonly db: Db;
  private readonly stmt: {
    head: Statement<[{ id: string }], HeadRow>;
    version: Statement<[{ id: string; version: number | null }], VersionRow>;
    versionOnly: Statement<[{ id: string; version: number | null }], VersionOnlyRow>;
    firstPage: Statement<[{ limit: number }], VersionRow>;
    nextPage: Statement<[{ created_at: string; id: string; limit: number }], VersionRow>;
    insertPipeline: Statement<[{ id: string; name: string; now: string }]>;
    insertVersion: Statement<[VersionInsert]>;
    bump: Statement<[{ id: string; version: number; name: string; now: string }]>;
    softDelete: Statement<[{ id: string; now: string }]>;
  };

  /** Over an open database (see `openDatabase`); `SyncSqliteStore.open(dataDir)` does both. */
  constructor(db: Db) {
    this.db = db;
    this.stmt = {
      head: db.prepare<[{ id: string }], HeadRow>(
        'SELECT current_version, deleted_at FROM pipelines WHERE id = @id',
      ),
      version: db.prepare<[{ id: string; version: number | null }], VersionRow>(
        `${SELECT_VERSION} AND v.version = coalesce(@version, p.current_version) WHERE p.id = @id`,
      ),
      versionOnly: db.prepare<[{ id: string; version: number | null }], VersionOnlyRow>(
        `SELECT v.version, p.deleted_at FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id
         AND v.version = coalesce(@version, p.current_version) WHERE p.id = @id`,
      ),
      firstPage: db.prepare<[{ limit: number }], VersionRow>(
        `${SELECT_CURRENT} ORDER BY p.created_at, p.id LIMIT @limit`,
      ),
      nextPage: db.prepare<[{ created_at: string; id: string; limit: number }], VersionRow>(
        `${SELECT_CURRENT} AND (p.created_at, p.id) > (@created_at, @id) ORDER BY p.created_at, p.id LIMIT @limit`,
      ),
      insertPipeline: db.prepare<[{ id: string; name: string; now: string }]>(
        'INSERT INTO pipelines (id, name, current_version, created_at, updated_at) VALUES (@id, @name, 1, @now, @now)',
      ),
      insertVersion: db.prepare<[VersionInsert]>(
        `INSERT INTO pipeline_versions (pipeline_id, version, name, definition, source, content_type, created_at)
         VALUES (@id, @version, @name, @definition, @source, @content_type, @now)`,
      ),
      bump: db.prepare<[{ id: string; version: number; name: string; now: string }]>(
        'UPDATE pipelines SET current_version = @version, name = @name, updated_at = @now WHERE id = @id',
      ),
      softDelete: db.prepare<[{ id: string; now: string }]>(
        'UPDATE pipelines SET deleted_at = @now, updated_at = @now WHERE id = @id',
      ),
    };
  }

  static open<D = unknown>(dataDir: string, options?: OpenOptions): SyncSqliteStore<D> {
    return new SyncSqliteStore<D>(openDatabase(dataDir, options));
  }

  close(): void {
    this.db.close();
  }

  /** Stores version 1 of a new pipeline under a fresh id. */
  create(input: PipelineInput<D>, now = new Date().toISOString()): PipelineVersion<D> {
    const id = newPipelineId();
    const definition = toJson(input.definition);
    return this.write(() => {
      this.stmt.insertPipeline.run({ id, name: input.name, now });
      this.stmt.insertVersion.run(versionInsert(id, 1, input, definition, now));
      return this.written(id, 1);
    });
  }

  /**
   * The current version, or version `version`; undefined when there is none or the pipeline is deleted.
   * `includeDeleted` reads a deleted pipeline's versions (sessions keep theirs, docs/rest.md).
   */
  get(id: string, version?: number, options: GetOptions = {}): PipelineVersion<D> | undefined {
    if (version !== undefined && !Number.isSafeInteger(version)) return undefined;
    const row = this.read(() => this.stmt.version.get({ id, version: version ?? null }));
    if (!row || (row.deleted_at !== null && !options.includeDeleted)) return undefined;
    return fromRow<D>(row);
  }

  /**
   * The number of the version `get(id, version)` would return, without reading its document: enough
   * to tell whether a cached representation of it is the one to serve (versions never change).
   */
  versionOf(id: string, version?: number): number | undefined {
    if (version !== undefined && !Number.isSafeInteger(version)) return undefined;
    const row = this.read(() => this.stmt.versionOnly.get({ id, version: version ?? null }));
    return row && row.deleted_at === null ? row.version : undefined;
  }

  /**
   * Stores the next version. Check and insert run in one IMMEDIATE transaction: the write lock is taken
   * before the current version is read, so of concurrent updates with the same `ifVersion` (from any
   * connection or process on the file) exactly one wins and the others get RM_ERR_PRECONDITION_FAILED.
   */
  update(
    id: string,
    input: PipelineInput<D>,
    precondition: Precondition = {},
    now = new Date().toISOString(),
  ): PipelineVersion<D> {
    const definition = toJson(input.definition);
    return this.write(() => {
      const head = this.liveHead(id);
      checkPrecondition(id, head.current_version, precondition);
      const next = head.current_version + 1;
      this.stmt.insertVersion.run(versionInsert(id, next, input, definition, now));
      this.stmt.bump.run({ id, version: next, name: input.name, now });
      return this.written(id, next);
    });
  }

  /**
   * Soft-deletes a pipeline: it is no longer listed or gettable, its versions stay. False when there is
   * no such live pipeline; RM_ERR_PRECONDITION_FAILED when `ifVersion` does not match.
   */
  delete(id: string, precondition: Precondition = {}, now = new Date().toISOString()): boolean {
    return this.write(() => {
      const head = this.stmt.head.get({ id });
      if (!head || head.deleted_at !== null) return false;
      checkPrecondition(id, head.current_version, precondition);
      this.stmt.softDelete.run({ id, now });
      return true;
    });
  }

  /** Live pipelines at their current version, oldest first, by (created_at, id). */
  list(options: ListOptions = {}): Page<D> {
    const limit = pageLimit(options);
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    // One row past the page tells whether another page exists.
    const rows = this.read(() =>
      after
        ? this.stmt.nextPage.all({ created_at: after[0], id: after[1], limit: limit + 1 })
        : this.stmt.firstPage.all({ limit: limit + 1 }),
    );
    return toPage(
      rows.map((row) => fromRow<D>(row)),
      limit,
    );
  }

  private liveHead(id: string): HeadRow {
    const head = this.stmt.head.get({ id });
    if (!head || head.deleted_at !== null) throw notFound(id);
    return head;
  }

  /** Reads back a version inside its writing transaction: callers get exactly what get() will return. */
  private written(id: string, version: number): PipelineVersion<D> {
    const row = this.stmt.version.get({ id, version });
    if (!row)
      throw new StoreError('RM_ERR_STORE', `version ${version} of ${id} vanished while being written`);
    return fromRow<D>(row);
  }

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toStoreError(err);
    }
  }
}

function checkPrecondition(id: string, current: number, precondition: Precondition): void {
  const accepted = acceptedVersions(precondition);
  if (accepted !== undefined && !accepted.includes(current)) throw preconditionFailed(id, current, accepted);
}

function fromRow<D>(row: VersionRow): PipelineVersion<D> {
  return versionFromRow(row, (definition) => JSON.parse(definition) as D);
}
