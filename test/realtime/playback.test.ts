/** The playback model of docs/telephony/README.md (src/realtime/playback.ts) over a real provider wire. */
import { describe, expect, it } from 'vitest';
import { CHUNK_MS, MAX_CHUNKS_PER_TICK, Playback, type PlaybackReport } from '../../src/realtime/playback.js';
import { TwilioWire } from '../../src/realtime/providers/twilio.js';
import type { Outbound } from '../../src/realtime/providers/wire.js';
import { until } from '../support/telephony.js';

function setup(maxQueueMs = 60_000) {
  const wire = new TwilioWire();
  wire.text(
    JSON.stringify({
      event: 'start',
      start: {
        streamSid: 'MZ1',
        callSid: 'CA1',
        accountSid: 'AC1',
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
    }),
  );
  const sent: Array<Record<string, unknown>> = [];
  /**
   * Media messages sent in one go: within one synchronous run of the pacer (a tick), which ends before the
   * microtask queued at its first send runs. Wall-clock gaps cannot tell two ticks from one: libuv may fire
   * a catch-up tick's 0 ms timer well under a millisecond after the previous tick.
   */
  const burst = { now: 0, max: 0 };
  const reports: PlaybackReport[] = [];
  const playback = new Playback(
    wire,
    { encoding: 'mulaw', sample_rate: 8000, channels: 1 },
    (m: Outbound) => {
      const message = JSON.parse((m as { text: string }).text);
      if (message.event === 'media') {
        if (burst.now === 0) queueMicrotask(() => (burst.now = 0));
        burst.now += 1;
        burst.max = Math.max(burst.max, burst.now);
      }
      sent.push(message);
    },
    (r) => reports.push(r),
    maxQueueMs,
  );
  const media = () => sent.filter((m) => m.event === 'media');
  const marks = () => sent.filter((m) => m.event === 'mark').map((m) => (m.mark as { name: string }).name);
  return { playback, sent, reports, media, marks, burst };
}

describe('Playback', () => {
  it('cuts audio into 20 ms chunks, pads the tail at a mark with silence, and marks every chunk', async () => {
    const { playback, media, marks, reports } = setup();
    expect(playback.chunkBytes).toBe(160);
    playback.push(new Uint8Array(400).fill(0x10)); // 2.5 chunks
    playback.mark('end');
    await until(() => media().length === 3, 2000, 'three chunks');
    const third = media()[2]?.media as { payload: string } | undefined;
    const last = Buffer.from(third?.payload ?? '', 'base64');
    expect([...last.subarray(0, 80)].every((b) => b === 0x10)).toBe(true);
    expect([...last.subarray(80)].every((b) => b === 0xff)).toBe(true); // μ-law silence
    expect(marks()).toEqual(['rm:0:1', 'rm:0:2', 'rm:0:3']);
    // The sink mark is answered only once the provider confirms the chunks before it.
    playback.onProviderMark('rm:0:2');
    expect(reports).toEqual([]);
    playback.onProviderMark('rm:0:3');
    expect(reports).toEqual([{ type: 'played', name: 'end', played_ms: 3 * CHUNK_MS }]);
    playback.close();
  });

  it('on clear reports what was confirmed, rewinds, and ignores marks echoed for the cleared audio', async () => {
    const { playback, media, reports, sent } = setup();
    playback.push(new Uint8Array(160 * 50));
    playback.mark('never');
    await until(() => media().length >= 3, 2000, 'three chunks');
    playback.onProviderMark('rm:0:2');
    playback.clear('interrupted');
    expect(sent.at(-1)).toEqual({ event: 'clear', streamSid: 'MZ1' });
    expect(reports).toEqual([{ type: 'interrupted', played_ms: 40 }]);
    // Twilio echoes the marks still queued at the clear: not heard, so nothing moves.
    playback.onProviderMark('rm:0:3');
    playback.onProviderMark('rm:0:4');
    expect(playback.info()).toMatchObject({
      played_ms: 40,
      sent_ms: 40,
      queued_ms: 0,
      marks_pending: 0,
      interruptions: 1,
    });
    expect(playback.active).toBe(false);
    // The timeline goes on from the confirmed position, under a new epoch.
    playback.push(new Uint8Array(160));
    await until(
      () => sent.some((m) => (m.mark as { name?: string } | undefined)?.name === 'rm:1:3'),
      2000,
      'next mark',
    );
    playback.close();
  });

  it('refuses audio beyond its queue limit and keeps what it holds', () => {
    const { playback } = setup(100);
    playback.flow(true); // paused: nothing leaves the queue
    expect(playback.push(new Uint8Array(160 * 5))).toBe(true);
    expect(playback.push(new Uint8Array(160))).toBe(false);
    expect(playback.info()).toMatchObject({ state: 'paused', queued_ms: 100 });
    playback.close();
  });

  it('catches up after a short stall two chunks at a time, and restarts the run after a long one', async () => {
    const { playback, media, burst } = setup();
    playback.push(new Uint8Array(160 * 40));
    const stall = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {}
    };
    await until(() => media().length >= 5, 2000, 'five chunks');
    stall(50); // 2.5 chunks behind: caught up without a restart
    await until(() => media().length >= 15, 2000, 'fifteen chunks');
    stall(150); // 7.5 chunks behind: the run restarts from now
    await until(() => media().length === 40, 3000, 'all chunks');
    expect(playback.info().pacing_restarts).toBeGreaterThanOrEqual(1);
    // Caught up, but never more than MAX_CHUNKS_PER_TICK media messages in one go.
    expect(burst.max).toBe(MAX_CHUNKS_PER_TICK);
    playback.close();
  });
});
