/**
 * The browser client (`public/`): `index.html` at `/`, its modules and styles under `/ui/`.
 * Static files need no API key (see `openRoutes` in auth.ts); the page asks for one and sends it
 * to the API itself.
 */
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** `public/` at the project root, from both `src/plugins/` and the built `dist/plugins/`. */
export const publicDir = fileURLToPath(new URL('../../public/', import.meta.url));

export const uiPlugin = fp(
  async (app: FastifyInstance) => {
    await app.register(fastifyStatic, {
      root: publicDir,
      prefix: '/ui/',
      index: false,
      // Plain modules without a build step: revalidate, so a new deploy is picked up at once.
      cacheControl: true,
      maxAge: 0,
    });
    app.get('/', { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html'));
  },
  { name: 'remotemedia-ui', dependencies: ['remotemedia-auth'] },
);
