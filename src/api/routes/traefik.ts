import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PreviewdError } from '../../domain/errors.js';
import { ifNoneMatchHits } from '../../traefik/dynamic-config.js';
import type { DynamicConfigSource } from '../../traefik/dynamic-config-source.js';

export interface TraefikRouteDeps {
  /** Absent unless `edgeMode` is `traefik`. */
  dynamicConfig?: DynamicConfigSource;
}

/**
 * Traefik mode endpoints. `GET /v1/traefik/dynamic` is polled by Traefik's HTTP provider and needs
 * the API key (sent through the provider's `headers` option).
 */
export const traefikRoutes: FastifyPluginAsyncZod<TraefikRouteDeps> = async (app, { dynamicConfig }) => {
  app.get(
    '/v1/traefik/dynamic',
    {
      schema: {
        tags: ['traefik'],
        summary: "Traefik's dynamic configuration (HTTP provider JSON) for every routable sandbox",
        description:
          'Routers and services for each running sandbox port, the forward-auth middleware and the ' +
          'priority-1 wake catch-all. Carries an ETag; send If-None-Match to get 304 when unchanged.',
      },
    },
    async (request, reply) => {
      if (!dynamicConfig) {
        throw new PreviewdError(
          'traefik_mode_off',
          'this previewd runs its built-in edge (edgeMode: builtin)',
        );
      }
      const { body, etag } = await dynamicConfig.snapshot();
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) return reply.status(304).send();
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );
};
