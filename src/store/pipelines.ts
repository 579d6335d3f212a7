/**
 * Stored pipelines (docs/rest.md): every version kept and immutable, optimistic concurrency on update,
 * soft delete, keyset pagination. Synchronous, like better-sqlite3: each call is one transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { type Db, type OpenOptions, openDatabase, StoreError, toStoreError } from './db.js';

/** One version of a pipeline, as the REST layer answers it. */
export interface PipelineVersion<D = unknown> {
  id: string;
  /** `name` of this version's document. */
  name: string;
  version: number;
  /** The pipeline document, parsed (JSON). */
  definition: D;
  /** The document exactly as sent, so YAML comes back as YAML. */
  source: string;
  content_type: string;
  /** When the pipeline was created (ISO 8601 UTC). */
  created_at: string;
  /** When this version was written (ISO 8601 UTC). */
  updated_at: string;
}

export interface PipelineInput<D = unknown> {
  name: string;
  definition: D;
  source: string;
  contentType: string;
}

export interface Precondition {
  /**
   * The current version must be this one (or one of these: an `If-Match` list). Absent: no check.
   * See `ifMatchVersions` in etag.ts.
   */
  ifVersion?: number | readonly number[];
}

export interface ListOptions {
  /** 1..100, default 20. */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string | null;
}

export interface Page<D = unknown> {
  items: PipelineVersion<D>[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

/** `pl_` + 16 characters of RFC 4648 base32 (lowercase): 80 random bits, URL-safe. */
export const PIPELINE_ID_PATTERN = /^pl_[a-z2-7]{16}$/;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function newPipelineId(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let acc = 0;
  let out = 'pl_';
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
  }
  return out;
}

export function isPipelineId(id: string): boolean {
  return PIPELINE_ID_PATTERN.test(id);
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The opaque cursor: base64url of the JSON `[created_at, id]` of the last item of a page. */
function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (
    Array.isArray(key) &&
    key.length === 2 &&
    typeof key[0] === 'string' &&
    ISO_UTC.test(key[0]) &&
    typeof key[1] === 'string' &&
    isPipelineId(key[1])
  ) {
    return [key[0], key[1]];
  }
  throw new StoreError('RM_ERR_BAD_CURSOR', 'cursor is not one this server issued');
}

interface VersionRow {
  id: string;
  name: string;
  version: number;
  definition: string;
  source: string;
  content_type: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

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

const SELECT_VERSION = `
  SELECT p.id, v.name, v.version, v.definition, v.source, v.content_type,
         p.created_at, v.created_at AS updated_at, p.deleted_at
  FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id`;

export class PipelineStore<D = unknown> {
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

  /** Over an open database (see `openDatabase`); `PipelineStore.open(dataDir)` does both. */
  constructor(db: Db) {
    this.db = db;
    const current = `${SELECT_VERSION} AND v.version = p.current_version WHERE p.deleted_at IS NULL`;
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
        `${current} ORDER BY p.created_at, p.id LIMIT @limit`,
      ),
      nextPage: db.prepare<[{ created_at: string; id: string; limit: number }], VersionRow>(
        `${current} AND (p.created_at, p.id) > (@created_at, @id) ORDER BY p.created_at, p.id LIMIT @limit`,
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

  static open<D = unknown>(dataDir: string, options?: OpenOptions): PipelineStore<D> {
    return new PipelineStore<D>(openDatabase(dataDir, options));
  }

  close(): void {
    this.db.close();
  }

  /** Stores version 1 of a new pipeline under a fresh id. */
  create(input: PipelineInput<D>): PipelineVersion<D> {
    const id = newPipelineId();
    const now = new Date().toISOString();
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
  get(
    id: string,
    version?: number,
    options: { includeDeleted?: boolean } = {},
  ): PipelineVersion<D> | undefined {
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
  update(id: string, input: PipelineInput<D>, precondition: Precondition = {}): PipelineVersion<D> {
    const now = new Date().toISOString();
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
  delete(id: string, precondition: Precondition = {}): boolean {
    const now = new Date().toISOString();
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
    const limit = options.limit ?? DEFAULT_PAGE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
      // The REST layer validates `limit`; reaching here is a caller bug, not a client error.
      throw new RangeError(`limit must be an integer in 1..${MAX_PAGE_LIMIT}, got ${limit}`);
    }
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    // One row past the page tells whether another page exists.
    const rows = this.read(() =>
      after
        ? this.stmt.nextPage.all({ created_at: after[0], id: after[1], limit: limit + 1 })
        : this.stmt.firstPage.all({ limit: limit + 1 }),
    );
    const items = rows.slice(0, limit).map((row) => fromRow<D>(row));
    const last = items.at(-1);
    return {
      items,
      next_cursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
    };
  }

  private liveHead(id: string): HeadRow {
    const head = this.stmt.head.get({ id });
    if (!head || head.deleted_at !== null) {
      throw new StoreError('RM_ERR_PIPELINE_NOT_FOUND', `no pipeline ${id}`);
    }
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

function checkPrecondition(id: string, current: number, { ifVersion }: Precondition): void {
  if (ifVersion === undefined) return;
  const accepted = typeof ifVersion === 'number' ? [ifVersion] : ifVersion;
  if (!accepted.includes(current)) {
    throw new StoreError(
      'RM_ERR_PRECONDITION_FAILED',
      `pipeline ${id} is at version ${current}, not ${accepted.join(' or ') || 'a version named by If-Match'}`,
    );
  }
}

function toJson(definition: unknown): string {
  const json = JSON.stringify(definition);
  if (json === undefined) throw new TypeError('a pipeline definition must be JSON-serializable');
  return json;
}

function fromRow<D>(row: VersionRow): PipelineVersion<D> {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    definition: JSON.parse(row.definition) as D,
    source: row.source,
    content_type: row.content_type,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
