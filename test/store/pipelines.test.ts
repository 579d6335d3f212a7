import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PIPELINE_ID_PATTERN, PipelineStore, type PipelineVersion } from '../../src/store/pipelines.js';
import { codeOf } from './code-of.js';
import { documentFor, type TestDocument } from './fixtures/documents.js';

let dataDir: string;
let store: PipelineStore<TestDocument>;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'rm-store-'));
  store = PipelineStore.open<TestDocument>(dataDir);
});
afterEach(() => {
  vi.useRealTimers();
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('PipelineStore', () => {
  it('creates version 1 under a fresh URL-safe id and returns what get() returns', () => {
    const doc = documentFor(2); // YAML source
    const created = store.create(doc);
    expect(created).toMatchObject({ name: 'doc-2', version: 1, content_type: 'application/yaml' });
    expect(created.id).toMatch(PIPELINE_ID_PATTERN);
    expect(created.created_at).toMatch(ISO);
    expect(created.updated_at).toBe(created.created_at);
    expect(created.definition).toEqual(doc.definition);
    expect(created.source).toBe(doc.source); // YAML comes back byte for byte, comment included
    expect(store.get(created.id)).toEqual(created);
    expect(store.get(created.id, 1)).toEqual(created);
  });

  it('gives distinct ids', () => {
    const ids = new Set(Array.from({ length: 200 }, (_, i) => store.create(documentFor(i)).id));
    expect(ids.size).toBe(200);
  });

  it('stores the definition as JSON: what comes back is the JSON of what went in', () => {
    const created = store.create({
      name: 'j',
      definition: { name: 'j', nodes: [], description: 'x', dropped: undefined } as TestDocument,
      source: '{"name":"j"}',
      contentType: 'application/json',
    });
    expect(Object.keys(created.definition)).toEqual(['name', 'nodes', 'description']);
    expect(store.get(created.id)?.definition).toEqual(created.definition);
  });

  it('keeps every version, immutable and readable by number', () => {
    const created = store.create(documentFor(1));
    const versions: PipelineVersion<TestDocument>[] = [created];
    for (let seq = 2; seq <= 6; seq++) {
      const prev = versions.at(-1)?.version ?? 0;
      versions.push(store.update(created.id, documentFor(seq), { ifVersion: prev }));
    }
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [i, v] of versions.entries()) {
      const read = store.get(created.id, i + 1);
      expect(read).toEqual(v);
      expect(read?.definition).toEqual(documentFor(i + 1).definition);
      expect(read?.source).toBe(documentFor(i + 1).source);
      expect(read?.created_at).toBe(created.created_at);
    }
    expect(store.get(created.id)).toEqual(versions[5]);
    expect(store.get(created.id)?.name).toBe('doc-6');
    expect(store.get(created.id, 7)).toBeUndefined();
    expect(store.get(created.id, 0)).toBeUndefined();
    expect(store.get(created.id, 1.5)).toBeUndefined();
    expect(store.get(created.id, Number.NaN)).toBeUndefined();
    expect(store.get('pl_aaaaaaaaaaaaaaaa')).toBeUndefined();
  });

  it('updates without a precondition, and refuses a stale one with RM_ERR_PRECONDITION_FAILED', () => {
    const { id } = store.create(documentFor(1));
    expect(store.update(id, documentFor(2)).version).toBe(2);
    expect(codeOf(() => store.update(id, documentFor(3), { ifVersion: 1 }))).toBe(
      'RM_ERR_PRECONDITION_FAILED',
    );
    expect(codeOf(() => store.update(id, documentFor(3), { ifVersion: 3 }))).toBe(
      'RM_ERR_PRECONDITION_FAILED',
    );
    expect(codeOf(() => store.update(id, documentFor(3), { ifVersion: [] }))).toBe(
      'RM_ERR_PRECONDITION_FAILED',
    );
    expect(store.get(id)?.version).toBe(2); // refused updates wrote nothing
    expect(store.update(id, documentFor(3), { ifVersion: [1, 2] }).version).toBe(3); // an If-Match list
  });

  it('answers RM_ERR_PIPELINE_NOT_FOUND for updates of unknown or deleted pipelines', () => {
    expect(codeOf(() => store.update('pl_aaaaaaaaaaaaaaaa', documentFor(1)))).toBe(
      'RM_ERR_PIPELINE_NOT_FOUND',
    );
    const { id } = store.create(documentFor(1));
    expect(store.delete(id)).toBe(true);
    expect(codeOf(() => store.update(id, documentFor(2)))).toBe('RM_ERR_PIPELINE_NOT_FOUND');
    // Not found wins over a precondition: there is nothing to compare with.
    expect(codeOf(() => store.update(id, documentFor(2), { ifVersion: 1 }))).toBe(
      'RM_ERR_PIPELINE_NOT_FOUND',
    );
  });

  it('names the version get() would return without reading it, and none once deleted', () => {
    const { id } = store.create(documentFor(1));
    store.update(id, documentFor(2));
    expect([store.versionOf(id), store.versionOf(id, 1), store.versionOf(id, 3)]).toEqual([2, 1, undefined]);
    expect(store.versionOf('pl_aaaaaaaaaaaaaaaa')).toBeUndefined();
    store.delete(id);
    expect([store.versionOf(id), store.versionOf(id, 1)]).toEqual([undefined, undefined]);
  });

  it('soft-deletes: gone from get and list, versions kept for running sessions (docs/rest.md)', () => {
    const keep = store.create(documentFor(1));
    const gone = store.create(documentFor(2));
    const v2 = store.update(gone.id, documentFor(3));
    expect(codeOf(() => store.delete(gone.id, { ifVersion: 1 }))).toBe('RM_ERR_PRECONDITION_FAILED');
    expect(store.get(gone.id)).toEqual(v2); // a refused delete deleted nothing
    expect(store.delete(gone.id, { ifVersion: 2 })).toBe(true);
    expect(store.get(gone.id)).toBeUndefined();
    expect(store.get(gone.id, 1)).toBeUndefined();
    expect(store.list().items.map((p) => p.id)).toEqual([keep.id]);
    expect(store.get(gone.id, 2, { includeDeleted: true })).toEqual(v2);
    expect(store.get(gone.id, 1, { includeDeleted: true })?.definition).toEqual(documentFor(2).definition);
    expect(store.delete(gone.id)).toBe(false);
    expect(store.delete('pl_aaaaaaaaaaaaaaaa', { ifVersion: 1 })).toBe(false);
  });

  describe('list', () => {
    function walk(limit: number): string[] {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = store.list({ limit, cursor });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        if (page.next_cursor !== null) expect(page.items.length).toBe(limit);
        seen.push(...page.items.map((p) => p.id));
        cursor = page.next_cursor;
        pages++;
      } while (cursor !== null);
      expect(pages).toBe(Math.max(1, Math.ceil(seen.length / limit)));
      return seen;
    }

    function expectWalksEveryLiveItemOnce(expected: string[]) {
      for (const limit of [1, 2, 3, 7, 10, 20, 49, 50, 51, 100]) {
        const seen = walk(limit);
        expect(seen).toEqual(expected);
      }
    }

    it('walks every live pipeline exactly once, oldest first, at any page size', () => {
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) {
        vi.useFakeTimers({ now: Date.UTC(2026, 0, 1, 0, 0, i % 17), toFake: ['Date'] });
        ids.push(store.create(documentFor(i)).id);
      }
      vi.useRealTimers();
      // Order is (created_at, id): by second, then by id among the ones created in the same second.
      const order = (id: string) => `${store.get(id)?.created_at} ${id}`;
      const expected = [...ids].sort((a, b) => (order(a) < order(b) ? -1 : 1));
      expectWalksEveryLiveItemOnce(expected);

      // Deletions and updates neither duplicate nor skip survivors.
      for (const [i, id] of ids.entries()) {
        if (i % 3 === 0) store.delete(id);
        if (i % 4 === 0 && i % 3 !== 0) store.update(id, documentFor(100 + i));
      }
      expectWalksEveryLiveItemOnce(expected.filter((id) => ids.indexOf(id) % 3 !== 0));
      expect(store.list({ limit: 100 }).items.find((p) => p.id === ids[4])?.version).toBe(2);
    });

    it('walks pipelines all created in the same millisecond (ties broken by id)', () => {
      vi.useFakeTimers({ now: Date.UTC(2026, 5, 1), toFake: ['Date'] });
      const ids = Array.from({ length: 23 }, (_, i) => store.create(documentFor(i)).id);
      expectWalksEveryLiveItemOnce([...ids].sort());
    });

    it('has defaults: 20 per page, an empty store is one empty page', () => {
      expect(store.list()).toEqual({ items: [], next_cursor: null });
      for (let i = 0; i < 21; i++) store.create(documentFor(i));
      const first = store.list();
      expect(first.items).toHaveLength(20);
      expect(first.next_cursor).toEqual(expect.any(String));
      expect(store.list({ cursor: first.next_cursor }).items).toHaveLength(1);
    });

    it('refuses cursors it did not issue with RM_ERR_BAD_CURSOR', () => {
      store.create(documentFor(1));
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const bad = [
        'garbage!',
        'e30', // {}
        b64(['2026-01-01T00:00:00.000Z']),
        b64(['yesterday', 'pl_aaaaaaaaaaaaaaaa']),
        b64(['2026-01-01T00:00:00.000Z', 'not-an-id']),
        b64(['2026-01-01T00:00:00.000Z', 'pl_aaaaaaaaaaaaaaaa', 'extra']),
        b64([1, 2]),
      ];
      for (const cursor of bad) expect(codeOf(() => store.list({ cursor }))).toBe('RM_ERR_BAD_CURSOR');
    });

    it('treats a limit outside 1..100 as a caller bug', () => {
      for (const limit of [0, 101, 1.5, -1, Number.NaN])
        expect(() => store.list({ limit })).toThrow(RangeError);
    });
  });
});
