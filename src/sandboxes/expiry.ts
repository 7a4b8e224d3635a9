import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import type { SandboxService } from './service.js';

/**
 * Deletes sandboxes past their `expiresAt` (ttlSec at create, moved by POST …/extend): event
 * `sandbox.expired`, then the usual deletion (`sandbox.state` to `deleted` with reason `expired`,
 * `sandbox.deleted`). Runs with the idle reaper's interval.
 */
export class ExpiryReaper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<string[]>;

  constructor(
    private readonly deps: {
      store: Store;
      service: SandboxService;
      bus: EventBus;
      config: Config;
      log: Logger;
    },
  ) {}

  start(): void {
    const every = this.deps.config.lifecycle.idleReapIntervalSec * 1000;
    this.timer = setInterval(() => {
      void this.runOnce().catch((err) => this.deps.log.warn({ err }, 'expiry pass failed'));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  runOnce(): Promise<string[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<string[]> {
    const { store, service, bus, log } = this.deps;
    const expired: string[] = [];
    const now = Date.now();
    for (const row of await store.listSandboxes()) {
      if (!row.expiresAt || Date.parse(row.expiresAt) > now) continue;
      // Read again: an extend may have moved it since the list.
      const current = await store.getSandbox(row.id);
      if (!current?.expiresAt || Date.parse(current.expiresAt) > Date.now()) continue;
      try {
        await bus.publish({
          type: 'sandbox.expired',
          sandboxId: row.id,
          data: { expiresAt: current.expiresAt },
        });
        await service.delete(row.id, 'expired');
        expired.push(row.id);
      } catch (err) {
        log.warn({ err, sandboxId: row.id }, 'could not delete an expired sandbox');
      }
    }
    if (expired.length > 0) log.info({ expired }, 'expired sandboxes deleted');
    return expired;
  }
}
