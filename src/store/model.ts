/**
 * What every pipeline store shares (docs/rest.md, README.md "Deployment"): the records, ids, cursors and preconditions, and the
 * `PipelineStore` interface that the SQLite store (sqlite-thread.ts) and the PostgreSQL store
 * (postgres.ts) implement and that one test suite checks for both.
 */
import { randomBytes } from 'node:crypto';
import { StoreError } from './errors.js';

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

export interface GetOptions {
  /** Read a deleted pipeline's versions too (sessions keep theirs, docs/rest.md). */
  includeDeleted?: boolean;
}

/**
 * A committed write, as other instances learn of it (README.md "Deployment"). `resync` means changes may have been
 * missed (the notification channel was down): forget everything cached.
 */
export type PipelineChange =
  | { kind: 'created' | 'updated'; id: string; version: number }
  | { kind: 'deleted'; id: string }
  | { kind: 'resync' };

/**
 * A pipeline store. Every call is one transaction; every failure is a StoreError whose `code` says which.
 * Implementations never block the JS thread on I/O (the thread that carries audio).
 */
export interface PipelineStore<D = unknown> {
  /** `sqlite` or `postgres`, for logs and /readyz. */
  readonly kind: 'sqlite' | 'postgres';
  /** Stores version 1 of a new pipeline under a fresh id. */
  create(input: PipelineInput<D>): Promise<PipelineVersion<D>>;
  /** The current version, or version `version`; undefined when there is none or the pipeline is deleted. */
  get(id: string, version?: number, options?: GetOptions): Promise<PipelineVersion<D> | undefined>;
  /**
   * The number of the version `get(id, version)` would return, without reading its document: enough to
   * tell whether a cached representation of it is the one to serve (versions never change).
   */
  versionOf(id: string, version?: number): Promise<number | undefined>;
  /**
   * Stores the next version. Of concurrent updates naming the same `ifVersion` (from any connection,
   * process or instance) exactly one wins; the others get RM_ERR_PRECONDITION_FAILED.
   * RM_ERR_PIPELINE_NOT_FOUND for an unknown or deleted pipeline (it wins over the precondition).
   */
  update(id: string, input: PipelineInput<D>, precondition?: Precondition): Promise<PipelineVersion<D>>;
  /**
   * Soft-deletes a pipeline: no longer listed or gettable, its versions stay. False when there is no such
   * live pipeline; RM_ERR_PRECONDITION_FAILED when `ifVersion` does not match.
   */
  delete(id: string, precondition?: Precondition): Promise<boolean>;
  /** Live pipelines at their current version, oldest first, by (created_at, id). */
  list(options?: ListOptions): Promise<Page<D>>;
  /**
   * Calls `listener` after every committed write of this store and, where the store is shared
   * (PostgreSQL), of every other instance. Returns the unsubscribe function. This instance's own writes
   * are heard before they resolve.
   */
  subscribe(listener: (change: PipelineChange) => void): () => void;
  /**
   * True while subscribers hear every committed write (PostgreSQL: while its LISTEN connection is up; the
   * `resync` after a reconnect covers the gap). What is cached from the store is only trusted meanwhile.
   */
  readonly hearsEveryChange: boolean;
  close(): Promise<void>;
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
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
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

/** The page size of `options`; a limit outside 1..100 is a caller bug (the REST layer validates it). */
export function pageLimit(options: ListOptions): number {
  const limit = options.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new RangeError(`limit must be an integer in 1..${MAX_PAGE_LIMIT}, got ${limit}`);
  }
  return limit;
}

/** The versions a precondition accepts; undefined when there is no check. */
export function acceptedVersions({ ifVersion }: Precondition): readonly number[] | undefined {
  if (ifVersion === undefined) return undefined;
  return typeof ifVersion === 'number' ? [ifVersion] : ifVersion;
}

export function preconditionFailed(id: string, current: number, accepted: readonly number[]): StoreError {
  return new StoreError(
    'RM_ERR_PRECONDITION_FAILED',
    `pipeline ${id} is at version ${current}, not ${accepted.join(' or ') || 'a version named by If-Match'}`,
  );
}

export function notFound(id: string): StoreError {
  return new StoreError('RM_ERR_PIPELINE_NOT_FOUND', `no pipeline ${id}`);
}

/** The definition as stored: its JSON text. */
export function toJson(definition: unknown): string {
  const json = JSON.stringify(definition);
  if (json === undefined) throw new TypeError('a pipeline definition must be JSON-serializable');
  return json;
}

/** A page of `limit` items from `limit + 1` rows: the extra row tells whether another page exists. */
export function toPage<D>(rows: PipelineVersion<D>[], limit: number): Page<D> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    next_cursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
  };
}

/** Fans changes out to subscribers; one listener throwing does not keep the others from hearing. */
export class ChangeFeed {
  private readonly listeners = new Set<(change: PipelineChange) => void>();

  get size(): number {
    return this.listeners.size;
  }

  subscribe(listener: (change: PipelineChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: PipelineChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // a listener's bug is its own; the write it hears about has committed
      }
    }
  }
}
