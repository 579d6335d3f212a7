/**
 * fast-check generators of pipeline documents, shared by the property tests (and meant for the audio
 * equivalence property through the native engine, which runs a generated document with and without
 * optimizations).
 *
 * `validPipeline` builds documents that are valid by construction: each node reads a random earlier node
 * (or the session input), and where a node cannot take the format that reaches it, an adapter is put in
 * front of it (a resample for denoise and vad, a downmix for upmix, an upmix for aec) or its params are brought in range
 * (biquad frequency). Formats are tracked here with their own small rules, independent of the code
 * under test.
 */
import fc from 'fast-check';
import type { NodeType } from '../../src/pipeline/catalog.js';
import type { AudioFormat } from '../../src/pipeline/format.js';

type Params = Record<string, unknown>;

const num = (min: number, max: number) => fc.double({ min, max, noNaN: true });
const int = (min: number, max: number) => fc.integer({ min, max });
/** Some params given, the rest left to their defaults. */
const some = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) =>
  fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Params>;

export const sampleRate = fc.oneof(
  fc.constantFrom(8_000, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000),
  int(8_000, 192_000),
);

export const inputFormat: fc.Arbitrary<AudioFormat> = fc.record({
  sample_rate: sampleRate,
  channels: int(1, 8),
});

/** Valid params of each node type, ignoring format-dependent rules (see `validPipeline`). */
export const paramsOf: { readonly [T in NodeType]: fc.Arbitrary<Params> } = {
  // 0 dB and whole dB values make folding (vanishing, adjacent sums) likely.
  gain: some({ db: fc.oneof(fc.constant(0), int(-12, 12), num(-96, 48)) }),
  downmix: fc.constantFrom({}, {}),
  upmix: some({ channels: int(1, 8) }),
  resample: fc.record(
    { sample_rate: sampleRate, quality: fc.constantFrom('fast', 'balanced', 'high') },
    { requiredKeys: ['sample_rate'] },
  ),
  normalize: some({
    target_dbfs: num(-60, 0),
    mode: fc.constantFrom('peak', 'rms'),
    window_ms: num(10, 5_000),
    max_gain_db: num(0, 60),
  }),
  biquad: some({
    kind: fc.constantFrom('lowpass', 'highpass', 'bandpass', 'notch', 'peaking', 'lowshelf', 'highshelf'),
    frequency: num(10, 96_000),
    q: num(0.1, 100),
    gain_db: num(-48, 48),
  }),
  limiter: some({ ceiling_dbfs: num(-60, 0), release_ms: num(1, 5_000) }),
  noise_gate: some({ threshold_dbfs: num(-120, 0), attack_ms: num(0.1, 1_000), release_ms: num(1, 5_000) }),
  denoise: fc.constant({}),
  vad: some({ aggressiveness: int(0, 3), hangover_ms: int(0, 5_000) }),
  spectrum: fc.constantFrom(256, 512, 1_024, 2_048, 4_096, 8_192).chain((fft_size) =>
    some({ fft_size: fc.constant(fft_size), hop: int(1, fft_size), bands: int(0, 512) }).map((p) =>
      // A hop beyond the default fft_size (1024) needs its fft_size given.
      (p.hop as number | undefined) !== undefined && (p.hop as number) > 1_024 ? { ...p, fft_size } : p,
    ),
  ),
  level: some({ interval_ms: num(10, 10_000) }),
  dtmf: fc.constant({}),
  aec: some({ tail_ms: num(20, 1_000) }),
};

export const ANALYSIS_TYPES: readonly NodeType[] = ['vad', 'spectrum', 'level', 'dtmf'];

const typedNode = fc.oneof(
  ...(Object.keys(paramsOf) as NodeType[]).map((type) => paramsOf[type].map((params) => ({ type, params }))),
);

const step = fc.record({
  /** Which earlier node to read: taken modulo (nodes so far + 1); 0 is the session input. */
  parent: fc.nat(),
  node: typedNode,
  /** Name `inputs` even where the default (the previous node) would do. */
  explicit_inputs: fc.boolean(),
  parallel_safe: fc.option(fc.boolean(), { nil: undefined }),
  /** Give params as `params:` or leave it out when empty. */
  omit_empty_params: fc.boolean(),
});

export interface GeneratedPipeline {
  readonly document: Params & { nodes: Params[] };
  readonly inputFormat: AudioFormat;
}

