/**
 * The replay log of a session (docs/protocol.md §8, resume.ts): what a resume sends again, within its byte bound.
 * Binary answers stay in the engine (native/dsp/src/replay.rs); the log reads them back through its reader.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type EngineOutput, OutputKind } from '../../src/native.js';
import { type AnswerReader, ReplayLog, tokenMatches } from '../../src/realtime/resume.js';

/**
 * The log's own bookkeeping, apart from the engine: answer n is `bytes` bytes of value n, kept at
 * position n (as the engine's tag would say where).
 */
function byNumber(bytes = 100): { read: AnswerReader; reads: number[] } {
  const reads: number[] = [];
  return {
    reads,
    read: (at, length) => {
      reads.push(at);
      return length === bytes ? new Uint8Array(bytes).fill(at % 256) : undefined;
    },
  };
}

describe('ReplayLog', () => {
  it('replays everything after the last answer the client saw, text between answers included', () => {
    const log = new ReplayLog(1 << 20, byNumber().read);
    log.appendAnswer(0, 100);
    log.appendText('{"type":"event"}');
    log.appendAnswer(1, 100);
    log.appendAnswer(2, 100);
    log.appendText('{"type":"dropped"}');
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
    const reader = byNumber();
    const log = new ReplayLog(1000, reader.read);
    for (let n = 0; n < 25; n++) log.appendAnswer(n, 100); // 2,500 bytes: the last 10 are kept
    expect(log.after(13)).toBeUndefined(); // answer 14 is gone
    expect(reader.reads).toEqual([]); // and the engine was not asked for anything
    expect(log.after(14)?.map((m) => (m.data as Uint8Array)[0])).toEqual([
      15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    ]);
    expect(log.after(24)).toEqual([]);
    // Long runs wrap the log's ring without losing order.
    for (let n = 25; n < 5000; n++) log.appendAnswer(n, 100);
    expect(log.after(4990)?.map((m) => (m.data as Uint8Array)[0])).toEqual(
      [4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999].map((n) => n % 256),
    );
  });

  it('replays nothing when the engine no longer holds an answer the log still counts', () => {
    const log = new ReplayLog(1 << 20, (at, length) => (at >= 3 ? new Uint8Array(length) : undefined));
    for (let n = 0; n < 6; n++) log.appendAnswer(n, 10);
    expect(log.after(1)).toBeUndefined(); // answer 2 is gone from the engine
    expect(log.after(2)).toHaveLength(3);
  });

  it('bounds the number of entries too: empty answers weigh nothing but cannot pile up', () => {
    const reader = byNumber();
    const log = new ReplayLog(1024, reader.read);
    for (let n = 0; n < 100_000; n++) log.appendAnswer(0, 0);
    expect(log.answerCount).toBe(100_000);
    expect(log.after(100_000 - 1024 - 2)).toBeUndefined();
    const replayed = log.after(100_000 - 1024 - 1) ?? [];
    expect(replayed).toHaveLength(1024);
    expect(replayed.every((m) => (m.data as Uint8Array).byteLength === 0)).toBe(true);
    expect(reader.reads).toEqual([]); // an empty answer is not read back
  });

  it('holds nothing once closed', () => {
    const log = new ReplayLog(1 << 20, byNumber().read);
    log.appendAnswer(0, 100);
    log.close();
    expect(log.after(-1)).toBeUndefined();
    log.appendAnswer(1, 100); // ignored once closed
    log.appendText('{}');
    expect(log.answerCount).toBe(1);
    log.close(); // idempotent
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
  });
});

describe('ReplayLog over the engine', () => {
  const engine = new Engine({ workers: 1, pinCores: false });
  afterAll(() => engine.shutdown());
  const plan = {
    input: { sample_rate: 8000, channels: 1 },
    nodes: [{ id: 'g', type: 'gain', params: { db: -6 }, input: null }],
    output: 'g',
  };
  const frame = (n: number) => Buffer.from(new Int16Array(160).fill(n * 40).buffer);

  /** Streams `count` frames through a session that keeps `keep` bytes; the log bound is `bound`. */
  async function stream(count: number, keep: number, bound: number) {
    const outputs: Buffer[] = [];
    let log: ReplayLog | undefined;
    let done: () => void = () => {};
    const flushed = new Promise<void>((resolve) => {
      done = resolve;
    });
    const session = engine.createSession(
      plan,
      { encoding: 's16le', sample_rate: 8000, channels: 1 },
      { encoding: 's16le' },
      { maxMessageBytes: 4096, queueLimitMs: null, keepAnswerBytes: keep },
      (o: EngineOutput) => {
        if (o.kind !== OutputKind.Audio && o.kind !== OutputKind.Flushed) return;
        const audio = o.audio ?? Buffer.alloc(0);
        // What the session does: the answer is sent (here: copied for the test), its place logged.
        outputs.push(Buffer.from(audio));
        log?.appendAnswer(o.tag, audio.byteLength);
        if (o.kind === OutputKind.Flushed) done();
      },
    );
    log = new ReplayLog(bound, (at, length) => session.readAnswer(at, length));
    for (let n = 0; n < count; n++) session.push(frame(n));
    session.flush();
    await flushed;
    return { outputs, log, session };
  }

  it('replays the answers byte for byte as the engine made them', async () => {
    const { outputs, log, session } = await stream(50, 64 * 1024, 64 * 1024);
    const replayed = log.after(9) ?? [];
    expect(replayed).toHaveLength(outputs.length - 10);
    expect(Buffer.concat(replayed.map((m) => m.data as Uint8Array))).toEqual(
      Buffer.concat(outputs.slice(10)),
    );
    session.close();
    expect(session.readAnswer(0, 320)).toBeUndefined(); // the engine keeps nothing after close
  });

  it('refuses a replay the engine can no longer give, though the log counts it', async () => {
    // The engine keeps 1 KiB (and room for what is on its way); the log would count 1 MiB.
    const { outputs, log, session } = await stream(1000, 1024, 1 << 20);
    expect(log.after(-1)).toBeUndefined();
    const tail = log.after(outputs.length - 4) ?? [];
    expect(Buffer.concat(tail.map((m) => m.data as Uint8Array))).toEqual(Buffer.concat(outputs.slice(-3)));
    session.close();
  });
});
