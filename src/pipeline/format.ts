/**
 * Stream formats: the sample rate and channel count carried by one edge of the graph (docs/pipelines.md,
 * negotiated like GStreamer caps). The limits are the native engine's (native/dsp/src/format.rs).
 */
import { z } from 'zod';

export interface AudioFormat {
  readonly sample_rate: number;
  readonly channels: number;
}

/** Most channels any stream may carry (docs/pipelines.md: `upmix.channels` 1..8). */
export const MAX_CHANNELS = 8;

/** What a document is validated against when no session input format is known yet. */
export const DEFAULT_INPUT_FORMAT: AudioFormat = Object.freeze({ sample_rate: 48_000, channels: 2 });

/** A session input format the engine can carry (`Format::new` in native/dsp/src/format.rs). */
export const audioFormatSchema = z.strictObject({
  sample_rate: z.int().min(1_000).max(768_000),
  channels: z.int().min(1).max(MAX_CHANNELS),
});

export function sameFormat(a: AudioFormat, b: AudioFormat): boolean {
  return a.sample_rate === b.sample_rate && a.channels === b.channels;
}

export function describeFormat(f: AudioFormat): string {
  return `${f.sample_rate} Hz, ${f.channels} channel${f.channels === 1 ? '' : 's'}`;
}
