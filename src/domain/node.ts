/**
 * A previewd node: one process in front of one Docker engine. Several nodes share one store
 * (PostgreSQL); each holds a lease and manages only the sandboxes whose row names it.
 */
export interface NodeRecord {
  /** Unique in the cluster: `[a-z0-9][a-z0-9-]{0,62}` (a single-host previewd is `local`). */
  id: string;
  /**
   * Bumped on every acquire and whenever another node fences this one off; a write carrying an
   * older epoch is refused (`node_fenced`).
   */
  epoch: number;
  /** How the other nodes reach this node's API (node-to-node forwarding), e.g. http://198.51.100.11:7070. */
  apiUrl: string;
  /** How the other nodes reach this node's built-in edge, e.g. http://198.51.100.11:8081. */
  edgeUrl: string;
  /** Placement labels (from the Swarm's node labels, or configuration). */
  labels: Record<string, string>;
  /** What the node may run: its admission budget. */
  capacity: { memoryMb: number; maxRunning: number };
  /** What it runs now (reported with each heartbeat). */
  usage: { memoryMb: number; running: number };
  /** `down` once another node found its lease expired and fenced it off. */
  status: 'up' | 'down';
  startedAt: string;
  heartbeatAt: string;
  /** The lease ends here unless renewed. */
  leaseUntil: string;
}

/** Carried by every write a node makes about its sandboxes: refused once the epoch is stale. */
export interface Fence {
  node: string;
  epoch: number;
}

/** The node id of a previewd that is not part of a cluster. */
export const LOCAL_NODE = 'local';

export const NODE_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
