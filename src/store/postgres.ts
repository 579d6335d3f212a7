/**
 * The PostgreSQL pipeline store (README.md "Deployment", `STORE_URL=postgres://…`): several instances share one
 * database. Same records and rules as the SQLite store (one test suite checks both):
 * - pooled connections (`STORE_POOL_MAX`), a server-side statement timeout (`STORE_STATEMENT_TIMEOUT_MS`)
 *   and a connect timeout, so a slow or absent database is a 503, never a hung request;
 * - `If-Match` holds across instances: the version check is part of the UPDATE, and PostgreSQL's row
 *   lock makes concurrent UPDATEs naming the same version wait for each other, so exactly one wins;
 * - a write is acknowledged after COMMIT returns, with `synchronous_commit=on` forced for our
 *   connections: the WAL record is on disk, so SIGKILL of any instance (or of PostgreSQL) loses nothing
 *   acknowledged;
 * - every write sends NOTIFY in its transaction (delivered at commit); `subscribe` LISTENs on a connection
 *   of its own, so every instance hears every change within milliseconds.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { StoreError } from './errors.js';
import {
  acceptedVersions,
  ChangeFeed,
  decodeCursor,
  type GetOptions,
  type ListOptions,
  newPipelineId,
  notFound,
  type Page,
  type PipelineChange,
  type PipelineInput,
  type PipelineStore,
  type PipelineVersion,
  type Precondition,
  pageLimit,
  preconditionFailed,
  toJson,
  toPage,
} from './model.js';
import { type VersionRow as Row, SELECT_CURRENT, SELECT_VERSION, versionFromRow } from './rows.js';

/**
 * Schema steps, oldest first; step i moves `remotemedia_schema.version` from i to i + 1. Append-only,
 * like the SQLite steps in db.ts, and the same tables. Text columns that are sorted or compared in
 * keyset pagination use the "C" collation, so their order is byte order, as in SQLite. `definition`
 * is `json` (not `jsonb`): it keeps the document's key order.
 */
export const postgresMigrations: readonly string[] = [
  `
  CREATE TABLE pipelines (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    current_version integer NOT NULL CHECK (current_version >= 1),
    created_at      text COLLATE "C" NOT NULL,
    updated_at      text NOT NULL,
    deleted_at      text
  );

  CREATE TABLE pipeline_versions (
    pipeline_id  text COLLATE "C" NOT NULL REFERENCES pipelines (id),
    version      integer NOT NULL CHECK (version >= 1),
    name         text NOT NULL,
    definition   json NOT NULL,
    source       text NOT NULL,
    content_type text NOT NULL,
    created_at   text NOT NULL,
    PRIMARY KEY (pipeline_id, version)
  );

  CREATE INDEX pipelines_live_by_created ON pipelines (created_at, id) WHERE deleted_at IS NULL;
  `,
];

/** The channel of change notifications. */
export const CHANGE_CHANNEL = 'remotemedia_pipelines';

/** pg_advisory_xact_lock key that serializes migrations of several instances starting at once. */
const MIGRATION_LOCK = 0x524d_5354; // "RMST"

/** `integer` columns: a version above this cannot exist. */
const INT4_MAX = 2_147_483_647;

export interface PostgresOptions {
  /** Connections in the pool (STORE_POOL_MAX). */
  poolMax?: number;
  /** Server-side limit of one statement (STORE_STATEMENT_TIMEOUT_MS); over it: RM_ERR_STORE_BUSY. */
  statementTimeoutMs?: number;
  /** How long to wait for a connection (STORE_CONNECT_TIMEOUT_MS); over it: RM_ERR_STORE_BUSY. */
  connectTimeoutMs?: number;
  /** Schema steps to apply; tests pass their own. */
  migrations?: readonly string[];
}

/**
 * SQLSTATEs worth a retry (503): statement timeout (57014), lock and serialization conflicts, too many
 * connections, a server shutting down or starting, and lost connections (class 08).
 */
const BUSY_STATES = new Set(['57014', '55P03', '40001', '40P01', '53300', '57P01', '57P02', '57P03']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

/** Lifts pg failures into the catalog; a StoreError passes through unchanged. */
export function toPgStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const unavailable =
    (typeof code === 'string' &&
      (BUSY_STATES.has(code) || code.startsWith('08') || NETWORK_CODES.has(code))) ||
    /timeout|terminated|Connection terminated/i.test(message);
  if (unavailable) {
    return new StoreError('RM_ERR_STORE_BUSY', `store busy or unreachable: ${message}`, { cause: err });
  }
  return new StoreError('RM_ERR_STORE', `store failure: ${message}`, { cause: err });
}

