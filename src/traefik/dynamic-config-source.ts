import type { Logger } from 'pino';
import type { SandboxDirectory } from '../edge/sandbox-directory.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import {
  buildDynamicConfig,
  type DynamicConfigSettings,
  etagOf,
  type RoutableSandbox,
} from './dynamic-config.js';

/** Events that never change what Traefik routes (frequent ones among them): no rebuild. */
const ROUTING_NEUTRAL = new Set<string>([
  'files.changed',
  'process.exit',
  'port.open',
  'port.closed',
  'app.crashed',
  'sandbox.preview_tokens_revoked',
]);

export interface DynamicConfigSnapshot {
  body: string;
  etag: string;
}

/**
 * Serves the dynamic configuration for Traefik's HTTP provider. Built from the store (running
 * sandboxes) and the sandbox directory (their addresses), cached until an event may change routing, so
 * Traefik polling every few seconds costs a string compare.
 */
export class DynamicConfigSource {
  private cached?: DynamicConfigSnapshot;
  private building?: Promise<DynamicConfigSnapshot & { complete: boolean }>;
  private generation = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly deps: {
      config: DynamicConfigSettings;
      store: Store;
      directory: Pick<SandboxDirectory, 'address'>;
      bus: EventBus;
      log: Logger;
    },
  ) {
    this.unsubscribe = deps.bus.subscribe((event) => {
      if (!ROUTING_NEUTRAL.has(event.type)) this.invalidate();
    });
  }

  invalidate(): void {
    this.generation += 1;
    this.cached = undefined;
  }

  async snapshot(): Promise<DynamicConfigSnapshot> {
    if (this.cached) return this.cached;
    if (this.building) return this.building;
    const generation = this.generation;
    this.building = this.build()
      .then((snapshot) => {
        // A port without an address yet is retried on the next poll rather than cached away.
        if (generation === this.generation && snapshot.complete) this.cached = snapshot;
        return snapshot;
      })
      .finally(() => {
        this.building = undefined;
      });
    return this.building;
  }

  private async build(): Promise<DynamicConfigSnapshot & { complete: boolean }> {
    let complete = true;
    const records = await this.deps.store.listSandboxes({ state: 'running' });
    const sandboxes: RoutableSandbox[] = [];
    for (const record of records.sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const ports: Array<{ port: number; url: string }> = [];
      for (const port of [...new Set(record.ports)].sort((a, b) => a - b)) {
        try {
          const address = await this.deps.directory.address(record.id, port);
          const host = address.host.includes(':') ? `[${address.host}]` : address.host;
          ports.push({ port, url: `http://${host}:${address.port}` });
        } catch (err) {
          // Not reachable right now: the wake catch-all keeps serving its host.
          complete = false;
          this.deps.log.debug({ err, sandboxId: record.id, port }, 'no address for a running sandbox');
        }
      }
      if (ports.length > 0) sandboxes.push({ id: record.id, visibility: record.visibility, ports });
    }
    const body = JSON.stringify(buildDynamicConfig(this.deps.config, sandboxes));
    return { body, etag: etagOf(body), complete };
  }

  close(): void {
    this.unsubscribe();
  }
}
