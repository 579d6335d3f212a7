/** The embedded pipeline store (docs/configuration.md, docs/rest.md); imports no Fastify. */
export {
  DB_FILENAME,
  type Db,
  migrations,
  type OpenOptions,
  openDatabase,
  StoreError,
  schemaVersion,
} from './db.js';
export { etagOf, ifMatchVersions, ifNoneMatchHits, parseEtag } from './etag.js';
export {
  DEFAULT_PAGE_LIMIT,
  isPipelineId,
  type ListOptions,
  MAX_PAGE_LIMIT,
  type Page,
  PIPELINE_ID_PATTERN,
  type PipelineInput,
  PipelineStore,
  type PipelineVersion,
  type Precondition,
} from './pipelines.js';
