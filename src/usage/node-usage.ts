import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../domain/clock.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import { DiskUsage, type StorageView } from './disk-usage.js';
import { HostUsageSource } from './host-usage-source.js';
import { UsageSampler } from './sampler.js';
import { registerUsageMetrics } from './usage-metrics.js';
import type { UsageSource, UsageTarget } from './usage-source.js';

export interface NodeUsageDeps {
  config: Pick<Config, 'usage'>;
  store: Pick<Store, 'listSandboxes'>;
  bus: Pick<EventBus, 'subscribe'>;
  docker: Pick<Docker, 'getContainer'>;
  storage: StorageView;
  /** The API's Prometheus registry (src/api/metrics.ts). */
  registry: Registry;
  /** This node's id: only its own sandboxes are sampled. */
  nodeId: () => string;
  log: Logger;
  clock?: Clock;
  /** Instead of the host's files and the engine (tests). */
  source?: UsageSource;
}

/**
 * This node's usage sampling (docs/usage.md): the sampler over its own running and paused
 * sandboxes, their samples dropped when a sandbox is deleted, and the bounded Prometheus series.
 */
export class NodeUsage {
  readonly sampler: UsageSampler;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: NodeUsageDeps) {
    const clock = deps.clock ?? systemClock;
    const { usage } = deps.config;
    const source =
      deps.source ?? new HostUsageSource({ docker: deps.docker, disk: new DiskUsage(deps.storage, clock) });
    this.sampler = new UsageSampler({
      source,
      targets: () => this.targets(),
      clock,
      intervalSec: usage.intervalSec,
      retentionSec: usage.retentionSec,
      log: deps.log,
    });
    if (usage.prometheusMaxSandboxes > 0)
      registerUsageMetrics(deps.registry, this.sampler, usage.prometheusMaxSandboxes);
  }

  get enabled(): boolean {
    return this.deps.config.usage.enabled;
  }

  start(): void {
    if (!this.enabled) return;
    this.unsubscribe ??= this.deps.bus.subscribe((event) => {
      if (event.type === 'sandbox.deleted') this.sampler.forget(event.sandboxId);
    });
    this.sampler.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.sampler.stop();
  }

  private async targets(): Promise<UsageTarget[]> {
    const rows = await this.deps.store.listSandboxes({
      node: this.deps.nodeId(),
      states: ['running', 'paused'],
    });
    return rows.flatMap((row) =>
      row.containerId ? [{ sandboxId: row.id, containerId: row.containerId }] : [],
    );
  }
}
