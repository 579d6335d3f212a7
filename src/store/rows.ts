/**
 * The row both stores read a pipeline version from (the same schema on SQLite and PostgreSQL), and its
 * mapping to a `PipelineVersion`. Only the definition differs: JSON text on SQLite, parsed by `pg`.
 */
import type { PipelineVersion } from './model.js';

export interface VersionRow<Definition> {
  id: string;
  name: string;
  version: number;
  definition: Definition;
  source: string;
  content_type: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/** Joins a pipeline with its versions; callers add the version condition and WHERE. */
export const SELECT_VERSION = `
  SELECT p.id, v.name, v.version, v.definition, v.source, v.content_type,
         p.created_at, v.created_at AS updated_at, p.deleted_at
  FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id`;

/** The current version of every live pipeline; callers add conditions with AND. */
export const SELECT_CURRENT = `${SELECT_VERSION} AND v.version = p.current_version WHERE p.deleted_at IS NULL`;

export function versionFromRow<D, Definition>(
  row: VersionRow<Definition>,
  definition: (stored: Definition) => D,
): PipelineVersion<D> {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    definition: definition(row.definition),
    source: row.source,
    content_type: row.content_type,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
