import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isLive } from '../../cluster/placement.js';
import type { NodeRecord } from '../../domain/node.js';
import { errorBodySchema } from '../../domain/schemas.js';
import type { Store } from '../../store/store.js';

export const capacitySchema = z.object({
  cluster: z.boolean(),
  nodes: z.number().int().describe('Nodes counted: 1 on a single host, the live nodes in a cluster'),
  memoryMb: z.object({
    used: z
      .number()
      .describe(
        'Memory the live sandboxes use now (measured; a start not yet measured counts its start figure)',
      ),
    budget: z
      .number()
      .describe('admission.memoryBudgetMb (default: 80 % of the host memory), summed over the nodes'),
  }),
  running: z.object({
    count: z.number().int().describe('Live sandboxes (creating, starting, running, paused)'),
    max: z.number().int().describe('admission.maxRunning, summed over the nodes; 0: no limit'),
  }),
});

/** This node's budget and usage, as a cluster node reports them in its lease (src/cluster/cluster.ts). */
export interface NodeBudget {
  enabled: boolean;
  capacity(): NodeRecord['capacity'];
  usage(): Promise<NodeRecord['usage']>;
}

/**
 * The memory budget the dashboard's host overview shows (admin): this host's on a single host,
 * where no node is registered; the sum of the live nodes' leases in a cluster.
 */
export const capacityRoutes: FastifyPluginAsyncZod<{ store: Store; node: NodeBudget }> = async (
  app,
  { store, node },
) => {
  app.get(
    '/v1/capacity',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: 'Memory budget used and live sandboxes, over the host or the cluster (admin)',
        response: { 200: capacitySchema, 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async () => {
      const budgets = node.enabled
        ? (await store.listNodes()).filter((n) => isLive(n, Date.now()))
        : [{ capacity: node.capacity(), usage: await node.usage() }];
      const sum = (pick: (n: (typeof budgets)[number]) => number) => budgets.reduce((t, n) => t + pick(n), 0);
      return {
        cluster: node.enabled,
        nodes: budgets.length,
        memoryMb: {
          used: Math.round(sum((n) => n.usage.memoryMb)),
          budget: Math.round(sum((n) => n.capacity.memoryMb)),
        },
        running: { count: sum((n) => n.usage.running), max: sum((n) => n.capacity.maxRunning) },
      };
    },
  );
};
