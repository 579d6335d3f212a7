/**
 * The node catalog (docs/pipelines.md): one strict zod schema per node type, holding its params, defaults and
 * bounds, plus the format rule of each type (what input it accepts, what output it makes). The public
 * catalog served by `GET /v1/nodes` is generated from the same schemas, so the two cannot drift.
 *
 * The native engine enforces the same defaults and bounds (native/dsp/src/nodes/*.rs); keep them equal.
 */
import { z } from 'zod';
import { type AudioFormat, describeFormat } from './format.js';

/** Audio nodes change the audio; analysis nodes pass it through unchanged and emit events. */
export type NodeKind = 'audio' | 'analysis';

/** Complete params of one node, every default filled. */
export type NodeParams = Readonly<Record<string, unknown>>;

/** A format the node cannot take; `param` names the param at fault when there is one. */
export interface FormatProblem {
  readonly param?: string;
  readonly message: string;
}

/** The output a node makes from an input format, and why it cannot take that input, if it cannot. */
export interface Negotiation {
  readonly output: AudioFormat;
  readonly problems: readonly FormatProblem[];
}

export interface NodeDefinition {
  readonly kind: NodeKind;
  readonly description: string;
  /** Strict: unknown keys are errors. Parsing fills the defaults. */
  readonly params: z.ZodType<NodeParams>;
  /** Event names the node emits (docs/protocol.md §4); empty for audio nodes. */
  readonly events: readonly string[];
  /** Output format for `input`, with the problems when `input` is not acceptable. */
  negotiate(params: NodeParams, input: AudioFormat): Negotiation;
}

/** Types each definition against its own schema, then erases the param type for the catalog table. */
function define<S extends z.ZodType<NodeParams>>(def: {
  kind: NodeKind;
  description: string;
  params: S;
  events?: readonly string[];
  negotiate?: (params: z.output<S>, input: AudioFormat) => Negotiation;
}): NodeDefinition {
  const negotiate = def.negotiate ?? passThrough;
  return {
    kind: def.kind,
    description: def.description,
    params: def.params,
    events: def.events ?? [],
    negotiate: (params, input) => negotiate(params as z.output<S>, input),
  };
}

function passThrough(_params: unknown, input: AudioFormat): Negotiation {
  return { output: input, problems: [] };
}

function requireRate(
  input: AudioFormat,
  accepted: (sample_rate: number) => boolean,
  needs: string,
): Negotiation {
  const problems = accepted(input.sample_rate)
    ? []
    : [{ message: `needs ${needs}, gets ${describeFormat(input)}` }];
  return { output: input, problems };
}

const num = (min: number, max: number, description: string) =>
  z.number().min(min).max(max).describe(description);
const int = (min: number, max: number, description: string) =>
  z.int().min(min).max(max).describe(description);

