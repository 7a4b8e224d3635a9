import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { PreviewHostParser } from '../edge/preview-host.js';
import type { SandboxDirectory } from '../edge/sandbox-directory.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import { AccessLogTailer } from './access-log-tailer.js';
import { accessLogActivity } from './activity.js';
import { DynamicConfigSource } from './dynamic-config-source.js';

export interface TraefikModeDeps {
  config: Config;
  store: Store;
  /** Where running sandboxes answer (the edge's sandbox directory). */
  directory: SandboxDirectory;
  bus: EventBus;
  log: Logger;
  /** Records preview activity of a sandbox (the idle reaper reads it); called at most once per sandbox per batch. */
  touch: (sandboxId: string) => void | Promise<void>;
}

/** Where the access-log position is kept across restarts. */
export function accessLogStateFile(dataDir: string): string {
  return join(dataDir, 'traefik-access-log.position.json');
}

/**
 * What previewd runs in `edgeMode: traefik` besides its edge: the dynamic configuration served to
 * Traefik's HTTP provider and, when `traefik.accessLog` is set, the access-log tailer that turns
 * Traefik's requests into activity.
 */
export class TraefikMode {
  readonly dynamicConfig: DynamicConfigSource;
  private readonly tailer?: AccessLogTailer;

  constructor(deps: TraefikModeDeps) {
    this.dynamicConfig = new DynamicConfigSource(deps);
    const path = deps.config.traefik.accessLog;
    if (path) {
      const pending = new Set<string>();
      const log = deps.log.child({ component: 'traefik-access-log' });
      this.tailer = new AccessLogTailer({
        path,
        stateFile: accessLogStateFile(deps.config.dataDir),
        log,
        onEntry: accessLogActivity(new PreviewHostParser(deps.config), (id) => pending.add(id)),
        onBatch: async () => {
          const ids = [...pending];
          pending.clear();
          for (const id of ids) {
            try {
              await deps.touch(id);
            } catch (err) {
              log.debug({ err, sandboxId: id }, 'could not record activity');
            }
          }
        },
      });
    }
  }

  async start(): Promise<void> {
    await this.tailer?.start();
  }

  async stop(): Promise<void> {
    await this.tailer?.stop();
    this.dynamicConfig.close();
  }
}
