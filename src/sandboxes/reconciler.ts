import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../domain/clock.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { EventBus } from '../events/bus.js';
import type { InstanceStatus, ManagedInstance, SandboxProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import { PeriodicPass } from './periodic-pass.js';
import type { SandboxService } from './service.js';

/** Whether a row's state and its container's status need nothing done. */
function agrees(state: SandboxRecord['state'], status: InstanceStatus): boolean {
  switch (state) {
    case 'running':
    case 'paused':
      return status === state;
    case 'stopped':
      return status !== 'running' && status !== 'paused';
    case 'deleted':
      return status === 'missing';
    case 'error':
      return true;
    default:
      return false; // creating, starting, stopping: always settled from a fresh look
  }
}

export interface ReconcileReport {
  adopted: string[];
  resumed: string[];
  lost: string[];
  stopped: string[];
  orphansRemoved: string[];
  /** Sandboxes whose storage the first pass checked and mounted where needed. */
  remounted: string[];
}

/**
 * Makes the store agree with the engine after anything: a crash of previewd mid-operation, a
 * container killed or removed from outside, a row deleted while the engine was away. Runs at
 * start-up and then every `reconcileIntervalSec`. Every state change goes through SandboxService.
 */
export class Reconciler extends PeriodicPass<ReconcileReport> {
  /** The first pass reports every live sandbox it found as adopted. */
  private firstRun = true;

  constructor(
    private readonly deps: {
      store: Store;
      provider: SandboxProvider;
      service: SandboxService;
      bus: EventBus;
      config: Config;
      log: Logger;
      /** Orphan grace is measured on it (default: the system's). */
      clock?: Clock;
    },
  ) {
    super('reconcile', () => deps.config.reconcileIntervalSec * 1000, deps.log);
  }

  private now(): number {
    return (this.deps.clock ?? systemClock).now();
  }

  protected async pass(): Promise<ReconcileReport> {
    const { store, provider, service, config, log } = this.deps;
    const report: ReconcileReport = {
      adopted: [],
      resumed: [],
      lost: [],
      stopped: [],
      orphansRemoved: [],
      remounted: [],
    };
    const instances = new Map<string, ManagedInstance>();
    for (const instance of await provider.list()) instances.set(instance.sandboxId, instance);
    // This node's rows only: another node's sandboxes run on its engine and are its to settle.
    const rows = await store.listSandboxes({ includeDeleted: true, node: service.nodeId });
    const known = new Set(rows.map((r) => r.id));
    if (this.firstRun) await this.remountStorage(rows, report);

    for (const row of rows) {
      if (service.isBusy(row.id)) continue; // an operation is under way; it will settle the state
      try {
        let status: InstanceStatus = instances.get(row.id)?.status ?? 'missing';
        // The list was taken before this row was read: an operation that ended in between (a
        // create, a start) looks like drift in it. The service asks the engine again under the
        // sandbox's lock before it acts on any of it.
        if (!agrees(row.state, status)) status = (await provider.inspect(row.id)).status;
        await this.settle(row, status, report);
      } catch (err) {
        log.warn({ err, sandboxId: row.id }, 'reconcile of sandbox failed');
      }
    }

    const graceMs = config.orphanGraceSec * 1000;
    for (const instance of instances.values()) {
      if (known.has(instance.sandboxId)) continue;
      if (this.now() - instance.createdAt.getTime() < graceMs) continue;
      // A create that died before its row: the container, its workspace and its uid go.
      const removed = await service
        .removeOrphan(instance.sandboxId)
        .catch((err) => log.warn({ err }, 'orphan removal failed'));
      if (removed !== false) report.orphansRemoved.push(instance.sandboxId);
    }
    const live = new Set(rows.filter((r) => r.state !== 'deleted').map((r) => r.id));
    await this.removeOrphanWorkspaces(live, graceMs, report);
    if (Object.values(report).some((list) => list.length > 0)) log.info(report, 'reconciled');
    this.firstRun = false;
    return report;
  }

  /**
   * First pass after a start: mounts the storage (disk, overlay stack) of every live sandbox that
   * lost it — a reboot drops all mounts; a kill -9 leaves them, and then this finds them mounted —
   * before any of them is started again (the settle below, a wake, an API start).
   */
  private async remountStorage(rows: SandboxRecord[], report: ReconcileReport): Promise<void> {
    const { provider, service, log } = this.deps;
    // Layer builds a crash interrupted (an hour old: a build in another process may still run).
    await service.templates.layers.sweep().catch((err) => log.warn({ err }, 'sweeping layer builds failed'));
    if (!provider.ensureStorage) return;
    for (const row of rows) {
      if (row.state === 'deleted') continue;
      await provider
        .ensureStorage(row.id)
        .then(() => report.remounted.push(row.id))
        .catch((err) => log.warn({ err, sandboxId: row.id }, 'remounting the sandbox storage failed'));
    }
  }

  /** Settles one row by the table in docs/architecture.md "Crash safety"; each step through the service. */
  private async settle(row: SandboxRecord, status: InstanceStatus, report: ReconcileReport): Promise<void> {
    const { service } = this.deps;
    const id = row.id;
    switch (row.state) {
      case 'deleted':
        if (status !== 'missing' && (await service.removeDeleted(id))) report.orphansRemoved.push(id);
        return;
      case 'creating':
      case 'starting':
        // Nobody in this process is working on it (no lock): a previous process died mid-create.
        if (status === 'running' && row.state === 'starting' && (await service.adoptRunning(id))) {
          report.adopted.push(id);
        } else if (await service.finishCreate(id)) {
          report.resumed.push(id);
        }
        return;
      case 'stopping':
        if (await service.finishStop(id)) report.stopped.push(id);
        return;
      case 'running':
      case 'paused': {
        if (status === 'missing') {
          if (await service.markLost(id, 'container missing')) report.lost.push(id);
        } else if (status === 'exited' || status === 'dead' || status === 'created') {
          if (await service.settleExited(id)) report.stopped.push(id);
        } else if (status === 'paused' && row.state === 'running') {
          if (await service.settlePaused(id)) report.adopted.push(id);
        } else if (status === 'running' && row.state === 'paused') {
          if (await service.settleResumed(id)) report.adopted.push(id);
        } else if (this.firstRun) {
          report.adopted.push(id);
        }
        return;
      }
      case 'stopped':
        if ((status === 'running' || status === 'paused') && (await service.stopStray(id))) {
          report.stopped.push(id);
        }
        return;
      case 'error':
        return;
    }
  }

  /**
   * Workspaces with no live row, older than the grace period: left by a create that died before its
   * row was written, or by a delete that died after its container was removed.
   */
  private async removeOrphanWorkspaces(
    known: Set<string>,
    graceMs: number,
    report: ReconcileReport,
  ): Promise<void> {
    const root = join(this.deps.config.dataDir, 'sandboxes');
    const names = await readdir(root).catch(() => [] as string[]);
    for (const name of names) {
      if (known.has(name)) continue;
      const st = await stat(join(root, name)).catch(() => undefined);
      if (!st || this.now() - st.mtimeMs < graceMs) continue;
      const removed = await this.deps.service.removeOrphan(name).catch(() => undefined);
      if (removed !== false) report.orphansRemoved.push(name);
    }
  }
}
