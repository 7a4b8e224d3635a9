import { newSandboxId } from '../../src/domain/ids.js';
import { nowIso, type SandboxRecord } from '../../src/domain/sandbox.js';
import type { Store } from '../../src/store/store.js';

export function sandboxRecord(overrides: Partial<SandboxRecord> = {}): SandboxRecord {
  const now = nowIso();
  return {
    id: newSandboxId(),
    state: 'creating',
    image: 'img',
    runtime: { image: 'img', env: {}, source: 'none' },
    ports: [3000],
    env: { A: '1' },
    resources: { cpus: 1, memoryMb: 512, pids: 256 },
    visibility: 'public',
    idleTimeoutSec: 900,
    pauseAfterSec: 120,
    metadata: { m: { nested: true } },
    labels: { team: 'web' },
    createdAt: now,
    updatedAt: now,
    lastActivityAt: now,
    ...overrides,
  };
}

/**
 * What an engine's test hands the contract for each case: `store` on a fresh, empty database
 * (not yet migrated), and `openAnother()` for a second store with its own connection(s) on that
 * same database (the concurrency cases). The suite migrates `store` and closes every store.
 */
export interface StoreHarness {
  store: Store;
  openAnother(): Promise<Store>;
}
