import type { Logger } from 'pino';
import type { NodeRecord } from '../domain/node.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';
import type { Store } from '../store/store.js';
import type { NodeDirectory } from './node-directory.js';

/** Row states that hold a container on their node: lost with it. */
const ON_NODE: readonly SandboxState[] = ['creating', 'starting', 'running', 'paused', 'stopping'];

export interface NodeWatchDeps {
  self: string;
  store: Store;
  nodes: NodeDirectory;
  /** Marks one sandbox of a dead node lost (SandboxService): true when this call did it. */
  markLost(record: SandboxRecord, reason: string): Promise<boolean>;
  log: Logger;
  nowMs?: () => number;
  /** A node fenced off: how long after its lease ended, for metrics and the closing figures. */
  onFenced?: (node: NodeRecord, lateMs: number) => void;
}

export interface NodeWatchReport {
  fenced: string[];
  lost: string[];
}

/**
 * Watches the other nodes' leases. A node whose lease has ended is fenced off (status `down`, epoch
 * bumped: a compare-and-set in the store, so of all the watching nodes exactly one does it), and
 * the sandboxes it held are marked lost — each by a compare-and-set on its state, so once, however
 * many nodes sweep. A fenced node that comes back registers again under a new epoch; nothing it
 * tried to write meanwhile was taken.
 */
export class NodeWatch {
  private timer?: NodeJS.Timeout;
  private running?: Promise<NodeWatchReport>;

  constructor(private readonly deps: NodeWatchDeps) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      void this.runOnce().catch((err) => this.deps.log.warn({ err }, 'node watch failed'));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  runOnce(): Promise<NodeWatchReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<NodeWatchReport> {
    const { store, self, log } = this.deps;
    const nowMs = (this.deps.nowMs ?? Date.now)();
    const report: NodeWatchReport = { fenced: [], lost: [] };
    const nodes = await store.listNodes();
    for (const node of nodes) {
      if (node.id === self || node.status !== 'up') continue;
      const endedMs = Date.parse(node.leaseUntil);
      if (endedMs >= nowMs) continue;
      if (await store.fenceNode(node.id, node.epoch, new Date(nowMs).toISOString())) {
        report.fenced.push(node.id);
        this.deps.onFenced?.(node, nowMs - endedMs);
        log.warn(
          { node: node.id, epoch: node.epoch, lateMs: nowMs - endedMs },
          'node lease ended: fenced off',
        );
      }
    }
    if (report.fenced.length > 0) this.deps.nodes.invalidate();
    // Every down node's sandboxes, not only the ones fenced now: a sweep cut short finishes here.
    const down = (report.fenced.length > 0 ? await store.listNodes() : nodes).filter(
      (n) => n.id !== self && n.status === 'down',
    );
    for (const node of down) {
      const rows = await store.listSandboxes({ node: node.id, states: ON_NODE });
      for (const row of rows) {
        if (await this.deps.markLost(row, `node ${node.id} is down`)) report.lost.push(row.id);
      }
    }
    if (report.lost.length > 0) log.warn({ lost: report.lost.length }, 'sandboxes of down nodes marked lost');
    return report;
  }
}
