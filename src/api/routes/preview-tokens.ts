import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { PreviewdError } from '../../domain/errors.js';
import { errorBodySchema, idParamsSchema, portSchema } from '../../domain/schemas.js';
import type { PreviewTokens } from '../../edge/preview-tokens.js';
import { TOKEN_PARAM } from '../../edge/preview-tokens.js';
import { previewUrl } from '../../edge/preview-urls.js';
import type { SandboxService } from '../../sandboxes/service.js';

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema };

export const previewTokenRequestSchema = z
  .strictObject({
    port: portSchema.optional().describe('Only this port; default: every exposed port of the sandbox'),
    ttlSec: z.number().int().min(1).max(31_536_000).default(3600),
  })
  .prefault({});

export const previewTokenSchema = z.object({
  token: z.string(),
  url: z.string().describe('Preview URL carrying the token once (it becomes an HttpOnly cookie)'),
  expiresAt: z.string(),
});

export const previewTokenRoutes: FastifyPluginAsyncZod<{
  service: SandboxService;
  tokens: PreviewTokens;
  config: Config;
}> = async (app, { service, tokens, config }) => {
  app.post(
    '/v1/sandboxes/:id/preview-tokens',
    {
      schema: {
        tags: ['previews'],
        summary: 'Mint a preview token (private previews)',
        params: idParamsSchema,
        body: previewTokenRequestSchema,
        response: { 201: previewTokenSchema, ...errors },
      },
    },
    async (request, reply) => {
      const record = await service.get(request.params.id);
      const { port, ttlSec } = request.body;
      const urlPort = port ?? record.ports[0];
      if (port !== undefined && !record.ports.includes(port)) {
        throw new PreviewdError('port_not_exposed', `port ${port} of sandbox ${record.id} is not exposed`);
      }
      if (urlPort === undefined) {
        throw new PreviewdError('port_not_exposed', `sandbox ${record.id} exposes no port`);
      }
      const validAfter = record.previewTokensValidAfter ? Date.parse(record.previewTokensValidAfter) : 0;
      const iat = Math.max(Date.now(), validAfter + 1);
      const exp = iat + ttlSec * 1000;
      const token = tokens.issue({ sid: record.id, ...(port !== undefined ? { port } : {}), iat, exp });
      return reply.status(201).send({
        token,
        url: `${previewUrl(config, record.id, urlPort)}/?${TOKEN_PARAM}=${encodeURIComponent(token)}`,
        expiresAt: new Date(exp).toISOString(),
      });
    },
  );

  app.delete(
    '/v1/sandboxes/:id/preview-tokens',
    {
      schema: {
        tags: ['previews'],
        summary: 'Revoke every preview token of the sandbox issued so far',
        params: idParamsSchema,
        response: { 204: z.null().describe('Revoked'), ...errors },
      },
    },
    async (request, reply) => {
      await service.revokePreviewTokens(request.params.id);
      return reply.status(204).send(null);
    },
  );
};
