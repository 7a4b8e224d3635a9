import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PreviewdError } from '../../domain/errors.js';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import { parseSince, usageAnswerSchema, usageQuerySchema } from '../../domain/usage-schemas.js';
import type { SandboxService } from '../../sandboxes/service.js';
import type { NodeUsage } from '../../usage/node-usage.js';

/**
 * GET /v1/sandboxes/{id}/metrics: the sandbox's usage samples, kept in memory on the node that
 * runs it (in a cluster the call is forwarded there, src/cluster/api-forwarding.ts).
 */
export const usageRoutes: FastifyPluginAsyncZod<{ service: SandboxService; usage: NodeUsage }> = async (
  app,
  { service, usage },
) => {
  app.get(
    '/v1/sandboxes/:id/metrics',
    {
      schema: {
        tags: ['sandboxes'],
        summary:
          'CPU, memory, disk and network of the sandbox, sampled every usage.intervalSec (the last usage.retentionSec)',
        params: idParamsSchema,
        querystring: usageQuerySchema,
        response: {
          200: usageAnswerSchema,
          400: errorBodySchema,
          401: errorBodySchema,
          404: errorBodySchema,
          409: errorBodySchema,
        },
      },
    },
    async (request) => {
      await service.get(request.params.id);
      if (!usage.enabled)
        throw new PreviewdError(
          'usage_sampling_off',
          'usage sampling is off on this node (usage.enabled: false)',
        );
      const since = request.query.since === undefined ? undefined : parseSince(request.query.since);
      const { sampler } = usage;
      return {
        intervalSec: sampler.intervalSec,
        retentionSec: sampler.retentionSec,
        samples: sampler.samples(request.params.id, since).map((s) => ({
          at: new Date(s.at).toISOString(),
          cpuPercent: s.cpuPercent,
          memoryMb: s.memoryMb,
          diskMb: s.diskMb,
          netRxBytes: s.netRxBytes,
          netTxBytes: s.netTxBytes,
        })),
      };
    },
  );
};
