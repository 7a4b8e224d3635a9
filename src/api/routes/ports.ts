import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, portSchema, sandboxIdSchema, sandboxSchema } from '../../domain/schemas.js';
import type { SandboxService } from '../../sandboxes/service.js';

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema };

export const portRoutes: FastifyPluginAsyncZod<{ service: SandboxService }> = async (app, { service }) => {
  app.post(
    '/v1/sandboxes/:id/ports',
    {
      schema: {
        tags: ['previews'],
        summary: 'Expose a port (adds a preview URL; no restart)',
        params: z.strictObject({ id: sandboxIdSchema }),
        body: z.strictObject({ port: portSchema }),
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.exposePort(request.params.id, request.body.port)),
  );

  app.delete(
    '/v1/sandboxes/:id/ports/:port',
    {
      schema: {
        tags: ['previews'],
        summary: 'Unexpose a port (its preview URL answers port_not_exposed)',
        params: z.strictObject({ id: sandboxIdSchema, port: z.coerce.number().int().min(1).max(65535) }),
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.unexposePort(request.params.id, request.params.port)),
  );
};
