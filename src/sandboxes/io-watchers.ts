import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import { AppWatch } from './app-watch.js';
import { CrashWatch } from './crash-watch.js';
import { FilesWatch } from './files-watch.js';
import { PortWatch } from './port-watch.js';
import type { ProcessRegistry } from './processes.js';

/**
 * Runs the watchers behind the push events: ports and files of running sandboxes (started and
 * stopped as sandboxes enter and leave `running`), and crashes of any sandbox's app.
 */
export class IoWatchers {
  readonly ports: PortWatch;
  readonly files: FilesWatch;
  readonly crashes: CrashWatch;
  /** Crashes of supervised apps (the container stays up). */
  readonly apps: AppWatch;
  private unsubscribe?: () => void;

  constructor(
    private readonly deps: {
      config: Config;
      provider: SandboxProvider;
      store: Store;
      bus: EventBus;
      processes: ProcessRegistry;
      log: Logger;
      onCrash?: (sandboxId: string) => void;
    },
  ) {
    const { provider, store, bus, log, config } = deps;
    this.ports = new PortWatch({ provider, store, bus, log, intervalMs: config.io.portScanIntervalMs });
    this.files = new FilesWatch({ provider, bus, log, debounceMs: config.io.filesDebounceMs });
    this.crashes = new CrashWatch({ provider, store, bus, log, onCrash: deps.onCrash });
    this.apps = new AppWatch({ provider, bus, log });
  }

  async start(): Promise<void> {
    this.unsubscribe = this.deps.bus.subscribe((event) => {
      if (event.type === 'sandbox.state') {
        const to = (event.data as { to: string }).to;
        if (to === 'running') this.enter(event.sandboxId);
        else if (to === 'paused')
          this.files.unwatch(event.sandboxId); // ports stay as they were
        else this.leave(event.sandboxId, to === 'deleted');
      } else if (event.type === 'sandbox.deleted') {
        this.leave(event.sandboxId, true);
      }
    });
    for (const record of await this.deps.store.listSandboxes({ state: 'running' })) this.enter(record.id);
    this.ports.start();
    this.crashes.start();
    this.apps.start();
  }

  private enter(sandboxId: string): void {
    this.ports.watch(sandboxId);
    void this.apps.watch(sandboxId);
    void this.files
      .watch(sandboxId)
      .catch((err) => this.deps.log.debug({ err, sandboxId }, 'files watch failed'));
  }

  private leave(sandboxId: string, deleted: boolean): void {
    this.files.unwatch(sandboxId);
    this.apps.unwatch(sandboxId);
    void this.ports.unwatch(sandboxId, { publish: !deleted }).catch(() => undefined);
    if (deleted) this.deps.processes.forget(sandboxId);
  }

  stop(): void {
    this.unsubscribe?.();
    this.ports.stop();
    this.files.stop();
    this.crashes.stop();
    this.apps.stop();
  }
}
