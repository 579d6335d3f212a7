/** The replay log of a session (docs/protocol.md §8, resume.ts): what a resume sends again, within its byte bound. */
import { describe, expect, it } from 'vitest';
import { ReplayLog, tokenMatches } from '../../src/realtime/resume.js';

const answer = (n: number, bytes = 100) => new Uint8Array(bytes).fill(n);

describe('ReplayLog', () => {
  it('replays everything after the last answer the client saw, text between answers included', () => {
    const log = new ReplayLog(1 << 20);
    log.append(answer(0), true);
    log.append('{"type":"event"}', false);
    log.append(answer(1), true);
    log.append(answer(2), true);
    log.append('{"type":"dropped"}', false);
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
    for (let n = 0; n < 25; n++) log.append(answer(n), true); // 2,500 bytes: the last 10 are kept
    expect(log.after(13)).toBeUndefined(); // answer 14 is gone
    expect(log.after(14)?.map((m) => (m.data as Uint8Array)[0])).toEqual([
      15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    ]);
    expect(log.after(24)).toEqual([]);
    // Long runs compact the log without losing order.
    for (let n = 25; n < 5000; n++) log.append(answer(n % 256), true);
    expect(log.after(4990)?.length).toBe(9);
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
  });
});
