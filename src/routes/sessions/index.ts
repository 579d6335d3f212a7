/** Live streaming sessions of both transports (docs/rest.md): list, inspect, end. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { RemoteMediaError } from '../../errors.js';
import { CloseCode } from '../../realtime/protocol.js';
import type { SessionInfo, StreamSession } from '../../realtime/session.js';
import { problems } from '../common.js';
import { sessionListSchema, sessionParams, sessionSchema } from './schemas.js';

const tags = ['sessions'];

/**
 * Sessions described per turn of the event loop while listing. Each description reads the session's
 * native counters and percentiles (~10 µs for a five-node pipeline) and builds its document; 500 in
 * one go held the thread that carries every stream, and the streams' answers with it, for 5–15 ms.
 */
export const LIST_CHUNK = 32;

/** Every live session's `info()`, LIST_CHUNK at a time; one that ended meanwhile is left out. */
async function describeAll(sessions: StreamSession[]): Promise<SessionInfo[]> {
  const items: SessionInfo[] = [];
  for (let i = 0; i < sessions.length; i++) {
    if (i > 0 && i % LIST_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
    const s = sessions[i] as StreamSession;
    if (s.state !== 'closed') items.push(s.info());
  }
  return items;
}

export async function sessionRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const find = (id: string) => {
    const session = app.realtime.get(id);
    if (!session) throw new RemoteMediaError('RM_ERR_SESSION_NOT_FOUND', `no live session ${id}`);
    return session;
  };

  app.get(
    '/v1/sessions',
    {
      schema: {
        tags,
        summary: 'Live sessions with counters and latency percentiles',
        response: { 200: sessionListSchema, ...problems() },
      },
    },
    async () => ({ items: await describeAll([...app.realtime.sessions.values()]) }),
  );

  app.get(
    '/v1/sessions/:id',
    {
      schema: {
        tags,
        summary: 'One live session',
        params: sessionParams,
        response: { 200: sessionSchema, ...problems(404) },
      },
    },
    async (request) => find(request.params.id).info(),
  );

  app.delete(
    '/v1/sessions/:id',
    {
      schema: {
        tags,
        summary: 'End a session: it is flushed, sent its stats and closed with 1000',
        description:
          'Answers 202 at once with the session as it is (usually `stopping`); the client receives ' +
          'the remaining audio, `flushed`, `stats`, then the close.',
        params: sessionParams,
        response: { 202: sessionSchema, ...problems(404) },
      },
    },
    async (request, reply) => {
      const session = find(request.params.id);
      session.end(CloseCode.Normal, 'ended by API');
      return reply.code(202).send(session.info());
    },
  );
}
