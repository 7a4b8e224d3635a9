import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PreviewdError } from '../../domain/errors.js';
import { errorBodySchema } from '../../domain/schemas.js';
import type { ApiAuth } from '../auth.js';
import type { KeyRing } from '../key-ring.js';
import type { RateLimits } from '../rate-limits.js';
import { type DashboardSessions, SESSION_COOKIE } from '../session.js';

const signInSchema = z.strictObject({ apiKey: z.string().min(1).max(512) });

const sessionSchema = z.object({
  owner: z.string().nullable().describe('The owner a tenant key acts for; null for an admin key'),
  role: z
    .enum(['admin', 'tenant'])
    .optional()
    .describe("admin: sees every sandbox; tenant: only its owner's"),
  expiresAt: z.string().optional().describe('When the dashboard session ends'),
});

/** Dashboard sign-in: trades an API key for an HttpOnly session cookie kept in the store. */
export const sessionRoutes: FastifyPluginAsyncZod<{
  keys: KeyRing;
  sessions: DashboardSessions;
  auth: ApiAuth;
  limits: RateLimits;
}> = async (app, { keys, sessions, auth, limits }) => {
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'strict' } as const;

  app.post(
    '/v1/session',
    {
      config: { access: 'public' },
      schema: {
        tags: ['session'],
        summary: 'Sign in to the dashboard',
        description:
          'Checks the key and answers with an HttpOnly, SameSite=Strict session cookie (Secure over HTTPS, ' +
          'also behind a proxy named in api.trustProxy). Requests with the cookie act with that key; ones ' +
          'that change something must come from the same origin.',
        security: [],
        body: signInSchema,
        response: { 200: sessionSchema, 400: errorBodySchema, 401: errorBodySchema, 429: errorBodySchema },
      },
    },
    async (request, reply) => {
      await limits.checkAuthFailures(request);
      const caller = await keys.resolve(request.body.apiKey);
      if (!caller) {
        await limits.countAuthFailure(request);
        throw new PreviewdError('unauthorized', 'wrong or revoked API key', {
          hint: 'Use a key from PREVIEWD_API_KEYS, <dataDir>/api-key (printed by `previewd serve` on first start) or `previewd keys create`.',
        });
      }
      const { token, expiresAt } = await sessions.issue(caller);
      reply.setCookie(SESSION_COOKIE, token, {
        ...cookieOptions,
        secure: request.protocol === 'https',
        expires: expiresAt,
      });
      reply.header('cache-control', 'no-store');
      return { owner: caller.owner ?? null, role: caller.role, expiresAt: expiresAt.toISOString() };
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
    async (request) => ({ owner: request.caller?.owner ?? null, role: request.caller?.role }),
  );

  app.delete(
    '/v1/session',
    {
      config: { access: 'public' },
      schema: {
        tags: ['session'],
        summary: 'Sign out of the dashboard: the session ends for good, not only its cookie',
        security: [],
        response: { 204: z.null().describe('Signed out') },
      },
    },
    async (request, reply) => {
      await sessions.end(auth.sessionToken(request.headers));
      reply.clearCookie(SESSION_COOKIE, { ...cookieOptions, secure: request.protocol === 'https' });
      return reply.status(204).send(null);
    },
  );
};
