import type { NodeRecord } from '../domain/node.js';
import type { Store } from '../store/store.js';
import { isLive } from './placement.js';

/**
 * The cluster's nodes as the store has them, read at most every `maxAgeMs` (forwarding asks on
 * every request about another node's sandbox; a heartbeat-old view is good enough to find a node,
 * and a node that died is answered by its connection failing).
 */
export class NodeDirectory {
  private cached?: { at: number; nodes: NodeRecord[] };
  private loading?: Promise<NodeRecord[]>;

  constructor(
    private readonly store: Store,
    private readonly maxAgeMs = 1000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async list(): Promise<NodeRecord[]> {
    const cached = this.cached;
    if (cached && this.nowMs() - cached.at < this.maxAgeMs) return cached.nodes;
    this.loading ??= this.store
      .listNodes()
      .then((nodes) => {
        this.cached = { at: this.nowMs(), nodes };
        return nodes;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  /** Drops the cached view (after a node was fenced off, say). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** The node, when it is up and its lease is current. */
  async live(id: string): Promise<NodeRecord | undefined> {
    const node = (await this.list()).find((n) => n.id === id);
    return node && isLive(node, this.nowMs()) ? node : undefined;
  }
}
