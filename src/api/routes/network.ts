import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { egressPolicySchema } from '../../domain/egress.js';
import { errorBodySchema, sandboxIdSchema, sandboxSchema } from '../../domain/schemas.js';
import type { SandboxService } from '../../sandboxes/service.js';

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema };

export const networkRoutes: FastifyPluginAsyncZod<{ service: SandboxService }> = async (app, { service }) => {
  app.put(
    '/v1/sandboxes/:id/network',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Set the egress policy (in force for new connections when this answers, running or not)',
        params: z.strictObject({ id: sandboxIdSchema }),
        body: egressPolicySchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.setNetwork(request.params.id, request.body)),
  );
};
