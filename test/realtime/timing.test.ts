import { describe, expect, it } from 'vitest';
import { MAX_RING, ReceiveTimes } from '../../src/realtime/timing.js';

describe('ReceiveTimes', () => {
  it('answers each frame with its own receive time, however many are in flight', () => {
    for (const inFlight of [1, 4, 63, 64, 65, 200, 5000]) {
      const t = new ReceiveTimes();
      let answered = 0;
      for (let f = 0; f < 20_000; f++) {
        t.mark(f, f);
        // Answer in order, keeping `inFlight` frames unanswered.
        while (f + 1 - answered > inFlight) {
          expect(t.elapsedMs(answered, answered + 1000)).toBe(1000);
          answered++;
        }
      }
      while (answered < 20_000) {
        expect(t.elapsedMs(answered, answered + 7)).toBe(7);
        answered++;
      }
    }
  });

  it('keeps the times across growth when frames were dropped unanswered', () => {
    const t = new ReceiveTimes();
    for (let f = 0; f < 100; f++) t.mark(f, f);
    // Frames 0..49 were dropped: the first answer is 50's, which settles all before it.
    expect(t.elapsedMs(50, 150)).toBe(100);
    for (let f = 100; f < 400; f++) t.mark(f, f);
    for (let f = 51; f < 400; f++) expect(t.elapsedMs(f, f + 3)).toBe(3);
  });

  it('stops growing at MAX_RING frames in flight and goes on', () => {
    const t = new ReceiveTimes();
    const n = MAX_RING + 10;
    for (let f = 0; f < n; f++) t.mark(f, f);
    // The ring did not grow past MAX_RING: the ten oldest frames' slots hold the ten newest's times
    // (frame 0's slot frame MAX_RING's, received at n - 10; frame 9's frame n - 1's).
    expect(t.elapsedMs(0, n)).toBe(10);
    expect(t.elapsedMs(9, n)).toBe(1);
    // The newest MAX_RING frames keep theirs, and the ring goes on.
    expect(t.elapsedMs(10, n)).toBe(n - 10);
    expect(t.elapsedMs(n - 1, n)).toBe(1);
    t.mark(n, n);
    expect(t.elapsedMs(n, n + 2)).toBe(2);
  });
});
