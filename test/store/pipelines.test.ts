/**
 * The pipeline store contract (docs/rest.md, README.md "Deployment"), one suite for every store: SQLite (on its own thread) and
 * PostgreSQL. Each test gets an empty store.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PIPELINE_ID_PATTERN, type PipelineStore, type PipelineVersion } from '../../src/store/model.js';
import { backends, type Place, rejectionCode } from './backends.js';
import { documentFor, type TestDocument } from './fixtures/documents.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe.each(backends)('PipelineStore ($name)', (backend) => {
  let place: Place;
  let store: PipelineStore<TestDocument>;
  beforeEach(async () => {
    place = await backend.place();
    store = await place.open<TestDocument>();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
    await place.remove();
  });

  it('creates version 1 under a fresh URL-safe id and returns what get() returns', async () => {
    const doc = documentFor(2); // YAML source
    const created = await store.create(doc);
    expect(created).toMatchObject({ name: 'doc-2', version: 1, content_type: 'application/yaml' });
    expect(created.id).toMatch(PIPELINE_ID_PATTERN);
    expect(created.created_at).toMatch(ISO);
    expect(created.updated_at).toBe(created.created_at);
    expect(created.definition).toEqual(doc.definition);
    expect(created.source).toBe(doc.source); // YAML comes back byte for byte, comment included
    expect(await store.get(created.id)).toEqual(created);
    expect(await store.get(created.id, 1)).toEqual(created);
  });

  it('gives distinct ids', async () => {
    const created = await Promise.all(Array.from({ length: 200 }, (_, i) => store.create(documentFor(i))));
    expect(new Set(created.map((p) => p.id)).size).toBe(200);
  });

  it('stores the definition as JSON: what comes back is the JSON of what went in, keys in order', async () => {
    const created = await store.create({
      name: 'j',
      definition: {
        name: 'j',
        nodes: [],
        description: 'x',
        dropped: undefined,
        a: { z: 1, b: 2 },
      } as TestDocument,
      source: '{"name":"j"}',
      contentType: 'application/json',
    });
    expect(Object.keys(created.definition)).toEqual(['name', 'nodes', 'description', 'a']);
    const read = await store.get(created.id);
    expect(read?.definition).toEqual(created.definition);
    expect(JSON.stringify(read?.definition)).toBe(
      '{"name":"j","nodes":[],"description":"x","a":{"z":1,"b":2}}',
    );
  });

  it('refuses a definition that is not JSON', async () => {
    const input = {
      name: 'x',
      definition: undefined as unknown as TestDocument,
      source: '',
      contentType: 'x',
    };
    await expect(store.create(input)).rejects.toThrow(TypeError);
  });

  it('keeps every version, immutable and readable by number', async () => {
    const created = await store.create(documentFor(1));
    const versions: PipelineVersion<TestDocument>[] = [created];
    for (let seq = 2; seq <= 6; seq++) {
      const prev = versions.at(-1)?.version ?? 0;
      versions.push(await store.update(created.id, documentFor(seq), { ifVersion: prev }));
    }
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [i, v] of versions.entries()) {
      const read = await store.get(created.id, i + 1);
      expect(read).toEqual(v);
      expect(read?.definition).toEqual(documentFor(i + 1).definition);
      expect(read?.source).toBe(documentFor(i + 1).source);
      expect(read?.created_at).toBe(created.created_at);
    }
    expect(await store.get(created.id)).toEqual(versions[5]);
    expect((await store.get(created.id))?.name).toBe('doc-6');
    for (const missing of [7, 0, 1.5, Number.NaN, -1, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      expect(await store.get(created.id, missing), String(missing)).toBeUndefined();
    }
    expect(await store.get('pl_aaaaaaaaaaaaaaaa')).toBeUndefined();
    expect(await store.get('')).toBeUndefined();
  });

  it('updates without a precondition, and refuses a stale one with RM_ERR_PRECONDITION_FAILED', async () => {
    const { id } = await store.create(documentFor(1));
    expect((await store.update(id, documentFor(2))).version).toBe(2);
    for (const ifVersion of [1, 3, [], [2 ** 40]]) {
      expect(await rejectionCode(store.update(id, documentFor(3), { ifVersion }))).toBe(
        'RM_ERR_PRECONDITION_FAILED',
      );
    }
    expect((await store.get(id))?.version).toBe(2); // refused updates wrote nothing
    expect((await store.update(id, documentFor(3), { ifVersion: [1, 2] })).version).toBe(3); // an If-Match list
  });

  it('answers RM_ERR_PIPELINE_NOT_FOUND for updates of unknown or deleted pipelines', async () => {
    expect(await rejectionCode(store.update('pl_aaaaaaaaaaaaaaaa', documentFor(1)))).toBe(
      'RM_ERR_PIPELINE_NOT_FOUND',
    );
    const { id } = await store.create(documentFor(1));
    expect(await store.delete(id)).toBe(true);
    expect(await rejectionCode(store.update(id, documentFor(2)))).toBe('RM_ERR_PIPELINE_NOT_FOUND');
    // Not found wins over a precondition: there is nothing to compare with.
    expect(await rejectionCode(store.update(id, documentFor(2), { ifVersion: 1 }))).toBe(
      'RM_ERR_PIPELINE_NOT_FOUND',
    );
  });

  it('names the version get() would return without reading it, and none once deleted', async () => {
    const { id } = await store.create(documentFor(1));
    await store.update(id, documentFor(2));
    expect([await store.versionOf(id), await store.versionOf(id, 1), await store.versionOf(id, 3)]).toEqual([
      2,
      1,
      undefined,
    ]);
    expect(await store.versionOf('pl_aaaaaaaaaaaaaaaa')).toBeUndefined();
    await store.delete(id);
    expect([await store.versionOf(id), await store.versionOf(id, 1)]).toEqual([undefined, undefined]);
  });

  it('soft-deletes: gone from get and list, versions kept for running sessions (docs/rest.md)', async () => {
    const keep = await store.create(documentFor(1));
    const gone = await store.create(documentFor(2));
    const v2 = await store.update(gone.id, documentFor(3));
    expect(await rejectionCode(store.delete(gone.id, { ifVersion: 1 }))).toBe('RM_ERR_PRECONDITION_FAILED');
    expect(await store.get(gone.id)).toEqual(v2); // a refused delete deleted nothing
    expect(await store.delete(gone.id, { ifVersion: 2 })).toBe(true);
    expect(await store.get(gone.id)).toBeUndefined();
    expect(await store.get(gone.id, 1)).toBeUndefined();
    expect((await store.list()).items.map((p) => p.id)).toEqual([keep.id]);
    expect(await store.get(gone.id, 2, { includeDeleted: true })).toEqual(v2);
    expect((await store.get(gone.id, 1, { includeDeleted: true }))?.definition).toEqual(
      documentFor(2).definition,
    );
    expect(await store.delete(gone.id)).toBe(false);
    expect(await store.delete('pl_aaaaaaaaaaaaaaaa', { ifVersion: 1 })).toBe(false);
  });

  it('tells subscribers about every committed write, and nothing about refused ones', async () => {
    const heard: string[] = [];
    const unsubscribe = store.subscribe((change) => {
      if (change.kind !== 'resync')
        heard.push(`${change.kind} ${'version' in change ? change.version : '-'}`);
    });
    if ('listening' in store) await (store as { listening(): Promise<void> }).listening();
    const { id } = await store.create(documentFor(1));
    await store.update(id, documentFor(2));
    await rejectionCode(store.update(id, documentFor(3), { ifVersion: 1 }));
    await store.delete(id);
    await expect.poll(() => heard, { timeout: 1000 }).toEqual(['created 1', 'updated 2', 'deleted -']);
    unsubscribe();
    await store.create(documentFor(4));
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toHaveLength(3);
  });

  describe('list', () => {
    async function walk(limit: number): Promise<string[]> {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<typeof store.list>> = await store.list({ limit, cursor });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        if (page.next_cursor !== null) expect(page.items.length).toBe(limit);
        seen.push(...page.items.map((p) => p.id));
        cursor = page.next_cursor;
        pages++;
      } while (cursor !== null);
      expect(pages).toBe(Math.max(1, Math.ceil(seen.length / limit)));
      return seen;
    }

    async function expectWalksEveryLiveItemOnce(expected: string[]) {
      for (const limit of [1, 2, 3, 7, 10, 20, 49, 50, 51, 100]) {
        expect(await walk(limit)).toEqual(expected);
      }
    }

    it('walks every live pipeline exactly once, oldest first, at any page size', async () => {
      const ids: string[] = [];
      const createdAt = new Map<string, string>();
      for (let i = 0; i < 50; i++) {
        vi.useFakeTimers({ now: Date.UTC(2026, 0, 1, 0, 0, i % 17), toFake: ['Date'] });
        const p = await store.create(documentFor(i));
        ids.push(p.id);
        createdAt.set(p.id, p.created_at);
      }
      vi.useRealTimers();
      // Order is (created_at, id): by second, then by id among the ones created in the same second.
      const order = (id: string) => `${createdAt.get(id)} ${id}`;
      const expected = [...ids].sort((a, b) => (order(a) < order(b) ? -1 : 1));
      await expectWalksEveryLiveItemOnce(expected);

      // Deletions and updates neither duplicate nor skip survivors.
      for (const [i, id] of ids.entries()) {
        if (i % 3 === 0) await store.delete(id);
        if (i % 4 === 0 && i % 3 !== 0) await store.update(id, documentFor(100 + i));
      }
      await expectWalksEveryLiveItemOnce(expected.filter((id) => ids.indexOf(id) % 3 !== 0));
      expect((await store.list({ limit: 100 })).items.find((p) => p.id === ids[4])?.version).toBe(2);
    });

    it('walks pipelines all created in the same millisecond (ties broken by id)', async () => {
      vi.useFakeTimers({ now: Date.UTC(2026, 5, 1), toFake: ['Date'] });
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) ids.push((await store.create(documentFor(i))).id);
      await expectWalksEveryLiveItemOnce([...ids].sort());
    });

    it('has defaults: 20 per page, an empty store is one empty page', async () => {
      expect(await store.list()).toEqual({ items: [], next_cursor: null });
      for (let i = 0; i < 21; i++) await store.create(documentFor(i));
      const first = await store.list();
      expect(first.items).toHaveLength(20);
      expect(first.next_cursor).toEqual(expect.any(String));
      expect((await store.list({ cursor: first.next_cursor })).items).toHaveLength(1);
    });

    it('refuses cursors it did not issue with RM_ERR_BAD_CURSOR', async () => {
      await store.create(documentFor(1));
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
      for (const cursor of bad) expect(await rejectionCode(store.list({ cursor }))).toBe('RM_ERR_BAD_CURSOR');
    });

    it('treats a limit outside 1..100 as a caller bug', async () => {
      for (const limit of [0, 101, 1.5, -1, Number.NaN]) {
        await expect(store.list({ limit })).rejects.toThrow(RangeError);
      }
    });
  });
});
