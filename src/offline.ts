/**
 * Offline processing (docs/rest.md `POST /v1/pipelines/{id}/process`): a WAV file through a pipeline on the
 * native worker pool, with the same executor as streaming, so the result is the same as streaming the
 * file (docs/rest.md, docs/audio.md). Imports no Fastify.
 */
import { RemoteMediaError } from './errors.js';
import { type BatchResult, type Engine, parseWav, type WavInfo, wavHeader } from './native.js';
import { estimateCost, type PlanBounds } from './pipeline/bounds.js';
import type { AudioFormat } from './pipeline/format.js';
import type { PipelineIssue } from './pipeline/issues.js';
import type { Plan } from './pipeline/plan.js';
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
 * WAV; a pipeline that cannot take the file's format comes back as problems, with that format. Throws
 * RM_ERR_OUTPUT_TOO_LARGE, before any work, when the result would exceed `limits.maxOutputBytes`.
 */
export async function processWav(
  engine: Engine,
  definition: unknown,
  wav: Buffer,
  limits: OfflineLimits = {},
): Promise<OfflineOutcome> {
  const info = parseWav(wav);
  const input = { sample_rate: info.sample_rate, channels: info.channels };
  const { bounds, maxOutputBytes } = limits;
  const planned = planWithEngine(
    definition,
    bounds === undefined ? { inputFormat: input } : { inputFormat: input, bounds },
  );
  if (!planned.ok) return { ok: false, input, errors: planned.errors };
  const pcm = wav.subarray(info.data_offset, info.data_offset + info.data_bytes);
  if (maxOutputBytes !== undefined) {
    // Known before any work: the output's length follows from the input's and the plan's formats.
    const expected = plannedOutputBytes(planned.plan, info, bounds);
    if (expected > maxOutputBytes) {
      throw new RemoteMediaError(
        'RM_ERR_OUTPUT_TOO_LARGE',
        `the result would be about ${expected} bytes, above the bound of ${maxOutputBytes} (4 × MAX_UPLOAD_BYTES); send shorter audio`,
      );
    }
  }
  const result = await engine.processBatch(
    planned.plan,
    { ...input, encoding: info.encoding },
    pcm,
    info.encoding,
  );
  return { ok: true, result: { ...result, encoding: info.encoding } };
}

/**
 * Slots for concurrent `/process` jobs (`MAX_CONCURRENT_JOBS`): each job holds its upload, its result
 * and a session on the pool, so their number is bounded; one over gets 503 + Retry-After.
 */
export class JobSlots {
  private taken = 0;

  constructor(readonly limit: number) {}

  /** Takes a slot; false when all are taken. */
  tryTake(): boolean {
    if (this.taken >= this.limit) return false;
    this.taken++;
    return true;
  }

  release(): void {
    this.taken = Math.max(0, this.taken - 1);
  }

  get inUse(): number {
    return this.taken;
  }
}

export interface OfflineLimits {
  /** docs/limits.md plan bounds (from the configuration). */
  bounds?: PlanBounds;
  /** Most bytes the result (audio and events) may take; larger jobs are refused before they run. */
  maxOutputBytes?: number;
}

/** The bound on a `/process` result for an upload limit: four times the largest upload. */
export function maxOutputBytesFor(maxUploadBytes: number): number {
  return 4 * maxUploadBytes;
}

/**
 * The size of a job's result, from the input's length and the plan's rate and channel ratio (plus its
 * latency, the tail a flush adds), in the input's sample encoding; plus its event text.
 */
function plannedOutputBytes(plan: Plan, info: WavInfo, bounds: PlanBounds | undefined): number {
  const bytesPerSample = info.encoding === 'f32le' ? 4 : 2;
  const seconds = info.data_bytes / (bytesPerSample * info.channels * info.sample_rate);
  const out = plan.output_format;
  // The tail a flush adds is the plan's latency; 50 ms more covers rounding at every rate change.
  const total = seconds + (plan.latency_ms ?? 0) / 1000 + 0.05;
  const audio = total * out.sample_rate * out.channels * bytesPerSample;
  const cost = estimateCost(plan, bounds?.maxFrameBytes ?? 65536);
  return Math.ceil(audio + total * cost.event_bytes_per_second);
}

/** The processed audio as a WAV file in the input's sample encoding. */
export function toWav(result: OfflineResult): Buffer {
  const { sample_rate, channels } = result.format;
  return Buffer.concat([
    wavHeader(sample_rate, channels, result.encoding, result.audio.length),
    result.audio,
  ]);
}
