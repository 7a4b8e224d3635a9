import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { Store } from '../store/store.js';
import { PeriodicPass } from './periodic-pass.js';
import type { SandboxService } from './service.js';
import type { SandboxUsage } from './usage.js';

export type IdleAction = 'pause' | 'stop';

/**
 * What idleness asks of a sandbox now: `pause` after pauseAfterSec without activity (CPU freed,
 * memory kept), `stop` after idleTimeoutSec (memory freed). 0 turns a tier off; always_on,
 * keepalive and running work (exec, background process, open WebSocket) keep it awake.
 * Without `canPause` (Traefik mode: Traefik keeps routing to a paused container, where requests
 * would hang instead of waking it) the first tier stops instead.
 */
export function idleAction(
  record: SandboxRecord,
  usage: SandboxUsage,
  now = usage.clock.now(),
  canPause = true,
): IdleAction | undefined {
  if (record.state !== 'running' && record.state !== 'paused') return undefined;
  if (record.idlePolicy === 'always_on') return undefined;
  if (usage.keptAwake(record, now) || usage.hasRunningWork(record.id)) return undefined;
  const idleMs = now - usage.lastActive(record);
  if (record.idleTimeoutSec > 0 && idleMs >= record.idleTimeoutSec * 1000) return 'stop';
  const pauseTierOn =
    record.pauseAfterSec > 0 && (record.idleTimeoutSec === 0 || record.pauseAfterSec < record.idleTimeoutSec);
  if (record.state === 'running' && pauseTierOn && idleMs >= record.pauseAfterSec * 1000) {
    return canPause ? 'pause' : 'stop';
  }
  return undefined;
}

export interface IdleReport {
  paused: string[];
  stopped: string[];
}

/**
 * Puts idle sandboxes to sleep in two tiers, every lifecycle.idleReapIntervalSec
 * (PREVIEWD_IDLE_REAP_INTERVAL_SEC). Each decision is made again under the sandbox's lock, so a
 * request that arrived meanwhile wins; a sandbox with an operation under way is left for the
 * next pass. State changes go through SandboxService with reason `idle`.
 */
export class IdleReaper extends PeriodicPass<IdleReport> {
  constructor(
    private readonly deps: {
      store: Store;
      service: SandboxService;
      usage: SandboxUsage;
      config: Config;
      log: Logger;
      /** Default: the usage's clock. */
      clock?: Clock;
    },
  ) {
    super('idle reap', () => deps.config.lifecycle.idleReapIntervalSec * 1000, deps.log);
  }

  protected async pass(): Promise<IdleReport> {
    const { store, service, usage, log, config } = this.deps;
    const canPause = config.edgeMode !== 'traefik';
    const report: IdleReport = { paused: [], stopped: [] };
    const rows = await store.listSandboxes({ states: ['running', 'paused'], node: service.nodeId });
    for (const row of rows) {
      const clock = this.deps.clock ?? usage.clock;
      const action = idleAction(row, usage, clock.now(), canPause);
      if (!action || service.isBusy(row.id)) continue;
      // Decided again under the sandbox's lock: a request that arrived meanwhile wins.
      const still = (current: SandboxRecord) => idleAction(current, usage, clock.now(), canPause) === action;
      try {
        if (action === 'stop' && (await service.stopIdle(row.id, still))) report.stopped.push(row.id);
        if (action === 'pause' && (await service.pauseIdle(row.id, still))) report.paused.push(row.id);
      } catch (err) {
        log.warn({ err, sandboxId: row.id }, 'idle pause/stop failed');
      }
    }
    if (report.paused.length + report.stopped.length > 0) log.info(report, 'idle sandboxes put to sleep');
    return report;
  }
}
