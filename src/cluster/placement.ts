import type { NodeRecord } from '../domain/node.js';

/** Where a create may go: `node` names one node; `labels` must all match the node's labels. */
export interface PlacementRequest {
  node?: string;
  labels?: Record<string, string>;
  /** The memory the sandbox reserves (resources.memoryMb). */
  memoryMb: number;
}

/** Swarm node labels previewd reads (src/cluster/swarm-nodes.ts): a node drained in the Swarm takes no creates. */
export const SWARM_AVAILABILITY_LABEL = 'swarm.availability';
export const SWARM_STATE_LABEL = 'swarm.state';

export function isLive(node: NodeRecord, nowMs: number): boolean {
  return node.status === 'up' && Date.parse(node.leaseUntil) > nowMs;
}

export function matches(node: NodeRecord, request: PlacementRequest): boolean {
  if (request.node !== undefined && node.id !== request.node) return false;
  for (const [key, value] of Object.entries(request.labels ?? {})) {
    if (node.labels[key] !== value) return false;
  }
  return true;
}

function schedulable(node: NodeRecord): boolean {
  const availability = node.labels[SWARM_AVAILABILITY_LABEL];
  const state = node.labels[SWARM_STATE_LABEL];
  return (
    (availability === undefined || availability === 'active') && (state === undefined || state === 'ready')
  );
}

export function hasRoom(node: NodeRecord, memoryMb: number): boolean {
  const { capacity, usage } = node;
  if (capacity.maxRunning > 0 && usage.running >= capacity.maxRunning) return false;
  if (capacity.memoryMb > 0 && usage.memoryMb + memoryMb > capacity.memoryMb) return false;
  return true;
}

export interface Placement {
  /** Nodes to try, best first; the create spills to the next when one answers capacity_exhausted. */
  candidates: NodeRecord[];
  /** Nodes that match but are full now (tried last: their figures may be a heartbeat old). */
  full: NodeRecord[];
  /** No live node matches `node` / `labels` at all. */
  unsatisfiable: boolean;
}

/**
 * Orders the live nodes that match a create's placement: the ones with room first, most free
 * memory first (then fewest running, then id, so equal nodes take turns by their figures rather
 * than by chance); the full ones after them, since a heartbeat-old figure may be stale.
 */
export function place(nodes: readonly NodeRecord[], request: PlacementRequest, nowMs: number): Placement {
  const eligible = nodes.filter((n) => isLive(n, nowMs) && schedulable(n) && matches(n, request));
  const free = (n: NodeRecord) =>
    n.capacity.memoryMb > 0 ? n.capacity.memoryMb - n.usage.memoryMb : Number.MAX_SAFE_INTEGER;
  const order = (a: NodeRecord, b: NodeRecord) =>
    free(b) - free(a) || a.usage.running - b.usage.running || a.id.localeCompare(b.id);
  const candidates = eligible.filter((n) => hasRoom(n, request.memoryMb)).sort(order);
  const full = eligible.filter((n) => !hasRoom(n, request.memoryMb)).sort(order);
  return { candidates, full, unsatisfiable: eligible.length === 0 };
}
