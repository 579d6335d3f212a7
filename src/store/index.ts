/** Pipeline stores (docs/configuration.md, docs/rest.md): embedded SQLite or shared PostgreSQL; imports no Fastify. */
export {
  DB_FILENAME,
  type Db,
  migrations,
  type OpenOptions,
  openDatabase,
  schemaVersion,
} from './db.js';
export { StoreError } from './errors.js';
export { etagOf, ifMatchVersions, ifNoneMatchHits, parseEtag } from './etag.js';
export {
  DEFAULT_PAGE_LIMIT,
  type GetOptions,
  isPipelineId,
  type ListOptions,
  MAX_PAGE_LIMIT,
  type Page,
  PIPELINE_ID_PATTERN,
  type PipelineChange,
  type PipelineInput,
  type PipelineStore,
  type PipelineVersion,
  type Precondition,
} from './model.js';
export { openStore, type StoreSettings } from './open.js';
export { type PostgresOptions, PostgresStore, postgresMigrations } from './postgres.js';
export { SyncSqliteStore } from './sqlite.js';
export { SqliteStore } from './sqlite-thread.js';
