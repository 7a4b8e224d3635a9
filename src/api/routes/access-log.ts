import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import type { AccessLog } from '../../edge/access-log.js';
import type { SandboxService } from '../../sandboxes/service.js';

export const accessEntrySchema = z.object({
  time: z.string(),
  method: z.string(),
  path: z.string(),
  port: z.number().int(),
  status: z.number().int(),
  bytes: z.number().int(),
  durationMs: z.number(),
  websocket: z.boolean(),
});

export const accessLogRoutes: FastifyPluginAsyncZod<{
  service: SandboxService;
  accessLog: AccessLog;
}> = async (app, { service, accessLog }) => {
  app.get(
    '/v1/sandboxes/:id/access-log',
    {
      schema: {
        tags: ['previews'],
        summary: 'Recent preview requests of the sandbox, newest first (bounded, in memory)',
        params: idParamsSchema,
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(100) }),
        response: {
          200: z.object({ entries: z.array(accessEntrySchema) }),
          400: errorBodySchema,
          401: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      await service.get(request.params.id);
      return { entries: accessLog.recent(request.params.id, request.query.limit) };
    },
  );
};
