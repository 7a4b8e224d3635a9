import { z } from 'zod';

/** A node as GET /v1/nodes shows it (src/domain/node.ts holds the record). */
export const nodeSchema = z.object({
  id: z.string(),
  epoch: z.number().int(),
  status: z.enum(['up', 'down']).describe('`down`: its lease ended and another node fenced it off'),
  live: z.boolean().describe('Up and its lease is current: it takes creates and answers for its sandboxes'),
  self: z.boolean().describe('The node that answered this call'),
  apiUrl: z.string(),
  edgeUrl: z.string(),
  labels: z.record(z.string(), z.string()),
  capacity: z.object({ memoryMb: z.number(), maxRunning: z.number() }),
  usage: z.object({ memoryMb: z.number(), running: z.number() }),
  startedAt: z.string(),
  heartbeatAt: z.string(),
  leaseUntil: z.string(),
});

export const nodeListSchema = z.object({
  /** `local` for a single host (no cluster). */
  self: z.string(),
  cluster: z.boolean(),
  nodes: z.array(nodeSchema),
});
