/**
 * Durability under SIGKILL (docs/configuration.md: WAL, synchronous=FULL; README "Several instances": "SIGKILL of any instance loses no
 * acknowledged write"): a writer process is killed in the middle of its writes, again and again; after
 * every restart each write it acknowledged is there, byte for byte. For SQLite, `PRAGMA integrity_check`
 * is ok too. Runs against every store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncSqliteStore } from '../../src/store/sqlite.js';
import { backends, type Place } from './backends.js';
import { exited, spawnFixture, waitForLine } from './fixtures/child.js';
import { documentFor, type TestDocument } from './fixtures/documents.js';

const ROUNDS = 12;

/** mulberry32: reproducible kill delays. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Acknowledged {
  /** `${id}@${version}` → seq of the document written. */
  versions: Map<string, number>;
  /** Last acknowledged version of each pipeline. */
  latest: Map<string, number>;
  deleted: Set<string>;
}

/** Applies the complete lines of a killed writer's stdout; a torn last line was never acknowledged. */
function record(ack: Acknowledged, stdout: string): number {
  const lines = stdout.split('\n').slice(0, -1); // includes `ready`, skipped below
  let writes = 0;
  for (const line of lines) {
    const [op, id, version, seq] = line.split(' ');
    if (!id || (op !== 'c' && op !== 'u' && op !== 'd')) continue;
    writes++;
    if (op === 'd') {
      ack.deleted.add(id);
      continue;
    }
    ack.versions.set(`${id}@${version}`, Number(seq));
    ack.latest.set(id, Number(version));
  }
  return writes;
}

describe.each(backends)('SIGKILL in the middle of writes ($name)', (backend) => {
  let place: Place;
  beforeEach(async () => {
    place = await backend.place();
  });
  afterEach(async () => {
    await place.remove();
  });

  it(`loses no acknowledged write over ${ROUNDS} kill-and-restart rounds`, async () => {
    const random = prng(0x5eed);
    const ack: Acknowledged = { versions: new Map(), latest: new Map(), deleted: new Set() };
    let acknowledged = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const writer = spawnFixture('writer.ts', [place.location, String(round * 1_000_000)]);
      let stdout = '';
      writer.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      // The kill timer starts once the writer has opened the store and is about to write.
      await waitForLine(writer, (line) => line === 'ready');
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 250)));
      writer.kill('SIGKILL');
      await exited(writer);
      expect(writer.signalCode).toBe('SIGKILL');
      acknowledged += record(ack, stdout);

      // Restart: reopen the file as the next server process would, and check everything acknowledged so far.
      if (backend.name === 'sqlite') {
        const file = SyncSqliteStore.open(place.location);
        expect(file.db.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
        expect(file.db.pragma('foreign_key_check')).toEqual([]);
        file.close();
      }
      const store = await place.open<TestDocument>();
      for (const [key, seq] of ack.versions) {
        const [id, version] = key.split('@');
        const stored = await store.get(id ?? '', Number(version), { includeDeleted: true });
        const doc = documentFor(seq);
        expect(stored?.definition, key).toEqual(doc.definition);
        expect(stored?.source, key).toBe(doc.source);
        expect(stored?.content_type, key).toBe(doc.contentType);
      }
      // A write may have committed just before the kill without being acknowledged: at most one per round.
      let unacknowledged = 0;
      for (const [id, version] of ack.latest) {
        if (ack.deleted.has(id)) {
          expect(await store.get(id), id).toBeUndefined();
          continue;
        }
        const current = await store.get(id, undefined, { includeDeleted: true });
        expect(current?.version, id).toBeGreaterThanOrEqual(version);
        if (current?.version !== version || (await store.get(id)) === undefined) unacknowledged++;
      }
      expect(unacknowledged).toBeLessThanOrEqual(round + 1);
      await store.close();
    }

    // The test only means something if the writer was really writing when it was killed.
    expect(acknowledged).toBeGreaterThanOrEqual(ROUNDS * 5);
    expect(ack.deleted.size).toBeGreaterThan(0);
    console.info(
      `durability (${backend.name}): ${ROUNDS} rounds, ${acknowledged} acknowledged writes verified`,
    );
  }, 120_000);
});
