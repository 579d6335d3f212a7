/**
 * Stored pipelines (docs/rest.md): create, list, read, update, delete; their plan; offline processing.
 * Pipeline documents are JSON or YAML; invalid ones get 422 with every problem listed.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { planBounds } from '../../config.js';
import { readDocumentBody } from '../../documents.js';
import { RemoteMediaError } from '../../errors.js';
import { JobSlots, maxOutputBytesFor, processWav, toWav } from '../../offline.js';
import type { PlanBounds } from '../../pipeline/bounds.js';
import { describeFormat } from '../../pipeline/format.js';
import type { Plan } from '../../pipeline/plan.js';
import { DEFAULT_INPUT_FORMAT } from '../../pipeline/validate.js';
import { planWithEngine } from '../../planner.js';
import {
  audioContentTypes,
  documentContentTypes,
  mediaType,
  onlyContentTypes,
} from '../../plugins/bodies.js';
import { sendProblem } from '../../plugins/problems.js';
import { etagOf, ifMatchVersions, ifNoneMatchHits, type PipelineVersion } from '../../store/index.js';
import { documentingBodyValidator, problems } from '../common.js';
import { BodyCache } from './cache.js';
import {
  documentBody,
  formatQuery,
  idParams,
  ifMatchHeaders,
  listQuery,
  pipelineListSchema,
  pipelineSchema,
  planSchema,
  processBody,
  processResponse,
  versionQueryObject,
} from './schemas.js';

type PipelineBody = z.infer<typeof pipelineSchema>;

/** The REST view of a stored version, as listed. */
function summary(p: PipelineVersion) {
  return {
    id: p.id,
    version: p.version,
    name: p.name,
    definition: p.definition as Record<string, unknown>,
    created_at: p.created_at,
    updated_at: p.updated_at,
  };
}

/** The REST view of one pipeline: with its plan. */
function view(p: PipelineVersion, plan: Plan | null) {
  return { ...summary(p), plan };
}

/** The stored plan: the definition planned for the default input format (48 kHz stereo). */
function storedPlan(p: PipelineVersion, bounds: PlanBounds): Plan | null {
  const planned = planWithEngine(p.definition, { bounds, pipelineId: p.id });
  return planned.ok ? planned.plan : null;
}

function invalid(reply: FastifyReply, errors: readonly { path: string; code: string; message: string }[]) {
  const detail = `the pipeline document has ${errors.length} problem${errors.length === 1 ? '' : 's'}`;
  return sendProblem(reply, 422, 'RM_ERR_INVALID_PIPELINE', detail, { errors });
}

function notFound(id: string, version?: number): RemoteMediaError {
  const which = version === undefined ? '' : ` version ${version}`;
  return new RemoteMediaError('RM_ERR_PIPELINE_NOT_FOUND', `no pipeline ${id}${which}`);
}

const tags = ['pipelines'];
/** Seconds a client refused for MAX_CONCURRENT_JOBS is asked to wait. */
const JOB_RETRY_AFTER_S = 1;

