import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema } from '../../domain/schemas.js';
import type { PoolState } from '../../pool/warm-pool.js';

export const poolStateSchema = z.object({
  images: z
    .array(
      z.object({
        image: z.string().describe('A runtime image the pool holds containers of (a key of `pool`)'),
        target: z.number().int().describe('How many unclaimed containers the pool keeps (`pool[image]`)'),
        warm: z.number().int().describe('Unclaimed containers waiting for a create'),
        filling: z.number().int().describe('Containers being made now'),
      }),
    )
    .describe('One entry per image with a count above 0'),
  claimed: z.number().int().describe('Sandboxes running on a container they claimed from the pool'),
  reservedMb: z
    .number()
    .describe('Memory admission counts for the unclaimed containers (admission.startMemoryMb each)'),
});

/** The warm pool's state on this node (admin): docs/pool.md. */
export const poolRoutes: FastifyPluginAsyncZod<{ pool: { state(): PoolState } }> = async (app, { pool }) => {
  app.get(
    '/v1/pool',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: "The warm pool's containers per image on this node (admin)",
        response: { 200: poolStateSchema, 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async () => pool.state(),
  );
};
