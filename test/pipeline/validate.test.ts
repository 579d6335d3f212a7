import { describe, expect, it } from 'vitest';
import { nodeTypes } from '../../src/pipeline/catalog.js';
import { DEFAULT_INPUT_FORMAT, pipelineIssueCodes, validatePipeline } from '../../src/pipeline/validate.js';

type Node = Record<string, unknown>;
const doc = (nodes: Node[], extra: Record<string, unknown> = {}) => ({ name: 'test', nodes, ...extra });

/** The problems of a document, as `code path` lines (tests match codes and pointers, never messages). */
function problems(input: unknown, options: Parameters<typeof validatePipeline>[1] = {}): string[] {
  const result = validatePipeline(input, options);
  return result.ok ? [] : result.errors.map((e) => `${e.code} ${e.path}`);
}

function validated(input: unknown, options: Parameters<typeof validatePipeline>[1] = {}) {
  const result = validatePipeline(input, options);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.pipeline;
}

describe('validatePipeline', () => {
  it('fills the document defaults of docs/pipelines.md', () => {
    const p = validated(doc([{ id: 'g', type: 'gain' }]));
    expect(p.execution).toEqual({ parallel: true, max_workers: 4 });
    expect(p.optimization).toEqual({
      enable_fusion: true,
      remove_dead_code: true,
      constant_folding: true,
      reorder: true,
    });
    expect(p.input_format).toEqual(DEFAULT_INPUT_FORMAT);
    expect(DEFAULT_INPUT_FORMAT).toEqual({ sample_rate: 48000, channels: 2 });
    expect(p.nodes[0]).toMatchObject({ id: 'g', params: { db: 0 }, input: null, parallel_safe: true });
    expect(p.output).toBe('g');
  });

  it('reads the node listed before by default, the session input for the first node and for inputs: []', () => {
    const p = validated(
      doc([
        { id: 'a', type: 'gain' },
        { id: 'b', type: 'gain' },
        { id: 'c', type: 'level', inputs: [] },
        { id: 'd', type: 'limiter', inputs: ['a'] },
      ]),
    );
    expect(p.nodes.map((n) => [n.id, n.input])).toEqual([
      ['a', null],
      ['b', 'a'],
      ['c', null],
      ['d', 'a'],
    ]);
  });

  it('orders nodes so each comes after its input', () => {
    const p = validated(
      doc([
        { id: 'late', type: 'gain', inputs: ['early'] },
        { id: 'early', type: 'gain', inputs: [] },
      ]),
    );
    expect(p.nodes.map((n) => n.id)).toEqual(['early', 'late']);
    expect(p.output).toBe('early'); // the last audio node listed
  });

  it('defaults the output to the last audio node, and to the session input when all nodes are analysis', () => {
    expect(
      validated(
        doc([
          { id: 'g', type: 'gain' },
          { id: 'v', type: 'vad' },
        ]),
      ).output,
    ).toBe('g');
    const tap = validated(
      doc([
        { id: 'v', type: 'vad' },
        { id: 'l', type: 'level' },
      ]),
    );
    expect(tap.output).toBeNull();
    expect(tap.output_format).toEqual(DEFAULT_INPUT_FORMAT);
  });

  it('reads YAML, JSON text and JSON with its content type', () => {
    const yaml = 'name: t\nnodes:\n  - id: g\n    type: gain\n    params:\n';
    expect(validated(yaml).nodes[0]?.params).toEqual({ db: 0 });
    const json = JSON.stringify(doc([{ id: 'g', type: 'gain', params: { db: -6 } }]));
    expect(validated(json).nodes[0]?.params).toEqual({ db: -6 });
    expect(validated(json, { contentType: 'application/json; charset=utf-8' }).name).toBe('test');
  });

  describe('reports each problem with its code and JSON pointer', () => {
    it.each([
      ['YAML syntax', 'name: [unclosed', {}, 'RM_PIPE_PARSE '],
      ['YAML duplicate key', 'name: a\nname: b\nnodes: []', {}, 'RM_PIPE_PARSE '],
      ['JSON syntax', '{"name": ', { contentType: 'application/json' }, 'RM_PIPE_PARSE '],
      ['not an object', [1, 2], {}, 'RM_PIPE_SCHEMA '],
      ['missing name', { nodes: [{ id: 'g', type: 'gain' }] }, {}, 'RM_PIPE_SCHEMA /name'],
      [
        'name too long',
        doc([{ id: 'g', type: 'gain' }], { name: 'x'.repeat(201) }),
        {},
        'RM_PIPE_SCHEMA /name',
      ],
      ['no nodes', doc([]), {}, 'RM_PIPE_SCHEMA /nodes'],
      [
        'too many nodes',
        doc(Array.from({ length: 257 }, (_, i) => ({ id: `n${i}`, type: 'gain' }))),
        {},
        'RM_PIPE_SCHEMA /nodes',
      ],
      [
        'unknown top-level key',
        doc([{ id: 'g', type: 'gain' }], { optimisation: {} }),
        {},
        'RM_PIPE_SCHEMA /optimisation',
      ],
      [
        'max_workers out of bounds',
        doc([{ id: 'g', type: 'gain' }], { execution: { max_workers: 65 } }),
        {},
        'RM_PIPE_SCHEMA /execution/max_workers',
      ],
      [
        'unknown optimization flag',
        doc([{ id: 'g', type: 'gain' }], { optimization: { fuse: true } }),
        {},
        'RM_PIPE_SCHEMA /optimization/fuse',
      ],
      ['bad id', doc([{ id: 'Gain', type: 'gain' }]), {}, 'RM_PIPE_SCHEMA /nodes/0/id'],
      ['id too long', doc([{ id: `g${'x'.repeat(64)}`, type: 'gain' }]), {}, 'RM_PIPE_SCHEMA /nodes/0/id'],
      ['missing type', doc([{ id: 'g' }]), {}, 'RM_PIPE_SCHEMA /nodes/0/type'],
      [
        'parallel_safe not boolean',
        doc([{ id: 'g', type: 'gain', parallel_safe: 'yes' }]),
        {},
        'RM_PIPE_SCHEMA /nodes/0/parallel_safe',
      ],
      ['unknown node key', doc([{ id: 'g', type: 'gain', db: 3 }]), {}, 'RM_PIPE_SCHEMA /nodes/0/db'],
      ['unknown type', doc([{ id: 'g', type: 'reverb' }]), {}, 'RM_PIPE_UNKNOWN_TYPE /nodes/0/type'],
      [
        'param out of bounds',
        doc([
          { id: 'a', type: 'gain' },
          { id: 'g', type: 'gain', params: { db: 60 } },
        ]),
        {},
        'RM_PIPE_BAD_PARAMS /nodes/1/params/db',
      ],
      [
        'unknown param',
        doc([{ id: 'g', type: 'gain', params: { gain: 1 } }]),
        {},
        'RM_PIPE_BAD_PARAMS /nodes/0/params/gain',
      ],
      [
        'missing required param',
        doc([{ id: 'r', type: 'resample' }]),
        {},
        'RM_PIPE_BAD_PARAMS /nodes/0/params/sample_rate',
      ],
      [
        'params on downmix',
        doc([{ id: 'm', type: 'downmix', params: { channels: 1 } }]),
        {},
        'RM_PIPE_BAD_PARAMS /nodes/0/params/channels',
      ],
      [
        'duplicate id',
        doc([
          { id: 'g', type: 'gain' },
          { id: 'g', type: 'limiter' },
        ]),
        {},
        'RM_PIPE_DUPLICATE_ID /nodes/1/id',
      ],
      [
        'unknown input',
        doc([{ id: 'g', type: 'gain', inputs: ['nope'] }]),
        {},
        'RM_PIPE_UNKNOWN_INPUT /nodes/0/inputs/0',
      ],
      [
        'too many inputs',
        doc([
          { id: 'a', type: 'gain' },
          { id: 'b', type: 'gain' },
          { id: 'c', type: 'gain', inputs: ['a', 'b'] },
        ]),
        {},
        'RM_PIPE_TOO_MANY_INPUTS /nodes/2/inputs',
      ],
      ['self loop', doc([{ id: 'g', type: 'gain', inputs: ['g'] }]), {}, 'RM_PIPE_CYCLE /nodes/0/inputs/0'],
      [
        'cycle',
        doc([
          { id: 'a', type: 'gain', inputs: ['b'] },
          { id: 'b', type: 'gain' },
        ]),
        {},
        'RM_PIPE_CYCLE /nodes/0/inputs/0',
      ],
      [
        'output names no node',
        doc([{ id: 'g', type: 'gain' }], { output: 'x' }),
        {},
        'RM_PIPE_BAD_OUTPUT /output',
      ],
      [
        'output is an analysis node',
        doc(
          [
            { id: 'g', type: 'gain' },
            { id: 'v', type: 'vad' },
          ],
          { output: 'v' },
        ),
        {},
        'RM_PIPE_BAD_OUTPUT /output',
      ],
      [
        'denoise fed 16 kHz',
        doc([{ id: 'd', type: 'denoise' }]),
        { inputFormat: { sample_rate: 16000, channels: 1 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/0',
      ],
      [
        'vad at 44.1 kHz',
        doc([
          { id: 'g', type: 'gain' },
          { id: 'v', type: 'vad' },
        ]),
        { inputFormat: { sample_rate: 44100, channels: 2 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/1',
      ],
      [
        'upmix fed stereo',
        doc([{ id: 'u', type: 'upmix', params: { channels: 4 } }]),
        {},
        'RM_PIPE_FORMAT_CONFLICT /nodes/0',
      ],
      [
        'biquad at 0.49 × rate after a resample',
        doc([
          { id: 'r', type: 'resample', params: { sample_rate: 8000 } },
          { id: 'f', type: 'biquad', params: { frequency: 3920 } },
        ]),
        {},
        'RM_PIPE_FORMAT_CONFLICT /nodes/1/params/frequency',
      ],
      [
        'dtmf below 8 kHz',
        doc([{ id: 't', type: 'dtmf' }]),
        { inputFormat: { sample_rate: 4000, channels: 1 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/0',
      ],
      [
        'aec fed mono',
        doc([{ id: 'e', type: 'aec' }]),
        { inputFormat: { sample_rate: 16000, channels: 1 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/0',
      ],
      [
        'aec reference channel beyond the input',
        doc([{ id: 'e', type: 'aec', params: { reference_channel: 2 } }]),
        { inputFormat: { sample_rate: 16000, channels: 2 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/0/params/reference_channel',
      ],
      [
        'aec reading one channel twice',
        doc([{ id: 'e', type: 'aec', params: { reference_channel: 0 } }]),
        { inputFormat: { sample_rate: 16000, channels: 2 } },
        'RM_PIPE_FORMAT_CONFLICT /nodes/0/params/near_channel',
      ],
      [
        'session input of 9 channels',
        doc([{ id: 'g', type: 'gain' }]),
        { inputFormat: { sample_rate: 48000, channels: 9 } },
        'RM_PIPE_FORMAT_CONFLICT ',
      ],
    ])('%s', (_name, input, options, expected) => {
      expect(problems(input, options)).toEqual([expected]);
    });

    it('covers every code in the catalog', () => {
      // The bound codes and RM_PIPE_ENGINE_REJECTED come from the planner (test/routes/bounds.test.ts).
      expect(Object.keys(pipelineIssueCodes).sort()).toEqual([
        'RM_PIPE_BAD_OUTPUT',
        'RM_PIPE_BAD_PARAMS',
        'RM_PIPE_CYCLE',
        'RM_PIPE_DUPLICATE_ID',
        'RM_PIPE_ENGINE_REJECTED',
        'RM_PIPE_EVENT_RATE',
        'RM_PIPE_FORMAT_CONFLICT',
        'RM_PIPE_MEMORY_BOUND',
        'RM_PIPE_PARSE',
        'RM_PIPE_SCHEMA',
        'RM_PIPE_TOO_MANY_INPUTS',
        'RM_PIPE_UNKNOWN_INPUT',
        'RM_PIPE_UNKNOWN_TYPE',
        'RM_PIPE_WORK_BOUND',
      ]);
    });
  });

  it('accepts the format edge cases that are allowed', () => {
    const mono16k = { inputFormat: { sample_rate: 16000, channels: 1 } };
    expect(
      problems(
        doc([
          { id: 'v', type: 'vad' },
          { id: 'u', type: 'upmix', params: { channels: 8 } },
        ]),
        mono16k,
      ),
    ).toEqual([]);
    expect(problems(doc([{ id: 'f', type: 'biquad', params: { frequency: 7839 } }]), mono16k)).toEqual([]);
    expect(
      problems(
        doc([
          { id: 'r', type: 'resample', params: { sample_rate: 48000 } },
          { id: 'd', type: 'denoise' },
        ]),
        mono16k,
      ),
    ).toEqual([]);
  });

  it('propagates formats along every edge', () => {
    const p = validated(
      doc([
        { id: 'mono', type: 'downmix' },
        { id: 'rs', type: 'resample', params: { sample_rate: 16000 } },
        { id: 'up', type: 'upmix', params: { channels: 6 } },
        { id: 'lvl', type: 'level', inputs: ['rs'] },
      ]),
    );
    const edges = Object.fromEntries(p.nodes.map((n) => [n.id, [n.input_format, n.output_format]]));
    expect(edges).toEqual({
      mono: [
        { sample_rate: 48000, channels: 2 },
        { sample_rate: 48000, channels: 1 },
      ],
      rs: [
        { sample_rate: 48000, channels: 1 },
        { sample_rate: 16000, channels: 1 },
      ],
      up: [
        { sample_rate: 16000, channels: 1 },
        { sample_rate: 16000, channels: 6 },
      ],
      lvl: [
        { sample_rate: 16000, channels: 1 },
        { sample_rate: 16000, channels: 1 },
      ],
    });
    expect(p.output).toBe('up');
    expect(p.output_format).toEqual({ sample_rate: 16000, channels: 6 });
  });

  it('reports every problem at once, without cascading from a broken node', () => {
    const errors = problems(
      {
        name: '',
        execution: { parallel: 'yes' },
        nodes: [
          { id: 'a', type: 'gain', params: { db: 100 } },
          { id: 'b', type: 'warp' },
          { id: 'a', type: 'denoise', inputs: ['missing'] },
          { id: 'c', type: 'upmix', inputs: ['a', 'b'] },
          { id: 'd', type: 'vad', parallel_safe: 1 },
          { id: 'e', type: 'level', inputs: ['d'] }, // d is malformed: not an unknown input
          { id: 'f', type: 'gain', inputs: ['g'] },
          { id: 'g', type: 'gain', inputs: ['f'] },
          { id: 'h', type: 'upmix' }, // fed by g, on a cycle: no format can be blamed
          { id: 'i', type: 'upmix', inputs: [] }, // fed stereo
        ],
        output: 'e',
      },
      {},
    );
    expect(errors.sort()).toEqual(
      [
        'RM_PIPE_SCHEMA /name',
        'RM_PIPE_SCHEMA /execution/parallel',
        'RM_PIPE_SCHEMA /nodes/4/parallel_safe',
        'RM_PIPE_BAD_PARAMS /nodes/0/params/db',
        'RM_PIPE_UNKNOWN_TYPE /nodes/1/type',
        'RM_PIPE_DUPLICATE_ID /nodes/2/id',
        'RM_PIPE_UNKNOWN_INPUT /nodes/2/inputs/0',
        'RM_PIPE_TOO_MANY_INPUTS /nodes/3/inputs',
        'RM_PIPE_CYCLE /nodes/6/inputs/0',
        'RM_PIPE_BAD_OUTPUT /output',
        'RM_PIPE_FORMAT_CONFLICT /nodes/9',
      ].sort(),
    );
  });

  it('treats prototype names as plain strings', () => {
    const text =
      '{"name":"t","nodes":[{"id":"constructor","type":"toString","params":{"__proto__":{"db":1}}},{"id":"g","type":"gain","params":{"__proto__":1}}]}';
    expect(problems(text, { contentType: 'application/json' }).sort()).toEqual([
      'RM_PIPE_BAD_PARAMS /nodes/1/params/__proto__',
      'RM_PIPE_UNKNOWN_TYPE /nodes/0/type',
    ]);
  });

  it('escapes JSON pointer segments (RFC 6901)', () => {
    const result = validatePipeline(doc([{ id: 'g', type: 'gain', params: { 'a/b~c': 1 } }]));
    expect(result.ok ? [] : result.errors.map((e) => e.path)).toEqual(['/nodes/0/params/a~1b~0c']);
  });

  it('names the nearest known type of a typo and lists the valid types', () => {
    const unknownType = (type: string) => {
      const result = validatePipeline(doc([{ id: 'n', type }]));
      const issue = result.ok ? undefined : result.errors[0];
      expect(issue?.code).toBe('RM_PIPE_UNKNOWN_TYPE');
      for (const known of nodeTypes) expect(issue?.message).toContain(known);
      return issue?.message ?? '';
    };
    // The suggestion is the one quoted type besides the unknown one.
    const quoted = (message: string) => [...message.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    expect(quoted(unknownType('gian'))).toEqual(['gian', 'gain']);
    expect(quoted(unknownType('Resampel'))).toEqual(['Resampel', 'resample']);
    expect(quoted(unknownType('noisegate'))).toEqual(['noisegate', 'noise_gate']);
    expect(quoted(unknownType('reverb'))).toEqual(['reverb']);
  });
});
