import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { SandboxRecord } from '../../src/domain/sandbox.js';
import { EventBus } from '../../src/events/bus.js';
import { MemoryProvider } from '../../src/providers/memory/memory-provider.js';
import { Admission } from '../../src/sandboxes/admission.js';
import { ExpiryReaper } from '../../src/sandboxes/expiry.js';
import { IdleReaper } from '../../src/sandboxes/idle-reaper.js';
import { Reconciler } from '../../src/sandboxes/reconciler.js';
import { SandboxService, type ServiceNode } from '../../src/sandboxes/service.js';
import { SandboxUsage } from '../../src/sandboxes/usage.js';
import { SqliteStore } from '../../src/store/sqlite.js';

/**
 * The lifecycle without an engine or a timer: a ManualClock, the in-memory provider, a real
 * SQLite store in a temp dir, and the real service, reapers, admission and reconciler on them.
 */
export interface LifecycleRig {
  clock: ManualClock;
  config: Config;
  store: SqliteStore;
  bus: EventBus;
  provider: MemoryProvider;
  service: SandboxService;
  usage: SandboxUsage;
  admission: Admission;
  idleReaper: IdleReaper;
  expiry: ExpiryReaper;
  reconciler: Reconciler;
  /** Creates a sandbox (an app that sleeps) and waits until it runs. */
  running(over?: Record<string, unknown>): Promise<SandboxRecord>;
  state(id: string): Promise<string | undefined>;
  /** `sandbox.state` events of a sandbox, as { from, to, reason }. */
  transitions(id: string): Promise<{ from: string; to: string; reason?: string }[]>;
  close(): Promise<void>;
}

export async function lifecycleRig(
  overrides: Record<string, unknown> = {},
  node?: ServiceNode,
): Promise<LifecycleRig> {
  const dir = mkdtempSync(join(tmpdir(), 'previewd-lifecycle-'));
  const dataDir = join(dir, 'data');
  const { config } = loadConfig({ env: {}, cwd: dir, overrides: { dataDir, ...overrides } });
  const clock = new ManualClock(Date.now());
  const store = new SqliteStore(join(dataDir, 'previewd.db'));
  await store.migrate();
  const bus = new EventBus(store);
  const provider = new MemoryProvider({
    root: join(dir, 'instances'),
    images: Object.values(config.images).filter((v): v is string => typeof v === 'string'),
    clock,
  });
  const log = pino({ level: 'silent' });
  const usage = new SandboxUsage({ lastSeen: () => undefined, busy: () => false }, { list: () => [] }, clock);
  const service: SandboxService = new SandboxService({
    store,
    provider,
    bus,
    config,
    log,
    clock,
    node,
    gate: { admit: (request): Promise<void> => admission.admit(request) },
  });
  const admission = new Admission({
    store,
    service,
    usage,
    config,
    log,
    memory: { availableMb: async () => 1_000_000, containerMb: async () => undefined },
  });
  const rig: LifecycleRig = {
    clock,
    config,
    store,
    bus,
    provider,
    service,
    usage,
    admission,
    idleReaper: new IdleReaper({ store, service, usage, config, log }),
    expiry: new ExpiryReaper({ store, service, bus, config, log, clock }),
    reconciler: new Reconciler({ store, provider, service, bus, config, log, clock }),
    async running(over = {}) {
      const created = await service.create({ runtime: { start: 'exec sleep 3600' }, ...over } as never);
      await service.idle();
      return service.get(created.id);
    },
    async state(id) {
      return (await store.getSandbox(id, { includeDeleted: true }))?.state;
    },
    async transitions(id) {
      const events = await bus.history({ sandboxId: id });
      return events.filter((e) => e.type === 'sandbox.state').map((e) => e.data as never);
    },
    async close() {
      await service.idle();
      for (const instance of await provider.list()) await provider.destroy(instance.sandboxId);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}
