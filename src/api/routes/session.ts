import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { keyMatches } from '../../config/api-keys.js';
import { PreviewdError } from '../../domain/errors.js';
import { errorBodySchema } from '../../domain/schemas.js';
import { type DashboardSessions, SESSION_COOKIE } from '../session.js';

const signInSchema = z.strictObject({ apiKey: z.string().min(1).max(512) });

const sessionSchema = z.object({
  owner: z.string().nullable().describe('The owner named by the key (`key:owner`), if any'),
  expiresAt: z.string().optional().describe('When the dashboard session ends'),
});

/** Dashboard sign-in: trades an API key for an HttpOnly session cookie. */
export const sessionRoutes: FastifyPluginAsyncZod<{
  keys: readonly string[];
  owners?: ReadonlyMap<string, string>;
  sessions: DashboardSessions;
}> = async (app, { keys, owners, sessions }) => {
  app.post(
    '/v1/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Sign in to the dashboard',
        description:
          'Checks the key and answers with an HttpOnly, SameSite=Strict session cookie. Requests with the ' +
          'cookie act with that key; ones that change something must come from the same origin.',
        security: [],
        body: signInSchema,
        response: { 200: sessionSchema, 400: errorBodySchema, 401: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { apiKey } = request.body;
      if (!keyMatches(apiKey, keys)) {
        throw new PreviewdError('unauthorized', 'wrong API key', {
          hint: 'Use a key from PREVIEWD_API_KEYS or <dataDir>/api-key (printed by `previewd serve` on first start).',
        });
      }
      const { token, expiresAt } = sessions.issue(apiKey);
      reply.setCookie(SESSION_COOKIE, token, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        expires: expiresAt,
      });
      reply.header('cache-control', 'no-store');
      return { owner: owners?.get(apiKey) ?? null, expiresAt: expiresAt.toISOString() };
    },
  );

  app.get(
    '/v1/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Who is signed in',
        response: { 200: sessionSchema, 401: errorBodySchema },
      },
    },
    async (request) => ({ owner: (request.callerKey && owners?.get(request.callerKey)) || null }),
  );

  app.delete(
    '/v1/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Sign out of the dashboard',
        security: [],
        response: { 204: z.null().describe('Signed out') },
      },
    },
    async (_request, reply) => {
      reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
      return reply.status(204).send(null);
    },
  );
};
