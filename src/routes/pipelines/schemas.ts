/** Schemas of the pipeline routes (docs/rest.md). */
import { z } from 'zod';
import { pipelineDocumentSchema } from '../../pipeline/document.js';
import { MAX_PAGE_LIMIT } from '../../store/index.js';
import { versionQuery } from '../common.js';

/** A format on a plan edge, or a stream format. */
const formatSchema = z.object({ sample_rate: z.int(), channels: z.int() });

const paramsSchema = z.record(z.string(), z.unknown()).describe('complete params, every default filled');

/** One node of the native engine (a fused node runs several as one pass). */
const stageSchema = z.object({
  id: z.string(),
  type: z.string(),
  params: paramsSchema,
  input_format: formatSchema,
  output_format: formatSchema,
  folded: z.array(z.string()).readonly().optional().describe('ids constant folding merged into this one'),
  folded_db: z
    .array(z.number())
    .readonly()
    .optional()
    .describe('each merged gain’s own db, in the order of `folded`; live params address each one'),
});

/** An execution plan (docs/pipelines.md): the nodes that will run, each after its input, with every edge's format. */
export const planSchema = z
  .object({
    input: formatSchema,
    nodes: z
      .array(
        z.object({
          id: z.string(),
          type: z.string().describe('a node type, or "fused" for nodes run as one pass'),
          kind: z.enum(['audio', 'analysis']),
          params: paramsSchema.optional(),
          input: z.string().nullable().describe('the node it reads; null = the session input'),
          input_format: formatSchema,
          output_format: formatSchema,
          parallel_safe: z.boolean(),
          folded: z.array(z.string()).readonly().optional(),
          folded_db: z.array(z.number()).readonly().optional(),
          fused: z.array(z.string()).readonly().optional().describe('ids merged into a fused node'),
          stages: z.array(stageSchema).readonly().optional().describe('what a fused node runs'),
          latency_frames: z.number().optional().describe('algorithmic latency, output frames'),
          latency_ms: z.number().optional(),
        }),
      )
      .readonly(),
    output: z.string().nullable().describe('the node whose audio is answered; null = the input'),
    output_format: formatSchema,
    execution: z.object({ parallel: z.boolean(), max_workers: z.int() }),
    optimizations_applied: z.array(z.string()).readonly(),
    latency_frames: z.number().optional().describe('along the output path, output frames'),
    latency_ms: z.number().optional(),
  })
  .meta({ id: 'Plan' });

/** The document the routes take, as JSON or YAML (checked by the pipeline validator, see common.ts). */
export const documentBody = pipelineDocumentSchema.meta({
  id: 'PipelineDocument',
  description: 'A pipeline document (docs/pipelines.md), as JSON or YAML',
});

const pipelineFields = {
  id: z.string(),
  version: z.int(),
  name: z.string(),
  definition: z.record(z.string(), z.unknown()).describe('the document as stored (YAML parsed)'),
  created_at: z.string().describe('ISO 8601 UTC, when the pipeline was created'),
  updated_at: z.string().describe('ISO 8601 UTC, when this version was written'),
};

export const pipelineSchema = z
  .object({ ...pipelineFields, plan: planSchema.nullable().describe('for 48 kHz stereo input') })
  .meta({ id: 'Pipeline' });

export const pipelineListSchema = z.object({
  items: z.array(z.object(pipelineFields)).describe('current versions, oldest pipeline first; no plans'),
  next_cursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page'),
});

export const idParams = z.object({ id: z.string().min(1).max(200) });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).optional(),
  cursor: z.string().max(1000).optional(),
});

export const versionQueryObject = z.object({ version: versionQuery });

/** An input format for planning; either field alone keeps the default (48 kHz, 2 channels) of the other. */
export const formatQuery = z.object({
  sample_rate: z.coerce.number().int().min(1000).max(768_000).optional(),
  channels: z.coerce.number().int().min(1).max(8).optional(),
});

export const ifMatchHeaders = z.looseObject({
  'if-match': z.string().optional().describe('ETag of the version the change is based on'),
});

const wavSchema = z
  .string()
  .meta({ format: 'binary', description: 'a WAV file: 16-bit PCM or 32-bit float' });

export const processBody = wavSchema;

export const processJsonSchema = z
  .object({
    format: z.object({
      sample_rate: z.int(),
      channels: z.int(),
      encoding: z.enum(['s16le', 'f32le']),
    }),
    latency_ms: z.number(),
    events: z.array(z.record(z.string(), z.unknown())),
    audio_base64: z.string().describe('interleaved samples, base64'),
  })
  .meta({ id: 'ProcessResult' });

export const processResponse = {
  description: 'The processed audio: a WAV file, or JSON with `Accept: application/json`',
  content: {
    'audio/wav': { schema: wavSchema },
    'application/json': { schema: processJsonSchema },
  },
};
