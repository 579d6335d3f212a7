/**
 * Resource bounds of a plan (docs/limits.md): before the engine builds anything, estimate what one session of
 * the plan costs, and refuse plans over the configured bounds with a code naming the bound:
 *
 * - memory (`RM_PIPE_MEMORY_BOUND`): the block buffers of every audio node, sized like the engine sizes
 *   them (the largest message, in the narrowest encoding, at each node's rate and channel count), plus
 *   each node's own state (filter tables, FFT buffers, windows);
 * - work (`RM_PIPE_WORK_BOUND`): estimated multiply-adds per second of input audio, summed over nodes
 *   (a resampler's taps at its faster rate, an FFT per `hop`, RNNoise per sample…);
 * - events (`RM_PIPE_EVENT_RATE`): events per second of audio, and the event text of one answer, which
 *   the engine caps (events beyond the cap would be dropped).
 *
 * The estimates are deliberately simple and err high; the engine enforces hard caps of its own.
 * Imports no Fastify.
 */
import type { AudioFormat } from './format.js';
import { type PipelineIssue, pointer } from './issues.js';
import type { Plan, PlanStage } from './plan.js';

export interface PlanBounds {
  /** Most bytes one session's graph may hold. */
  readonly maxSessionMemoryBytes: number;
  /** Most estimated operations (multiply-adds) per second of input audio. */
  readonly maxOpsPerSecond: number;
  /** Most events per second of input audio. */
  readonly maxEventsPerSecond: number;
  /** The largest binary message a session takes (`MAX_FRAME_BYTES`): sizes the block buffers. */
  readonly maxFrameBytes: number;
}

/** The engine's cap on the event text of one answer (native `MAX_EVENT_BYTES_PER_BLOCK`). */
export const MAX_EVENT_BYTES_PER_ANSWER = 1 << 20;

/** What one session of a plan is estimated to cost. */
export interface PlanCost {
  readonly memory_bytes: number;
  readonly ops_per_second: number;
  readonly events_per_second: number;
  /** Event text per second of audio, bytes. */
  readonly event_bytes_per_second: number;
  /** Event text of the largest answer, bytes. */
  readonly event_bytes_per_answer: number;
}

const F32 = 4;
/** The narrowest wire encoding (μ-law, A-law) has one byte per sample: the most frames per message. */
const MIN_BYTES_PER_SAMPLE = 1;
/** Per-node bookkeeping (params, ramps, ids) beyond its buffers. */
const NODE_OVERHEAD_BYTES = 4096;
/** Taps per output sample of each resampler quality (the sinc lengths of the engine's presets). */
const RESAMPLE_TAPS = { fast: 32, balanced: 128, high: 256 } as const;
/** The polyphase coefficient table and history of a resampler, at most (native `MAX_COEFS` f32s). */
const RESAMPLE_STATE_BYTES = (1 << 18) * F32 + 64 * 1024;
/** Operations per sample of the per-sample nodes (a biquad is 5 multiply-adds, a limiter a few more). */
const PER_SAMPLE_OPS = 10;
/** RNNoise-class denoising: about this many operations per sample, and this much state per channel. */
const DENOISE_OPS_PER_SAMPLE = 1000;
const DENOISE_STATE_BYTES = 256 * 1024;
/** VAD and DTMF run small filters and Goertzel bins per sample. */
const DETECTOR_OPS_PER_SAMPLE = 100;
/** Most events per second a detector (vad, dtmf) emits: one per 10 ms window at the very most. */
const DETECTOR_EVENTS_PER_SECOND = 100;
/** An event's envelope (`{"type":"event","node":…,"frame":…,"sample":…}`) and a number in a list, bytes. */
const EVENT_ENVELOPE_BYTES = 200;
const NUMBER_BYTES = 10;

interface StageCost {
  memory: number;
  ops: number;
  events: number;
  eventBytes: number;
}

