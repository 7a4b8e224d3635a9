import type { Logger } from 'pino';
import { PreviewdError } from '../domain/errors.js';
import type { Fence, NodeRecord } from '../domain/node.js';
import type { Store } from '../store/store.js';

export interface NodeLeaseDeps {
  store: Store;
  /** What the node registers: how the others reach it, its labels, its budget. */
  describe(): Promise<Pick<NodeRecord, 'id' | 'apiUrl' | 'edgeUrl' | 'labels' | 'capacity' | 'usage'>>;
  /** What it runs now (reported with every heartbeat). */
  usage(): Promise<NodeRecord['usage']>;
  leaseMs: number;
  heartbeatMs: number;
  log: Logger;
  /** Monotonic milliseconds (never the wall clock: a frozen process must see its lease lapse). */
  monotonic?: () => number;
  /** Wall-clock ISO time written into the store (leaseUntil, heartbeatAt). */
  now?: () => string;
  /** Called after the node had to register again (its lease was lost): reconcile its own sandboxes. */
  onReacquired?: (epoch: number) => void;
}

/**
 * This node's lease in the store. `acquire` registers the node with a new epoch; every heartbeat
 * renews it. A renewal refused by the store (another node fenced this one off while it was frozen
 * or cut off) means the epoch is stale: the node registers again, under a new epoch, and
 * reconciles. Between a lapse and the next good renewal `fence()` throws `node_fenced`, so no
 * write leaves this node on a lease it cannot prove — whatever the store would say.
 */
export class NodeLease {
  private current?: { epoch: number; renewedAt: number };
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private readonly monotonic: () => number;
  private readonly now: () => string;
  /** Counts for metrics and tests. */
  readonly stats = { renewals: 0, refused: 0, reacquired: 0, failures: 0 };

  constructor(private readonly deps: NodeLeaseDeps) {
    this.monotonic = deps.monotonic ?? (() => performance.now());
    this.now = deps.now ?? (() => new Date().toISOString());
  }

  get epoch(): number | undefined {
    return this.current?.epoch;
  }

  async acquire(): Promise<NodeRecord> {
    const started = this.monotonic();
    const node = await this.deps.store.acquireNode({
      ...(await this.deps.describe()),
      leaseMs: this.deps.leaseMs,
      now: this.now(),
    });
    this.current = { epoch: node.epoch, renewedAt: started };
    this.nodeId = node.id;
    this.deps.log.info({ node: node.id, epoch: node.epoch }, 'node lease acquired');
    return node;
  }

  /**
   * The fence every write of this node carries. Throws `node_fenced` once the last good renewal is
   * older than the lease (the node may have been frozen or cut off; others may own its sandboxes).
   */
  fence(): Fence {
    const current = this.current;
    if (!current || this.monotonic() - current.renewedAt >= this.deps.leaseMs) {
      throw new PreviewdError(
        'node_fenced',
        'this node holds no live lease; it registers again on its next heartbeat',
      );
    }
    return { node: this.nodeIdOrThrow(), epoch: current.epoch };
  }

  private nodeId?: string;

  private nodeIdOrThrow(): string {
    if (!this.nodeId) throw new PreviewdError('node_fenced', 'this node has not registered yet');
    return this.nodeId;
  }

  async start(): Promise<void> {
    await this.acquire();
    this.timer = setInterval(() => void this.heartbeat(), this.deps.heartbeatMs);
    this.timer.unref();
  }

  /** One renewal (the timer's work; tests call it directly). Concurrent calls share one. */
  heartbeat(): Promise<void> {
    this.beating ??= this.renew().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async renew(): Promise<void> {
    const current = this.current;
    if (!current || !this.nodeId) return;
    const started = this.monotonic();
    try {
      const usage = await this.deps.usage();
      const renewed = await this.deps.store.renewNode(
        { node: this.nodeId, epoch: current.epoch },
        { usage, leaseMs: this.deps.leaseMs, now: this.now() },
      );
      if (renewed) {
        // Counted from before the call: the lease the store granted started no later than that.
        if (this.current === current) this.current = { epoch: current.epoch, renewedAt: started };
        this.stats.renewals += 1;
        return;
      }
      this.stats.refused += 1;
      this.current = undefined;
      this.deps.log.warn(
        { node: this.nodeId, epoch: current.epoch },
        'node lease lost (fenced off); registering again',
      );
      const node = await this.acquire();
      this.stats.reacquired += 1;
      this.deps.onReacquired?.(node.epoch);
    } catch (err) {
      this.stats.failures += 1;
      this.deps.log.warn({ err, node: this.nodeId }, 'node heartbeat failed');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating?.catch(() => undefined);
  }
}
