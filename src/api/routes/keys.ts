import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  createdKeySchema,
  createKeySchema,
  keyIdParamsSchema,
  keyListSchema,
  keySchema,
} from '../../domain/key-schemas.js';
import { errorBodySchema } from '../../domain/schemas.js';
import type { KeyRing } from '../key-ring.js';

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
};

/** API keys: made, listed and revoked by admins only. */
export const keyRoutes: FastifyPluginAsyncZod<{ keys: KeyRing }> = async (app, { keys }) => {
  app.post(
    '/v1/keys',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Make an API key (admin)',
        description:
          "With `owner`, a tenant key that sees only that owner's sandboxes; without, an admin key. The secret is in this answer only.",
        body: createKeySchema,
        response: { 201: createdKeySchema, ...errors },
      },
    },
    async (request, reply) => {
      const { key, secret } = await keys.create(request.body);
      reply.header('cache-control', 'no-store');
      return reply.status(201).send({ ...key, key: secret });
    },
  );

  app.get(
    '/v1/keys',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'List API keys (admin)',
        response: { 200: keyListSchema, ...errors },
      },
    },
    async () => ({ keys: await keys.list() }),
  );

  app.delete(
    '/v1/keys/:keyId',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Revoke an API key (admin); its dashboard sessions end with it',
        params: keyIdParamsSchema,
        response: { 200: keySchema, ...errors },
      },
    },
    async (request) => keys.revoke(request.params.keyId),
  );
};
