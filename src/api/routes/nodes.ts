import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { isLive } from '../../cluster/placement.js';
import { nodeListSchema } from '../../domain/node-schemas.js';
import { errorBodySchema } from '../../domain/schemas.js';
import type { Store } from '../../store/store.js';

/** The cluster's nodes, their leases, labels and usage (admin): what placement sees. */
export const nodeRoutes: FastifyPluginAsyncZod<{ store: Store; self: string; cluster: boolean }> = async (
  app,
  { store, self, cluster },
) => {
  app.get(
    '/v1/nodes',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: 'List the nodes of the cluster (admin)',
        description:
          'Each node with its lease, labels (from the Swarm and cluster.labels), budget and usage.',
        response: { 200: nodeListSchema, 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async () => {
      const now = Date.now();
      const nodes = await store.listNodes();
      return {
        self,
        cluster,
        nodes: nodes.map((n) => ({ ...n, live: isLive(n, now), self: n.id === self })),
      };
    },
  );
};