/** Valid pipeline documents: trees of 1..max_nodes nodes (plus adapters), random flags and output. */
export function validPipeline(max_nodes = 12): fc.Arbitrary<GeneratedPipeline> {
  return fc
    .record({
      inputFormat,
      steps: fc.array(step, { minLength: 1, maxLength: max_nodes }),
      output_pick: fc.option(fc.nat(), { nil: undefined }),
      optimization: some({
        enable_fusion: fc.boolean(),
        remove_dead_code: fc.boolean(),
        constant_folding: fc.boolean(),
        reorder: fc.boolean(),
      }),
      execution: some({ parallel: fc.boolean(), max_workers: int(1, 64) }),
    })
    .map(({ inputFormat, steps, output_pick, optimization, execution }) => {
      const built = buildNodes(inputFormat, steps);
      const audio = built
        .filter((n) => !ANALYSIS_TYPES.includes(n.type as NodeType))
        .map((n) => n.id as string);
      const document: GeneratedPipeline['document'] = {
        name: 'generated',
        optimization,
        execution,
        nodes: built,
      };
      if (output_pick !== undefined && audio.length > 0) document.output = audio[output_pick % audio.length];
      return { document, inputFormat };
    });
}

type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

function buildNodes(input: AudioFormat, steps: readonly Step[]): Params[] {
  const nodes: Params[] = [];
  const formats = new Map<string, AudioFormat>();
  const add = (id: string, parent: string | null, type: NodeType, params: Params, s: Step) => {
    const node: Params = { id, type };
    if (Object.keys(params).length > 0 || !s.omit_empty_params) node.params = params;
    const previous = nodes.length === 0 ? null : (nodes[nodes.length - 1]?.id as string);
    // The default input is the previous node, and the session input for the first node.
    if (s.explicit_inputs || parent !== previous) node.inputs = parent === null ? [] : [parent];
    if (s.parallel_safe !== undefined) node.parallel_safe = s.parallel_safe;
    nodes.push(node);
    const from = parent === null ? input : (formats.get(parent) as AudioFormat);
    formats.set(id, outputFormat(type, params, from));
    return id;
  };

  steps.forEach((s, i) => {
    const pick = s.parent % (nodes.length + 1);
    let parent = pick === 0 ? null : (nodes[pick - 1]?.id as string);
    const format = () => (parent === null ? input : (formats.get(parent) as AudioFormat));
    const params = { ...s.node.params };
    const { type } = s.node;
    if (type === 'denoise' && format().sample_rate !== 48_000) {
      parent = add(`a${i}`, parent, 'resample', { sample_rate: 48_000 }, s);
    }
    if (type === 'vad' && ![8_000, 16_000, 32_000, 48_000].includes(format().sample_rate)) {
      parent = add(`a${i}`, parent, 'resample', { sample_rate: 16_000 }, s);
    }
    if (type === 'upmix' && format().channels !== 1) parent = add(`a${i}`, parent, 'downmix', {}, s);
    // aec reads its reference from channel 1 by default.
    if (type === 'aec' && format().channels < 2) parent = add(`a${i}`, parent, 'upmix', { channels: 2 }, s);
    if (
      type === 'biquad' &&
      ((params.frequency as number | undefined) ?? 1_000) >= 0.49 * format().sample_rate
    ) {
      params.frequency = Math.floor(0.4 * format().sample_rate);
    }
    add(`n${i}`, parent, type, params, s);
  });
  return nodes;
}

/** docs/pipelines.md format rules, written out independently of src/pipeline/catalog.ts. */
function outputFormat(type: NodeType, params: Params, input: AudioFormat): AudioFormat {
  switch (type) {
    case 'downmix':
    case 'aec':
      return { ...input, channels: 1 };
    case 'upmix':
      return { ...input, channels: (params.channels as number | undefined) ?? 2 };
    case 'resample':
      return { ...input, sample_rate: params.sample_rate as number };
    default:
      return input;
  }
}

/**
 * A valid document with one field replaced by an arbitrary value: mostly invalid, sometimes still
 * valid, always close enough to the real shape to reach the deeper checks.
 */
export function corruptedPipeline(): fc.Arbitrary<{ document: unknown; inputFormat: AudioFormat }> {
  const field = fc.constantFrom(
    'name',
    'nodes',
    'output',
    'execution',
    'optimization',
    'extra',
    'node.id',
    'node.type',
    'node.params',
    'node.inputs',
    'node.parallel_safe',
    'node.params.db',
    'node.extra',
  );
  return fc
    .record({ base: validPipeline(6), field, value: fc.anything(), index: fc.nat() })
    .map(({ base, field, value, index }) => {
      const document = structuredClone(base.document);
      const node = document.nodes[index % document.nodes.length] as Params;
      if (field.startsWith('node.params.')) {
        node.params = { ...((node.params as Params | undefined) ?? {}), [field.slice(12)]: value };
      } else if (field.startsWith('node.')) node[field.slice(5)] = value;
      else (document as Params)[field] = value;
      return { document, inputFormat: base.inputFormat };
    });
}