/** Per-type definitions, in the order of the catalog in docs/pipelines.md. */
export const nodeDefinitions = {
  gain: define({
    kind: 'audio',
    description: 'Multiplies every sample by a constant given in dB.',
    params: z.strictObject({ db: num(-96, 48, 'gain in dB').default(0) }),
  }),
  downmix: define({
    kind: 'audio',
    description: 'Averages all channels to mono.',
    params: z.strictObject({}),
    negotiate: (_p, input) => ({ output: { sample_rate: input.sample_rate, channels: 1 }, problems: [] }),
  }),
  upmix: define({
    kind: 'audio',
    description: 'Copies a mono input to N channels.',
    params: z.strictObject({ channels: int(1, 8, 'output channel count').default(2) }),
    negotiate: (p, input) => ({
      output: { sample_rate: input.sample_rate, channels: p.channels },
      problems:
        input.channels === 1 ? [] : [{ message: `needs a mono input, gets ${describeFormat(input)}` }],
    }),
  }),
  resample: define({
    kind: 'audio',
    description:
      'Band-limited sample rate conversion, streaming, state kept across frames. Band edges per quality ' +
      '(polyphase engine: rational ratios such as 48k↔16k, 44.1k↔48k; fractions of the lower Nyquist rate; ' +
      'latency at 48k↔16k; the exact latency of a session is in its `ready` message): ' +
      'fast: flat within 0.1 dB to 0.70, at most 3 dB down to 0.80, 70 dB rejection from 1.0 up, THD+N ≤ -60 dB, latency 1.0 ms; ' +
      'balanced: 0.80, 0.87, 90 dB, THD+N ≤ -80 dB, latency 1.9 ms; ' +
      'high: 0.90, 0.95, 100 dB, THD+N ≤ -120 dB (f32le output), latency 5.8 ms.',
    params: z.strictObject({
      sample_rate: int(8_000, 192_000, 'output sample rate in Hz'),
      quality: z
        .enum(['fast', 'balanced', 'high'])
        .default('balanced')
        .describe(
          'filter quality: fast (flat to 0.70 × the lower Nyquist rate, -3 dB at 0.80, 70 dB stopband), ' +
            'balanced (0.80, 0.87, 90 dB), high (0.90, 0.95, 100 dB)',
        ),
    }),
    negotiate: (p, input) => ({
      output: { sample_rate: p.sample_rate, channels: input.channels },
      problems: [],
    }),
  }),
  normalize: define({
    kind: 'audio',
    description: 'Streaming level normalization (AGC); deterministic.',
    params: z.strictObject({
      target_dbfs: num(-60, 0, 'target level in dBFS').default(-3),
      mode: z.enum(['peak', 'rms']).default('rms').describe('level measure'),
      window_ms: num(10, 5_000, 'measurement window in ms').default(300),
      max_gain_db: num(0, 60, 'largest gain applied, in dB').default(24),
    }),
  }),
  biquad: define({
    kind: 'audio',
    description: 'IIR filter from the RBJ audio EQ cookbook.',
    params: z.strictObject({
      kind: z
        .enum(['lowpass', 'highpass', 'bandpass', 'notch', 'peaking', 'lowshelf', 'highshelf'])
        .default('lowpass')
        .describe('filter shape'),
      frequency: num(
        10,
        96_000,
        'corner or centre frequency in Hz; must be below 0.49 × the input rate',
      ).default(1_000),
      // biome-ignore lint/suspicious/noApproximativeNumericConstant: the engine's default is exactly 0.7071, not 1/√2
      q: num(0.1, 100, 'quality factor').default(0.7071),
      gain_db: num(-48, 48, 'gain in dB (peaking and shelf kinds)').default(0),
    }),
    // The RBJ formulas degenerate as the frequency nears Nyquist; 0.49 × rate is the engine's bound.
    negotiate: (p, input) => ({
      output: input,
      problems:
        p.frequency < 0.49 * input.sample_rate
          ? []
          : [
              {
                param: 'frequency',
                message: `frequency ${p.frequency} Hz must be below 0.49 × ${input.sample_rate} Hz = ${(0.49 * input.sample_rate).toFixed(1)} Hz`,
              },
            ],
    }),
  }),
  limiter: define({
    kind: 'audio',
    description: 'Peak limiter.',
    params: z.strictObject({
      ceiling_dbfs: num(-60, 0, 'highest output peak in dBFS').default(-1),
      release_ms: num(1, 5_000, 'release time in ms').default(50),
    }),
  }),
  noise_gate: define({
    kind: 'audio',
    description: 'Noise gate.',
    params: z.strictObject({
      threshold_dbfs: num(-120, 0, 'level below which the gate closes, in dBFS').default(-50),
      attack_ms: num(0.1, 1_000, 'attack time in ms').default(5),
      release_ms: num(1, 5_000, 'release time in ms').default(100),
    }),
  }),
  denoise: define({
    kind: 'audio',
    description: 'RNNoise-class neural noise suppression; needs a 48 kHz input.',
    params: z.strictObject({}),
    // The RNNoise model is trained on 48 kHz frames of 480 samples.
    negotiate: (_p, input) => requireRate(input, (r) => r === 48_000, '48000 Hz'),
  }),
  vad: define({
    kind: 'analysis',
    description: 'Voice activity detection; audio passes through.',
    params: z.strictObject({
      aggressiveness: int(0, 3, '0 = least, 3 = most aggressive at calling audio non-speech').default(2),
      // Whole milliseconds: the engine reads it as an unsigned integer (native/dsp/src/nodes/vad.rs).
      hangover_ms: int(0, 5_000, 'speech kept on this long after the last voiced frame, in ms').default(300),
    }),
    events: ['speech_start', 'speech_end'],
    // WebRTC-style VAD models exist for these rates only.
    negotiate: (_p, input) =>
      requireRate(
        input,
        (r) => [8_000, 16_000, 32_000, 48_000].includes(r),
        '8000, 16000, 32000 or 48000 Hz',
      ),
  }),
  spectrum: define({
    kind: 'analysis',
    description: 'Real FFT magnitudes as events; audio passes through.',
    params: z
      .strictObject({
        fft_size: z
          .literal([256, 512, 1_024, 2_048, 4_096, 8_192])
          .default(1_024)
          .describe('FFT length, a power of two'),
        hop: z
          .int()
          .min(1)
          .max(8_192)
          .optional()
          .describe('frames between FFTs, 1..fft_size (default fft_size / 2)'),
        window: z.literal('hann').default('hann').describe('window function'),
        bands: int(0, 512, 'bands reported; 0 = every bin').default(32),
      })
      .refine((p) => p.hop === undefined || p.hop <= p.fft_size, {
        path: ['hop'],
        message: 'hop must not exceed fft_size',
      })
      .transform((p) => ({ ...p, hop: p.hop ?? p.fft_size / 2 })),
    events: ['spectrum'],
  }),
  level: define({
    kind: 'analysis',
    description: 'RMS and peak dBFS and clipped-sample count as events; audio passes through.',
    params: z.strictObject({ interval_ms: num(10, 10_000, 'time between events in ms').default(100) }),
    events: ['level'],
  }),
  dtmf: define({
    kind: 'analysis',
    description: 'DTMF digits (Goertzel) as events; audio passes through.',
    params: z.strictObject({}),
    events: ['digit'],
    // The highest DTMF tone is 1633 Hz; below 8 kHz the Goertzel bins crowd together.
    negotiate: (_p, input) => requireRate(input, (r) => r >= 8_000, 'at least 8000 Hz'),
  }),
  aec: define({
    kind: 'audio',
    description:
      'Acoustic echo cancellation: removes the echo of a far-end reference channel (what was played to the ' +
      'caller) from the near-end channel; outputs the near end, mono. Adaptive partitioned-block FIR of tail_ms ' +
      '(delay plus reverberation), no gating of the near end. Answers carry whole blocks of 8 to 16 ms.',
    params: z.strictObject({
      reference_channel: int(0, 7, 'input channel with the far-end reference').default(1),
      near_channel: int(0, 7, 'input channel with the near end (microphone)').default(0),
      tail_ms: num(20, 1_000, 'longest echo path modelled (delay plus reverberation), in ms').default(300),
    }),
    negotiate: (p, input) => {
      const problems: FormatProblem[] = [];
      if (input.channels < 2) {
        problems.push({
          message: `needs at least 2 channels (near end and reference), gets ${describeFormat(input)}`,
        });
      }
      for (const param of ['reference_channel', 'near_channel'] as const) {
        if (input.channels >= 2 && p[param] >= input.channels) {
          problems.push({
            param,
            message: `${param} ${p[param]}: the input has channels 0..${input.channels - 1}`,
          });
        }
      }
      if (p.reference_channel === p.near_channel) {
        problems.push({ param: 'near_channel', message: 'reference_channel and near_channel must differ' });
      }
      return { output: { sample_rate: input.sample_rate, channels: 1 }, problems };
    },
  }),
} as const satisfies Record<string, NodeDefinition>;

