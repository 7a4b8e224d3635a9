import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../domain/clock.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import { PeriodicPass } from './periodic-pass.js';
import type { SandboxService } from './service.js';

/**
 * Deletes sandboxes past their `expiresAt` (ttlSec at create, moved by POST …/extend): event
 * `sandbox.expired`, then the usual deletion (`sandbox.state` to `deleted` with reason `expired`,
 * `sandbox.deleted`). Runs with the idle reaper's interval.
 */
export class ExpiryReaper extends PeriodicPass<string[]> {
  constructor(
    private readonly deps: {
      store: Store;
      service: SandboxService;
      bus: EventBus;
      config: Config;
      log: Logger;
      /** The same clock as the service's (it checks expiresAt again under the lock). */
      clock?: Clock;
    },
  ) {
    super('expiry pass', () => deps.config.lifecycle.idleReapIntervalSec * 1000, deps.log);
  }

  protected async pass(): Promise<string[]> {
    const { store, service, log } = this.deps;
    const expired: string[] = [];
    const now = (this.deps.clock ?? systemClock).now();
    for (const row of await store.listSandboxes({ node: service.nodeId })) {
      if (!row.expiresAt || Date.parse(row.expiresAt) > now) continue;
      try {
        // Checked again under the sandbox's lock: an extend may have moved it since the list.
        if (await service.expire(row.id)) expired.push(row.id);
      } catch (err) {
        log.warn({ err, sandboxId: row.id }, 'could not delete an expired sandbox');
      }
    }
    if (expired.length > 0) log.info({ expired }, 'expired sandboxes deleted');
    return expired;
  }
}