export async function pipelineRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const bounds = planBounds(app.config);
  const documents = { consumes: [...documentContentTypes] };
  const takesDocuments = { onRequest: onlyContentTypes(documentContentTypes) };
  const bodies = new BodyCache();

  app.post(
    '/v1/pipelines',
    {
      ...takesDocuments,
      validatorCompiler: documentingBodyValidator,
      schema: {
        tags,
        summary: 'Create a pipeline from a JSON or YAML document',
        ...documents,
        body: documentBody,
        response: { 201: pipelineSchema, ...problems(415, 422) },
      },
    },
    async (request, reply) => {
      const doc = readDocumentBody(
        request.body,
        mediaType(request),
        DEFAULT_INPUT_FORMAT,
        bounds,
        app.config.sinkAllowlist,
      );
      if (!doc.ok) return invalid(reply, doc.errors);
      const p = await app.store.create({ ...doc, contentType: mediaType(request) ?? 'application/json' });
      reply.code(201).header('location', `/v1/pipelines/${p.id}`).header('etag', etagOf(p.id, p.version));
      return view(p, doc.plan);
    },
  );

  app.get(
    '/v1/pipelines',
    {
      schema: {
        tags,
        summary: 'List pipelines (current versions), oldest first',
        querystring: listQuery,
        response: { 200: pipelineListSchema, ...problems() },
      },
    },
    async (request) => {
      const page = await app.store.list({ limit: request.query.limit, cursor: request.query.cursor });
      return { items: page.items.map(summary), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/v1/pipelines/:id',
    {
      schema: {
        tags,
        summary:
          'One pipeline, at its current version or `?version=N`; `If-None-Match` with its ETag gets 304',
        params: idParams,
        querystring: versionQueryObject,
        response: { 200: pipelineSchema, 304: z.null().describe('Not modified'), ...problems(404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { version } = request.query;
      // Which version answers (a cheap read); the document is read only to build a body not cached yet.
      const current = await app.store.versionOf(id, version);
      if (current === undefined) throw notFound(id, version);
      const etag = etagOf(id, current);
      reply.header('etag', etag);
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) {
        // No payload at all: Fastify then sends neither a body nor a Content-Length (a serialized `null`
        // would announce 4 bytes that a 304 never carries, and keep-alive clients would wait for them).
        return (reply as FastifyReply).code(304).send();
      }
      let body = bodies.get(id, current);
      if (body === undefined) {
        const p = await app.store.get(id, current);
        if (!p) throw notFound(id, version);
        // The response schema's own check, once per version; a string is then sent as it is.
        body = JSON.stringify(pipelineSchema.parse(view(p, storedPlan(p, bounds))));
        bodies.set(id, current, body);
      }
      // Fastify sends a JSON string as it is; the type provider only knows the object it stands for.
      return reply.type('application/json; charset=utf-8').send(body as unknown as PipelineBody);
    },
  );

  app.put(
    '/v1/pipelines/:id',
    {
      ...takesDocuments,
      validatorCompiler: documentingBodyValidator,
      schema: {
        tags,
        summary: 'Store a new version; `If-Match` is checked when sent',
        ...documents,
        params: idParams,
        headers: ifMatchHeaders,
        body: documentBody,
        response: { 200: pipelineSchema, ...problems(404, 412, 415, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await app.store.get(id))) throw notFound(id);
      const doc = readDocumentBody(
        request.body,
        mediaType(request),
        DEFAULT_INPUT_FORMAT,
        bounds,
        app.config.sinkAllowlist,
      );
      if (!doc.ok) return invalid(reply, doc.errors);
      const ifVersion = ifMatchVersions(request.headers['if-match'], id);
      const p = await app.store.update(
        id,
        { ...doc, contentType: mediaType(request) ?? 'application/json' },
        ifVersion === undefined ? {} : { ifVersion },
      );
      reply.header('etag', etagOf(p.id, p.version));
      return view(p, doc.plan);
    },
  );

  app.delete(
    '/v1/pipelines/:id',
    {
      schema: {
        tags,
        summary: 'Delete a pipeline; streaming sessions already running keep their version',
        params: idParams,
        headers: ifMatchHeaders,
        response: { 204: z.null().describe('Deleted'), ...problems(404, 412) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const ifVersion = ifMatchVersions(request.headers['if-match'], id);
      if (!(await app.store.delete(id, ifVersion === undefined ? {} : { ifVersion }))) throw notFound(id);
      bodies.forget(id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/pipelines/:id/plan',
    {
      schema: {
        tags,
        summary: 'The optimized plan of a pipeline, for an input format (default 48 kHz stereo)',
        params: idParams,
        querystring: versionQueryObject.extend(formatQuery.shape),
        response: { 200: planSchema, ...problems(404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { version, sample_rate, channels } = request.query;
      const p = await app.store.get(id, version);
      if (!p) throw notFound(id, version);
      const inputFormat = {
        sample_rate: sample_rate ?? DEFAULT_INPUT_FORMAT.sample_rate,
        channels: channels ?? DEFAULT_INPUT_FORMAT.channels,
      };
      const planned = planWithEngine(p.definition, { inputFormat, bounds, pipelineId: p.id });
      if (!planned.ok) return invalid(reply, planned.errors);
      reply.header('etag', etagOf(p.id, p.version));
      return planned.plan;
    },
  );

  // MAX_CONCURRENT_JOBS: a slot is taken before the upload is read and given back with the response
  // (or when the client goes away), so uploads held in memory are bounded too.
  const jobs = new JobSlots(app.config.maxConcurrentJobs);
  const holdsSlot = new WeakSet<object>();
  const releaseSlot = async (request: { raw: object }) => {
    if (holdsSlot.delete(request.raw)) jobs.release();
  };
  const limits = { bounds, maxOutputBytes: maxOutputBytesFor(app.config.maxUploadBytes) };
  app.post(
    '/v1/pipelines/:id/process',
    {
      onRequest: [
        onlyContentTypes(audioContentTypes),
        async (request, reply) => {
          if (!jobs.tryTake()) {
            reply.header('retry-after', String(JOB_RETRY_AFTER_S));
            return sendProblem(
              reply,
              503,
              'RM_ERR_TOO_MANY_JOBS',
              `${jobs.limit} offline jobs are running (MAX_CONCURRENT_JOBS); retry later`,
            );
          }
          holdsSlot.add(request.raw);
        },
      ],
      onResponse: releaseSlot,
      onRequestAbort: releaseSlot,
      validatorCompiler: documentingBodyValidator,
      schema: {
        tags,
        summary: 'Process a WAV file offline; the result equals streaming it',
        consumes: [...audioContentTypes],
        produces: ['audio/wav', 'application/json'],
        params: idParams,
        querystring: versionQueryObject,
        body: processBody,
        response: { 200: processResponse, ...problems(400, 404, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const p = await app.store.get(id, request.query.version);
      if (!p) throw notFound(id, request.query.version);
      if (!Buffer.isBuffer(request.body)) {
        return sendProblem(
          reply,
          415,
          'RM_ERR_BAD_WAV',
          `send a WAV file as ${audioContentTypes.join(', ')}`,
        );
      }
      const outcome = await processWav(app.engine, p.definition, request.body, limits);
      if (!outcome.ok) {
        // The stored document is valid; what does not fit is this file's rate or channel count.
        const { errors, input } = outcome;
        const detail = `the pipeline cannot take this WAV (${describeFormat(input)}): ${errors[0]?.message ?? 'no plan'}`;
        return sendProblem(reply, 422, 'RM_ERR_FORMAT_CONFLICT', detail, { errors });
      }
      const { result } = outcome;
      reply
        .header('x-remotemedia-latency-ms', String(result.latency_ms))
        .header('x-remotemedia-events', String(result.events.length))
        .header('x-remotemedia-pipeline-version', String(p.version))
        .header('vary', 'accept');
      if (request.headers.accept?.includes('application/json')) {
        return reply.type('application/json').send({
          format: { ...result.format, encoding: result.encoding },
          latency_ms: result.latency_ms,
          events: result.events,
          audio_base64: result.audio.toString('base64'),
        });
      }
      // A Buffer is sent as it is; the schema documents it as a binary string.
      return reply.type('audio/wav').send(toWav(result) as unknown as string);
    },
  );
}
