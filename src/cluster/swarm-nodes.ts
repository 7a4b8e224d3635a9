import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { SWARM_AVAILABILITY_LABEL, SWARM_STATE_LABEL } from './placement.js';

/** The label a node registers with: its Swarm node id, by which a manager finds it in `docker node ls`. */
export const SWARM_NODE_ID_LABEL = 'swarm.node-id';

export interface SwarmMembership {
  nodeId: string;
  /** Whether this engine is a manager (only managers can read the node list). */
  manager: boolean;
}

/** This engine's place in a Swarm, or undefined when it is in none. */
export async function swarmMembership(docker: Docker): Promise<SwarmMembership | undefined> {
  const info = (await docker.info()) as {
    Swarm?: { LocalNodeState?: string; NodeID?: string; ControlAvailable?: boolean };
  };
  const swarm = info.Swarm;
  if (swarm?.LocalNodeState !== 'active' || !swarm.NodeID) return undefined;
  return { nodeId: swarm.NodeID, manager: swarm.ControlAvailable === true };
}

interface SwarmNode {
  ID: string;
  Spec?: { Labels?: Record<string, string>; Availability?: string };
  Status?: { State?: string };
}

/**
 * Node labels and liveness from the Swarm, on a node whose engine is a manager: every pass it reads
 * `docker node ls` and writes each previewd node's Swarm labels, state (`swarm.state`: ready, down…)
 * and availability (`swarm.availability`: active, pause, drain) into the store, where placement reads
 * them. Labels a node registered itself (cluster.labels) stay; a label removed in the Swarm goes at
 * the next pass. The lease stays the authority on life and death (fencing); the Swarm's view only
 * keeps creates off a node it reports down or drained.
 */
export class SwarmNodeSync {
  /** Keys this sync wrote last time per previewd node (so a label removed in the Swarm goes). */
  private readonly synced = new Map<string, Set<string>>();

  constructor(private readonly deps: { docker: Docker; store: Store; log: Logger }) {}

  async runOnce(): Promise<number> {
    const { docker, store } = this.deps;
    const swarmNodes = (await docker.listNodes()) as SwarmNode[];
    const byId = new Map(swarmNodes.map((n) => [n.ID, n]));
    let written = 0;
    for (const node of await store.listNodes()) {
      const swarmId = node.labels[SWARM_NODE_ID_LABEL];
      const swarmNode = swarmId ? byId.get(swarmId) : undefined;
      if (!swarmNode) continue;
      const fromSwarm: Record<string, string> = {
        ...(swarmNode.Spec?.Labels ?? {}),
        [SWARM_STATE_LABEL]: swarmNode.Status?.State ?? 'unknown',
        [SWARM_AVAILABILITY_LABEL]: swarmNode.Spec?.Availability ?? 'active',
        [SWARM_NODE_ID_LABEL]: swarmNode.ID,
      };
      const previous = this.synced.get(node.id) ?? new Set<string>();
      const kept = Object.fromEntries(Object.entries(node.labels).filter(([key]) => !previous.has(key)));
      const next = { ...kept, ...fromSwarm };
      this.synced.set(node.id, new Set(Object.keys(fromSwarm)));
      if (sameLabels(next, node.labels)) continue;
      await store.setNodeLabels(node.id, next);
      written += 1;
    }
    return written;
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
