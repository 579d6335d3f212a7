/** The replay log of a session (docs/protocol.md §8, resume.ts): what a resume sends again, within its byte bound. */
import { describe, expect, it, vi } from 'vitest';
import { POOLED_ARENAS_MAX, pooledArenaCount, ReplayLog, tokenMatches } from '../../src/realtime/resume.js';

const answer = (n: number, bytes = 100) => new Uint8Array(bytes).fill(n);

describe('ReplayLog', () => {
  it('replays everything after the last answer the client saw, text between answers included', () => {
    const log = new ReplayLog(1 << 20);
    log.append(answer(0));
    log.append('{"type":"event"}');
    log.append(answer(1));
    log.append(answer(2));
    log.append('{"type":"dropped"}');
    const kinds = (last: number) =>
      log.after(last)?.map((m) => (m.isBinary ? (m.data as Uint8Array)[0] : m.data));
    expect(kinds(-1)).toEqual([0, '{"type":"event"}', 1, 2, '{"type":"dropped"}']);
    expect(kinds(0)).toEqual(['{"type":"event"}', 1, 2, '{"type":"dropped"}']);
    expect(kinds(2)).toEqual(['{"type":"dropped"}']);
    expect(log.after(3)).toBeUndefined(); // never sent
    expect(log.after(-2)).toBeUndefined();
    expect(log.answerCount).toBe(3);
  });

  it('keeps at most RESUME_BUFFER_BYTES: answers dropped from it can no longer be replayed', () => {
    const log = new ReplayLog(1000);
    for (let n = 0; n < 25; n++) log.append(answer(n)); // 2,500 bytes: the last 10 are kept
    expect(log.after(13)).toBeUndefined(); // answer 14 is gone
    expect(log.after(14)?.map((m) => (m.data as Uint8Array)[0])).toEqual([
      15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    ]);
    expect(log.after(24)).toEqual([]);
    // Long runs compact the log without losing order.
    for (let n = 25; n < 5000; n++) log.append(answer(n % 256));
    expect(log.after(4990)?.length).toBe(9);
  });

  it('keeps its own copy of each answer: the bytes it was handed may be reused at once', () => {
    const log = new ReplayLog(1 << 20);
    const lent = new Uint8Array(200_000); // larger than an arena, then small ones
    for (let n = 0; n < 40; n++) {
      const bytes = n === 0 ? lent : lent.subarray(0, 3840);
      bytes.fill(n);
      log.append(bytes);
      lent.fill(255); // the engine's next batch overwrites the memory
    }
    const replayed = log.after(-1) ?? [];
    expect(replayed.map((m) => (m.data as Uint8Array).byteLength)).toEqual([
      200_000,
      ...Array(39).fill(3840),
    ]);
    expect(replayed.map((m) => (m.data as Uint8Array).every((b) => b === (m.data as Uint8Array)[0]))).toEqual(
      Array(40).fill(true),
    );
    expect(replayed.map((m) => (m.data as Uint8Array)[0])).toEqual(Array.from({ length: 40 }, (_, n) => n));
  });

  it('bounds the number of entries too: empty answers weigh nothing but cannot pile up', () => {
    const log = new ReplayLog(1024);
    for (let n = 0; n < 100_000; n++) log.append(new Uint8Array(0));
    expect(log.answerCount).toBe(100_000);
    expect(log.after(100_000 - 1024 - 2)).toBeUndefined();
    expect(log.after(100_000 - 1024 - 1)?.length).toBe(1024);
  });

  it('allocates its memory when it is created, none while answers flow through it', () => {
    // Sessions started together fill their logs together: allocating on the way stalled the JS thread
    // that carries every frame (resume.ts PREALLOCATED_ARENAS).
    for (const bytes of [3840, 640]) {
      const log = new ReplayLog(256 * 1024);
      const counted = { arenas: 0, rings: 0 };
      const RealF64 = globalThis.Float64Array;
      // Arenas come from Buffer.allocUnsafeSlow; the ring is constructed with a length only.
      const arenas = vi.spyOn(Buffer, 'allocUnsafeSlow');
      class F64 extends RealF64 {
        constructor(length: number) {
          super(length);
          counted.rings++;
        }
      }
      const frame = answer(7, bytes);
      globalThis.Float64Array = F64 as unknown as typeof Float64Array;
      try {
        for (let n = 0; n < 5000; n++) {
          log.append(frame);
          if (n % 10 === 0) log.append('{"type":"event","name":"vad"}');
        }
      } finally {
        globalThis.Float64Array = RealF64;
        counted.arenas = arenas.mock.calls.length;
        arenas.mockRestore();
      }
      expect(counted).toEqual({ arenas: 0, rings: 0 });
      expect(log.after(4989)?.filter((m) => m.isBinary)).toHaveLength(10);
    }
  });

  it("hands a closed log's arenas to the next log, which replays only its own answers", () => {
    const first = new ReplayLog(256 * 1024);
    for (let n = 0; n < 200; n++) first.append(answer(n, 3840));
    first.close();
    expect(first.after(-1)).toBeUndefined();
    first.append(answer(1)); // ignored once closed
    expect(first.answerCount).toBe(200);
    first.close(); // idempotent: nothing is pooled twice
    const pooled = pooledArenaCount();
    expect(pooled).toBeGreaterThanOrEqual(5);

    const arenas = vi.spyOn(Buffer, 'allocUnsafeSlow');
    let second: ReplayLog;
    try {
      second = new ReplayLog(256 * 1024);
      for (let n = 0; n < 3; n++) second.append(answer(100 + n, 640));
      expect(arenas).not.toHaveBeenCalled(); // every arena came from the pool
    } finally {
      arenas.mockRestore();
    }
    expect(pooledArenaCount()).toBeLessThan(pooled);
    // The pooled arenas still hold the first log's bytes; the second reads back exactly its own.
    const replayed = second.after(-1) ?? [];
    expect(replayed.map((m) => (m.data as Uint8Array).byteLength)).toEqual([640, 640, 640]);
    expect(replayed.map((m) => [...new Set(m.data as Uint8Array)])).toEqual([[100], [101], [102]]);
    second.close();
  });

  it('keeps at most POOLED_ARENAS_MAX arenas for later logs', () => {
    const logs = Array.from(
      { length: Math.ceil(POOLED_ARENAS_MAX / 5) + 10 },
      () => new ReplayLog(256 * 1024),
    );
    for (const log of logs) log.close();
    expect(pooledArenaCount()).toBe(POOLED_ARENAS_MAX);
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
  });
});
