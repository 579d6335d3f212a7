/**
 * Entity tags of pipeline versions (docs/rest.md: `ETag` on create/get, `If-Match` on PUT, 412 when stale).
 * A tag names one immutable version, `"pl_…-v3"`, so it is strong by construction.
 */

/** The strong ETag of a pipeline version, quotes included: `"pl_abc-v3"`. */
export function etagOf(id: string, version: number): string {
  return `"${id}-v${version}"`;
}

/** The pipeline id and version an entity tag names, or undefined when it is not one of ours. */
export function parseEtag(tag: string): { id: string; version: number } | undefined {
  const m = /^(?:W\/)?"([^"]*)-v([1-9][0-9]{0,14})"$/.exec(tag.trim());
  if (!m?.[1] || !m[2]) return undefined;
  return { id: m[1], version: Number(m[2]) };
}

/**
 * The versions of pipeline `id` that an `If-Match` header accepts:
 * - `undefined`: no header, or `*` (any current version; the store still requires the pipeline to exist);
 * - a list: the store's current version must be one of them. Tags of other pipelines and malformed tags
 *   match nothing, so they can leave the list empty, which always fails (RFC 9110 §13.1.1).
 *
 * RFC 9110 §13.1.1 asks for strong comparison; a `W/` prefix is tolerated anyway because proxies that
 * re-encode bodies weaken tags, and our tags name immutable versions, so weak and strong mean the same.
 */
export function ifMatchVersions(
  header: string | readonly string[] | undefined,
  id: string,
): number[] | undefined {
  if (header === undefined) return undefined;
  const value = typeof header === 'string' ? header : header.join(',');
  if (value.trim() === '') return undefined;
  if (value.trim() === '*') return undefined;
  const versions: number[] = [];
  // RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, and etagc excludes DQUOTE, so scanning
  // for quoted strings finds every tag of the list, even one that contains a comma.
  for (const m of value.matchAll(/(?:W\/)?"[^"]*"/g)) {
    const tag = parseEtag(m[0]);
    if (tag && tag.id === id) versions.push(tag.version);
  }
  return versions;
}

/**
 * Whether an `If-None-Match` header names the current tag `etag`, so that a GET answers 304 Not
 * Modified. RFC 9110 §13.1.2: weak comparison (a `W/` prefix is ignored), and `*` matches any
 * current representation.
 */
export function ifNoneMatchHits(header: string | readonly string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = typeof header === 'string' ? header : header.join(',');
  if (value.trim() === '*') return true;
  for (const m of value.matchAll(/(?:W\/)?"[^"]*"/g)) {
    if (m[0].replace(/^W\//, '') === etag) return true;
  }
  return false;
}
