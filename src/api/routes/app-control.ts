import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, idParamsSchema, sandboxSchema } from '../../domain/schemas.js';
import type { SandboxProvider } from '../../providers/provider.js';
import type { SandboxService } from '../../sandboxes/service.js';

const errors = { 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema };

const appStatusSchema = z
  .object({
    supervised: z.boolean(),
    state: z.enum(['installing', 'running', 'crashed', 'failed', 'stopped']).optional(),
    exitCode: z.number().int().optional(),
    restarts: z.number().int().optional(),
    crashes: z.number().int().optional(),
    maxRestarts: z.number().int().optional(),
    updatedAt: z.string().optional(),
  })
  .meta({ id: 'AppStatus' });

/** The supervised app of a sandbox: its status, and restart on demand. */
export const appControlRoutes: FastifyPluginAsyncZod<{
  service: SandboxService;
  provider: SandboxProvider;
}> = async (app, { service, provider }) => {
  app.post(
    '/v1/sandboxes/:id/restart-app',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Restart the app',
        description:
          'Restarts the app under its supervisor (the install runs again only when the dependencies changed); a sandbox that is not running is started.',
        params: idParamsSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.restartApp(request.params.id)),
  );

  app.get(
    '/v1/sandboxes/:id/app',
    {
      schema: {
        tags: ['sandboxes'],
        summary: "The app supervisor's status",
        description:
          'installing, running, crashed (a restart with backoff is pending), failed (restarts exhausted: restart-app), stopped.',
        params: idParamsSchema,
        response: { 200: appStatusSchema, ...errors },
      },
    },
    async (request) => {
      await service.get(request.params.id);
      const status = await provider.appStatus?.(request.params.id);
      return status ? { supervised: true, ...status } : { supervised: false };
    },
  );
};
