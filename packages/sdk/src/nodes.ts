import type { NodeList } from './generated/api-types.js';
import type { Http } from './http.js';

/** One node of the cluster, as `nodes.list()` shows it. */
export type ClusterNode = NodeList['nodes'][number];

/**
 * The cluster's nodes (an admin key only): each with its lease, labels (from the Swarm and
 * cluster.labels), budget and usage — what placement sees. A single host lists none, or `local`.
 */
export class Nodes {
  constructor(private readonly http: Http) {}

  /** `self` is the node that answered; `cluster` whether it runs in one. */
  list(): Promise<NodeList> {
    return this.http.json('GET', '/v1/nodes');
  }
}