type VersionRow = Row<unknown>;

function fromRow<D>(row: VersionRow): PipelineVersion<D> {
  return versionFromRow(row, (definition) => definition as D);
}

type Client = pg.PoolClient;

export class PostgresStore<D = unknown> implements PipelineStore<D> {
  readonly kind = 'postgres';
  private readonly feed = new ChangeFeed();
  /** Tells this instance's NOTIFYs from other instances'. */
  private readonly origin = randomUUID();
  private listener: pg.Client | undefined;
  private relistenTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
  ) {}

  /** Connects, applies pending migrations and returns the store. RM_ERR_STORE_BUSY when unreachable. */
  static async open<D = unknown>(url: string, options: PostgresOptions = {}): Promise<PostgresStore<D>> {
    const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
    const clientConfig: pg.ClientConfig = {
      connectionString: url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      statement_timeout: statementTimeoutMs,
      // The server enforces statement_timeout; this is the client's bound when the server goes silent.
      query_timeout: statementTimeoutMs + 2000,
      idle_in_transaction_session_timeout: statementTimeoutMs * 2,
      application_name: 'remotemedia',
      // An acknowledged write is on disk whatever the database's default says (README.md "Deployment").
      options: '-c synchronous_commit=on',
    };
    const pool = new pg.Pool({ ...clientConfig, max: options.poolMax ?? 10 });
    // An idle connection the server drops (restart, failover) is replaced on next use; never a crash.
    pool.on('error', () => {});
    const store = new PostgresStore<D>(pool, clientConfig);
    try {
      await store.migrate(options.migrations ?? postgresMigrations);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw toPgStoreError(err);
    }
    return store;
  }

  /**
   * Applies the pending steps, one transaction each, under an advisory lock: several instances starting
   * together on a fresh database apply every step exactly once. Returns the schema version.
   */
  async migrate(steps: readonly string[] = postgresMigrations): Promise<number> {
    for (;;) {
      const outcome = await this.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await c.query(
          `CREATE TABLE IF NOT EXISTS remotemedia_schema (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             version   integer NOT NULL)`,
        );
        const at = await currentSchemaVersion(c);
        if (at > steps.length) {
          throw new StoreError(
            'RM_ERR_STORE',
            `the database has schema version ${at}, newer than this server knows (${steps.length}); ` +
              'run a newer RemoteMedia or point STORE_URL elsewhere',
          );
        }
        const sql = steps[at];
        if (sql === undefined) return at;
        await c.query(sql);
        await c.query(
          `INSERT INTO remotemedia_schema (singleton, version) VALUES (true, $1)
           ON CONFLICT (singleton) DO UPDATE SET version = excluded.version`,
          [at + 1],
        );
        return undefined;
      });
      if (outcome !== undefined) return outcome;
    }
  }

  /** The schema version of the database. */
  async schemaVersion(): Promise<number> {
    return this.tx((c) => currentSchemaVersion(c));
  }

  async create(input: PipelineInput<D>): Promise<PipelineVersion<D>> {
    const id = newPipelineId();
    const now = new Date().toISOString();
    const definition = toJson(input.definition);
    return this.write(async (c) => {
      await c.query(
        'INSERT INTO pipelines (id, name, current_version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)',
        [id, input.name, now],
      );
      await insertVersion(c, id, 1, input, definition, now);
      return written<D>(c, id, 1);
    }, changed('created'));
  }

  async get(id: string, version?: number, options: GetOptions = {}): Promise<PipelineVersion<D> | undefined> {
    if (version !== undefined && (!Number.isSafeInteger(version) || version > INT4_MAX)) return undefined;
    const rows = await this.query<VersionRow>(
      `${SELECT_VERSION} AND v.version = coalesce($2::integer, p.current_version) WHERE p.id = $1`,
      [id, version ?? null],
    );
    const row = rows[0];
    if (!row || (row.deleted_at !== null && !options.includeDeleted)) return undefined;
    return fromRow<D>(row);
  }

  async versionOf(id: string, version?: number): Promise<number | undefined> {
    if (version !== undefined && (!Number.isSafeInteger(version) || version > INT4_MAX)) return undefined;
    const rows = await this.query<{ version: number; deleted_at: string | null }>(
      `SELECT v.version, p.deleted_at FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id
         AND v.version = coalesce($2::integer, p.current_version) WHERE p.id = $1`,
      [id, version ?? null],
    );
    const row = rows[0];
    return row && row.deleted_at === null ? row.version : undefined;
  }

  async update(
    id: string,
    input: PipelineInput<D>,
    precondition: Precondition = {},
  ): Promise<PipelineVersion<D>> {
    const now = new Date().toISOString();
    const definition = toJson(input.definition);
    const accepted = acceptedVersions(precondition);
    return this.write(async (c) => {
      // The check is in the UPDATE: a concurrent UPDATE of the row waits for this one's commit, then
      // re-evaluates the WHERE against the new version and matches nothing.
      const bumped = await c.query<{ current_version: number }>(
        `UPDATE pipelines SET current_version = current_version + 1, name = $2, updated_at = $3
         WHERE id = $1 AND deleted_at IS NULL AND ($4::integer[] IS NULL OR current_version = ANY ($4))
         RETURNING current_version`,
        [id, input.name, now, accepted === undefined ? null : [...accepted].filter(isInt4)],
      );
      const next = bumped.rows[0]?.current_version;
      if (next === undefined) throw await refusal(c, id, accepted ?? []);
      await insertVersion(c, id, next, input, definition, now);
      return written<D>(c, id, next);
    }, changed('updated'));
  }

  async delete(id: string, precondition: Precondition = {}): Promise<boolean> {
    const now = new Date().toISOString();
    const accepted = acceptedVersions(precondition);
    return this.write(
      async (c) => {
        const deleted = await c.query(
          `UPDATE pipelines SET deleted_at = $2, updated_at = $2
         WHERE id = $1 AND deleted_at IS NULL AND ($3::integer[] IS NULL OR current_version = ANY ($3))`,
          [id, now, accepted === undefined ? null : [...accepted].filter(isInt4)],
        );
        if (deleted.rowCount === 0) {
          const error = await refusal(c, id, accepted ?? []);
          if (error.code === 'RM_ERR_PIPELINE_NOT_FOUND') return false;
          throw error;
        }
        return true;
      },
      (done) => (done ? { kind: 'deleted', id } : undefined),
    );
  }

  async list(options: ListOptions = {}): Promise<Page<D>> {
    const limit = pageLimit(options);
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    // One row past the page tells whether another page exists.
    const rows = after
      ? await this.query<VersionRow>(
          `${SELECT_CURRENT} AND (p.created_at, p.id) > ($1, $2) ORDER BY p.created_at, p.id LIMIT $3`,
          [after[0], after[1], limit + 1],
        )
      : await this.query<VersionRow>(`${SELECT_CURRENT} ORDER BY p.created_at, p.id LIMIT $1`, [limit + 1]);
    return toPage(
      rows.map((row) => fromRow<D>(row)),
      limit,
    );
  }

  /**
   * Hears every committed write of every instance on this database (LISTEN). The first subscriber opens
   * the listening connection; when it drops, it is reopened and subscribers get `resync`, because
   * notifications sent meanwhile are lost.
   */
  subscribe(listener: (change: PipelineChange) => void): () => void {
    const unsubscribe = this.feed.subscribe(listener);
    if (this.listener === undefined && this.relistenTimer === undefined) this.listen(0);
    return unsubscribe;
  }

  get hearsEveryChange(): boolean {
    return this.listenerReady;
  }

  /** Resolves once the listening connection is up (tests wait for it before writing). */
  async listening(): Promise<void> {
    while (!this.closed) {
      if (this.listenerReady) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private listenerReady = false;

  private listen(attempt: number): void {
    this.relistenTimer = undefined;
    if (this.closed) return;
    const client = new pg.Client({ ...this.clientConfig, query_timeout: undefined });
    this.listener = client;
    const retry = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.listenerReady = false;
      client.end().catch(() => undefined);
      if (this.closed) return;
      // Back off to at most 2 s between attempts while the database is away.
      this.relistenTimer = setTimeout(() => this.listen(attempt + 1), Math.min(2000, 100 * 2 ** attempt));
      this.relistenTimer.unref();
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', (msg) => {
      const change = parseChange(msg.payload, this.origin);
      if (change) this.feed.emit(change);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGE_CHANNEL}`))
      .then(() => {
        if (this.listener !== client) return;
        this.listenerReady = true;
        // Whatever changed while no connection listened is unknown.
        if (attempt > 0) this.feed.emit({ kind: 'resync' });
        attempt = 0;
      })
      .catch(retry);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.relistenTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw toPgStoreError(err);
    }
  }

  /**
   * A write transaction that NOTIFYs every instance of `changeOf(result)` at commit; this instance's own
   * subscribers hear it before the write resolves (and skip the echo of their own NOTIFY).
   */
  private async write<T>(
    fn: (c: Client) => Promise<T>,
    changeOf: (result: T) => PipelineChange | undefined,
  ): Promise<T> {
    let change: PipelineChange | undefined;
    const result = await this.tx(async (c) => {
      const r = await fn(c);
      change = changeOf(r);
      if (change !== undefined) {
        const notice: Notice = { ...change, origin: this.origin };
        await c.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify(notice)]);
      }
      return r;
    });
    if (change !== undefined) this.feed.emit(change);
    return result;
  }

  /** Runs `fn` in one transaction on one pooled connection; a failure rolls it back. */
  private async tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toPgStoreError(err);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // the connection is gone: do not hand it out again
      });
      throw toPgStoreError(err);
    } finally {
      client.release(broken);
    }
  }
}

function isInt4(v: number): boolean {
  return Number.isInteger(v) && v >= -INT4_MAX && v <= INT4_MAX;
}

async function currentSchemaVersion(c: Client): Promise<number> {
  const exists = await c.query<{ t: string | null }>("SELECT to_regclass('remotemedia_schema') AS t");
  if (exists.rows[0]?.t == null) return 0;
  const rows = await c.query<{ version: number }>('SELECT version FROM remotemedia_schema');
  return rows.rows[0]?.version ?? 0;
}

async function insertVersion(
  c: Client,
  id: string,
  version: number,
  input: PipelineInput,
  definition: string,
  now: string,
): Promise<void> {
  await c.query(
    `INSERT INTO pipeline_versions (pipeline_id, version, name, definition, source, content_type, created_at)
     VALUES ($1, $2, $3, $4::json, $5, $6, $7)`,
    [id, version, input.name, definition, input.source, input.contentType, now],
  );
}

/** Reads back a version inside its writing transaction: callers get exactly what get() will return. */
async function written<D>(c: Client, id: string, version: number): Promise<PipelineVersion<D>> {
  const rows = await c.query<VersionRow>(`${SELECT_VERSION} AND v.version = $2 WHERE p.id = $1`, [
    id,
    version,
  ]);
  const row = rows.rows[0];
  if (!row) throw new StoreError('RM_ERR_STORE', `version ${version} of ${id} vanished while being written`);
  return fromRow<D>(row);
}

/** Why a conditional UPDATE matched nothing: no live pipeline, or a version the precondition refuses. */
async function refusal(c: Client, id: string, accepted: readonly number[]): Promise<StoreError> {
  const head = await c.query<{ current_version: number; deleted_at: string | null }>(
    'SELECT current_version, deleted_at FROM pipelines WHERE id = $1',
    [id],
  );
  const row = head.rows[0];
  if (!row || row.deleted_at !== null) return notFound(id);
  return preconditionFailed(id, row.current_version, accepted);
}

/** A change as NOTIFY carries it: with the instance that made it, which has already told its own subscribers. */
type Notice = PipelineChange & { origin?: string };

/** The change a write of a version made. */
function changed(kind: 'created' | 'updated') {
  return (v: { id: string; version: number }): PipelineChange => ({ kind, id: v.id, version: v.version });
}

function parseChange(payload: string | undefined, self: string): PipelineChange | undefined {
  try {
    const { origin, ...change } = JSON.parse(payload ?? '') as Notice;
    if (origin === self) return undefined;
    if (change.kind === 'deleted' && typeof change.id === 'string') return change;
    if (
      (change.kind === 'created' || change.kind === 'updated') &&
      typeof change.id === 'string' &&
      typeof change.version === 'number'
    ) {
      return change;
    }
  } catch {
    // not one of ours
  }
  return undefined;
}
