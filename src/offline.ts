/**
 * Offline processing (docs/rest.md `POST /v1/pipelines/{id}/process`): a WAV file through a pipeline on the
 * native worker pool, with the same executor as streaming, so the result is the same as streaming the
 * file (docs/rest.md, docs/audio.md). Imports no Fastify.
 */
import { type BatchResult, type Engine, parseWav, wavHeader } from './native.js';
import type { AudioFormat } from './pipeline/format.js';
import type { PipelineIssue } from './pipeline/issues.js';
import { type PlanProblem, planWithEngine } from './planner.js';

export interface OfflineResult extends BatchResult {
  /** The sample encoding of the input, used for the output too. */
  encoding: 's16le' | 'f32le';
}

export type OfflineOutcome =
  | { ok: true; result: OfflineResult }
  | { ok: false; input: AudioFormat; errors: readonly (PipelineIssue | PlanProblem)[] };

/**
 * Plans `definition` for the WAV's own rate and channel count and runs the samples through it.
 * Throws RM_ERR_EMPTY_AUDIO for no bytes and RM_ERR_BAD_WAV for what is not a 16-bit PCM or 32-bit float
 * WAV; a pipeline that cannot take the file's format comes back as problems, with that format.
 */
export async function processWav(engine: Engine, definition: unknown, wav: Buffer): Promise<OfflineOutcome> {
  const info = parseWav(wav);
  const input = { sample_rate: info.sample_rate, channels: info.channels };
  const planned = planWithEngine(definition, { inputFormat: input });
  if (!planned.ok) return { ok: false, input, errors: planned.errors };
  const pcm = wav.subarray(info.data_offset, info.data_offset + info.data_bytes);
  const result = await engine.processBatch(
    planned.plan,
    { ...input, encoding: info.encoding },
    pcm,
    info.encoding,
  );
  return { ok: true, result: { ...result, encoding: info.encoding } };
}

/** The processed audio as a WAV file in the input's sample encoding. */
export function toWav(result: OfflineResult): Buffer {
  const { sample_rate, channels } = result.format;
  return Buffer.concat([
    wavHeader(sample_rate, channels, result.encoding, result.audio.length),
    result.audio,
  ]);
}
