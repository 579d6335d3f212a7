/** Schemas of the live-session routes (docs/rest.md, docs/protocol.md). */
import { z } from 'zod';

const latencySchema = z.object({
  p50_ms: z.number(),
  p95_ms: z.number(),
  p99_ms: z.number(),
  max_ms: z.number(),
  count: z.number(),
});

const streamFormatSchema = z.object({ encoding: z.string(), sample_rate: z.int(), channels: z.int() });

export const sessionSchema = z
  .object({
    id: z.string(),
    state: z.enum(['awaiting_start', 'streaming', 'stopping', 'closed']),
    transport: z.string().describe('ws (@fastify/websocket) or uws (uWebSockets.js)'),
    pipeline: z.object({ id: z.string(), version: z.int() }),
    started_at: z.string(),
    input: streamFormatSchema.nullable(),
    output: streamFormatSchema.nullable(),
    worker: z.int().nullable().describe('the native worker the session lives on'),
    frames_in: z.number(),
    frames_out: z.number(),
    frames_dropped: z.number(),
    frame_errors: z.number(),
    events: z.number(),
    non_finite_samples: z.number().describe('NaN or ±Inf f32le input samples replaced by 0'),
    latency: latencySchema.describe('end to end: frame received to answer sent'),
    engine_latency: latencySchema.describe('hand-off to the engine to answer ready'),
    queue_wait: latencySchema.describe('hand-off to processing start'),
    nodes: z.array(z.object({ id: z.string(), type: z.string(), process: latencySchema })),
    telephony: z
      .object({
        provider: z.enum(['twilio', 'vonage', 'jambonz', 'asterisk']),
        call: z.record(z.string(), z.unknown()).nullable().describe('provider ids and custom parameters'),
        sink: z
          .object({
            state: z.string(),
            url: z.string().nullable(),
            connects: z.int().optional(),
            reconnects: z.int().optional(),
            dropped_messages: z.int().optional(),
            last_error: z.string().nullable().optional(),
            barge_in: z.boolean().optional(),
          })
          .describe('connecting, open, down, closed; none (no sink) or not_allowed (SINK_ALLOWLIST)'),
        playback: z
          .object({
            state: z.enum(['idle', 'playing', 'paused']),
            queued_ms: z.number(),
            played_ms: z.number(),
            sent_ms: z.number(),
            marks_pending: z.number(),
            chunks_sent: z.number(),
            interruptions: z.number(),
            pacing_restarts: z.number().describe('runs restarted after a stall instead of catching up'),
            late_chunks: z
              .number()
              .describe(
                'chunks that left more than 2 ms after their 20 ms deadline (the server side of pacing)',
              ),
            max_lateness_ms: z.number().describe('the latest any chunk left after its deadline, ms'),
          })
          .nullable(),
        echo_reference: z
          .boolean()
          .describe('the pipeline has an aec node: playback is fed to it as the reference channel'),
        listeners: z.int(),
        provider_errors: z.int(),
      })
      .optional()
      .describe('telephony sessions only (docs/telephony/README.md)'),
  })
  .meta({ id: 'Session' });

export const sessionListSchema = z.object({ items: z.array(sessionSchema) });

export const sessionParams = z.object({ id: z.string().min(1).max(200) });
