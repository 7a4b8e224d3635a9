import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Config } from '../../config/schema.js';
import { PreviewdError } from '../../domain/errors.js';
import type { Edge } from '../../edge/edge-server.js';
import { sendError } from '../../edge/pages.js';
import { PreviewHostParser } from '../../edge/preview-host.js';
import { ifNoneMatchHits } from '../../traefik/dynamic-config.js';
import type { DynamicConfigSource } from '../../traefik/dynamic-config-source.js';
import { forwardAuth } from '../../traefik/forward-auth.js';

export interface TraefikRouteDeps {
  config: Config;
  /** Absent unless `edgeMode` is `traefik`. */
  dynamicConfig?: DynamicConfigSource;
  edge?: Edge;
}

/**
 * Traefik mode endpoints. `GET /v1/traefik/dynamic` is polled by Traefik's HTTP provider and needs
 * the API key (sent through the provider's `headers` option). `GET /v1/traefik/forward-auth` is
 * called by Traefik's forwardAuth middleware, which cannot carry a key: it is key-free (see
 * auth.ts) and decides from the preview token alone, with the built-in edge's rules.
 */
export const traefikRoutes: FastifyPluginAsyncZod<TraefikRouteDeps> = async (
  app,
  { config, dynamicConfig, edge },
) => {
  const off = () =>
    new PreviewdError('traefik_mode_off', 'this previewd runs its built-in edge (edgeMode: builtin)');

  app.get(
    '/v1/traefik/dynamic',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['traefik'],
        summary: "Traefik's dynamic configuration (HTTP provider JSON) for every routable sandbox",
        description:
          'Routers and services for each running sandbox port, the forward-auth middleware and the ' +
          'priority-1 wake catch-all. Carries an ETag; send If-None-Match to get 304 when unchanged.',
      },
    },
    async (request, reply) => {
      if (!dynamicConfig) throw off();
      const { body, etag } = await dynamicConfig.snapshot();
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) return reply.status(304).send();
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );

  const hosts = new PreviewHostParser(config);
  app.get(
    '/v1/traefik/forward-auth',
    {
      // Traefik's forwardAuth carries no key: it decides from the preview token alone and grants
      // nothing but access to one preview.
      config: { access: 'public' },
      schema: {
        tags: ['traefik'],
        summary:
          'Traefik forwardAuth for private previews (no API key; reads X-Forwarded-Host/Uri/Proto/Method)',
        description:
          '200 lets Traefik forward the request (with X-Previewd-Sandbox set and the preview token ' +
          'removed); a 303 sets the token cookie after `?previewd_token=`; 401 (or a 302 to the ' +
          'configured login page) denies. The same rules as the built-in edge.',
        security: [],
      },
    },
    async (request, reply) => {
      if (!dynamicConfig || !edge) throw off();
      reply.hijack();
      try {
        await forwardAuth(edge, hosts, request.raw, reply.raw);
      } catch (err) {
        request.log.error({ err }, 'forward-auth failed');
        if (!reply.raw.headersSent) {
          sendError(request.raw, reply.raw, new PreviewdError('internal', (err as Error).message));
        } else reply.raw.destroy();
      }
    },
  );
};