function num(params: PlanStage['params'], name: string, fallback: number): number {
  const v = (params as Record<string, unknown>)[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/** The cost of one stage, given the most input frames one block can bring it. */
function stageCost(stage: PlanStage, blockFrames: (f: AudioFormat) => number): StageCost {
  const { input_format: input, output_format: output } = stage;
  const rate = input.sample_rate;
  const samples = rate * input.channels;
  const cost: StageCost = {
    memory: NODE_OVERHEAD_BYTES,
    ops: samples * PER_SAMPLE_OPS,
    events: 0,
    eventBytes: 0,
  };
  switch (stage.type) {
    case 'resample': {
      const quality = String((stage.params as Record<string, unknown>).quality ?? 'balanced');
      const taps = RESAMPLE_TAPS[quality as keyof typeof RESAMPLE_TAPS] ?? RESAMPLE_TAPS.high;
      const fastest = Math.max(input.sample_rate, output.sample_rate);
      cost.ops = fastest * input.channels * taps;
      cost.memory += RESAMPLE_STATE_BYTES * Math.max(1, input.channels / 2);
      break;
    }
    case 'denoise':
      cost.ops = samples * DENOISE_OPS_PER_SAMPLE;
      cost.memory += DENOISE_STATE_BYTES * input.channels;
      break;
    case 'normalize':
      // A window of levels at most as long as `window_ms`.
      cost.memory += (num(stage.params, 'window_ms', 300) / 1000) * samples * F32;
      break;
    case 'spectrum': {
      const fft = num(stage.params, 'fft_size', 1024);
      const hop = Math.max(1, num(stage.params, 'hop', fft / 2));
      const bands = num(stage.params, 'bands', 32);
      const perSecond = rate / hop;
      // Downmix, then per transform: window, real FFT (≈ 2.5·n·log2 n), magnitudes and bands.
      cost.ops = samples + perSecond * fft * (2.5 * Math.log2(fft) + 4);
      // Ring, window, FFT input, complex output and scratch, magnitudes.
      cost.memory += fft * F32 * 8;
      cost.events = perSecond;
      const values = bands === 0 ? fft / 2 + 1 : 2 * bands + 1;
      cost.eventBytes = perSecond * (EVENT_ENVELOPE_BYTES + values * NUMBER_BYTES);
      break;
    }
    case 'level': {
      const perSecond = 1000 / num(stage.params, 'interval_ms', 100);
      cost.ops = samples * 3;
      cost.events = perSecond;
      cost.eventBytes = perSecond * EVENT_ENVELOPE_BYTES;
      break;
    }
    case 'vad':
    case 'dtmf':
      cost.ops = samples * DETECTOR_OPS_PER_SAMPLE;
      cost.memory += rate * F32; // a second of windowed history, at most
      cost.events = DETECTOR_EVENTS_PER_SECOND;
      cost.eventBytes = DETECTOR_EVENTS_PER_SECOND * EVENT_ENVELOPE_BYTES;
      break;
    default:
      break;
  }
  // Audio nodes own an output block buffer and a scratch partner, sized for the larger of their two sides.
  if (stage.type !== 'spectrum' && stage.type !== 'level' && stage.type !== 'vad' && stage.type !== 'dtmf') {
    const frames = Math.max(blockFrames(input), blockFrames(output));
    cost.memory += 2 * frames * Math.max(input.channels, output.channels) * F32;
  }
  return cost;
}

/** Estimates what one session of `plan` costs (see the module comment). */
export function estimateCost(plan: Plan, maxFrameBytes: number): PlanCost {
  const inputRate = plan.input.sample_rate;
  // The most input frames one message can carry, and the seconds of audio that is.
  const maxInputFrames = Math.floor(maxFrameBytes / (MIN_BYTES_PER_SAMPLE * plan.input.channels));
  const blockSeconds = maxInputFrames / inputRate;
  const blockFrames = (f: AudioFormat) => Math.ceil(blockSeconds * f.sample_rate) + 1024;
  let memory = maxInputFrames * plan.input.channels * F32;
  let ops = 0;
  let events = 0;
  let eventBytes = 0;
  for (const node of plan.nodes) {
    const stages: readonly PlanStage[] = node.type === 'fused' ? node.stages : [node];
    for (const stage of stages) {
      const c = stageCost(stage, blockFrames);
      memory += c.memory;
      // Costs are per second of the stage's own input; a second of session input is one of the stage's.
      ops += c.ops;
      events += c.events;
      eventBytes += c.eventBytes;
    }
  }
  return {
    memory_bytes: Math.ceil(memory),
    ops_per_second: Math.ceil(ops),
    events_per_second: events,
    event_bytes_per_second: Math.ceil(eventBytes),
    event_bytes_per_answer: Math.ceil(eventBytes * blockSeconds),
  };
}

/** The problems of a plan over `bounds`: one per bound exceeded, each naming it. */
export function checkBounds(plan: Plan, bounds: PlanBounds): PipelineIssue[] {
  const cost = estimateCost(plan, bounds.maxFrameBytes);
  const issues: PipelineIssue[] = [];
  const path = pointer('nodes');
  if (cost.memory_bytes > bounds.maxSessionMemoryBytes) {
    issues.push({
      path,
      code: 'RM_PIPE_MEMORY_BOUND',
      message: `one session would hold about ${mib(cost.memory_bytes)} MiB, above the bound of ${mib(bounds.maxSessionMemoryBytes)} MiB (MAX_SESSION_MEMORY_BYTES)`,
    });
  }
  if (cost.ops_per_second > bounds.maxOpsPerSecond) {
    issues.push({
      path,
      code: 'RM_PIPE_WORK_BOUND',
      message: `one second of audio would take about ${cost.ops_per_second.toExponential(2)} operations, above the bound of ${bounds.maxOpsPerSecond.toExponential(2)} (MAX_SESSION_OPS_PER_SEC)`,
    });
  }
  if (cost.events_per_second > bounds.maxEventsPerSecond) {
    issues.push({
      path,
      code: 'RM_PIPE_EVENT_RATE',
      message: `the pipeline would emit about ${Math.ceil(cost.events_per_second)} events per second of audio, above the bound of ${bounds.maxEventsPerSecond} (MAX_EVENTS_PER_SEC)`,
    });
  } else if (cost.event_bytes_per_answer > MAX_EVENT_BYTES_PER_ANSWER) {
    issues.push({
      path,
      code: 'RM_PIPE_EVENT_RATE',
      message: `one answer could carry about ${mib(cost.event_bytes_per_answer)} MiB of events, above the engine's ${mib(MAX_EVENT_BYTES_PER_ANSWER)} MiB per answer: raise hop, use bands, or send smaller messages`,
    });
  }
  return issues;
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