export type NodeType = keyof typeof nodeDefinitions;

export const nodeTypes = Object.keys(nodeDefinitions) as NodeType[];

export function isNodeType(type: string): type is NodeType {
  return Object.hasOwn(nodeDefinitions, type);
}

/** Parses a node's params (absent or `null` count as `{}`, as in the engine), filling defaults. */
export function parseNodeParams(type: NodeType, params: unknown) {
  return nodeDefinitions[type].params.safeParse(params ?? {});
}

/** One entry of `GET /v1/nodes` (docs/rest.md). */
export interface CatalogEntry {
  readonly type: NodeType;
  readonly description: string;
  /** JSON Schema (draft 2020-12) of the params a document may give. */
  readonly params: Record<string, unknown>;
  readonly emits_events: boolean;
  readonly events: readonly string[];
}

/** The public node catalog, generated from the schemas above. */
export function nodeCatalog(): CatalogEntry[] {
  return nodeTypes.map((type) => {
    const def = nodeDefinitions[type];
    return {
      type,
      description: def.description,
      // `io: 'input'` describes what a document may send: params with defaults are optional.
      params: z.toJSONSchema(def.params, { io: 'input' }) as Record<string, unknown>,
      emits_events: def.kind === 'analysis',
      events: def.events,
    };
  });
}
