import { existsSync, statfsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Store } from '../../store/store.js';
import {
  DEFAULT_GRACE_MS,
  LAYER_KINDS,
  type LayerStoreReport,
  layersInUse,
  surveyLayers,
} from '../../workspaces/layer-budget.js';
import { LayerStore } from '../../workspaces/layers.js';
import { SandboxStorage } from '../../workspaces/sandbox-storage.js';
import type { Check } from './doctor.js';

const MB = 1024 * 1024;

function size(bytes: number): string {
  if (bytes >= 1024 * MB) return `${(bytes / (1024 * MB)).toFixed(1)} GiB`;
  return `${(bytes / MB).toFixed(1)} MiB`;
}

/** The store's snapshot rows (every node's: a reader keeps more, never less), if there is a store. */
async function snapshotKeys(config: Config): Promise<{ keys: string[]; note?: string }> {
  if (!config.databaseUrl && !existsSync(join(config.dataDir, 'previewd.db'))) return { keys: [] };
  let store: Store | undefined;
  try {
    const { openStore } = await import('../../store/open-store.js');
    store = await openStore(config);
    return { keys: (await store.listSnapshots()).flatMap((s) => s.layers) };
  } catch (err) {
    return { keys: [], note: `snapshot rows not read (${(err as Error).message})` };
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/** The layer store's report as the doctor sees it (read only: nothing measured is written). */
export async function layerStoreReport(config: Config): Promise<{ report: LayerStoreReport; note?: string }> {
  const layers = new LayerStore(config.dataDir);
  const storage = new SandboxStorage({ dataDir: config.dataDir, layers, mounts: false });
  const snapshots = await snapshotKeys(config);
  const report = await surveyLayers({
    dataDir: config.dataDir,
    layers,
    inUse: await layersInUse({ storage, snapshotLayers: async () => snapshots.keys }),
    budgetBytes: config.layers.budgetMb * MB,
    now: Date.now(),
    graceMs: DEFAULT_GRACE_MS,
    record: false,
  });
  return { report, ...(snapshots.note ? { note: snapshots.note } : {}) };
}

function freeBytes(dataDir: string): number {
  let dir = resolve(dataDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
}

/**
 * `previewd doctor`'s layer-store line: total vs budget, per kind, in use vs evictable, the
 * oldest unused layer; a warning with the fix when over budget or when the disk cannot hold what
 * the budget still allows. `layers` (in --json) carries the numbers.
 */
export async function layerStoreCheck(config: Config): Promise<Check> {
  try {
    const { report, note } = await layerStoreReport(config);
    const budget = report.budgetBytes > 0 ? size(report.budgetBytes) : 'no budget';
    const kinds = LAYER_KINDS.filter((k) => report.byKind[k].count > 0)
      .map((k) => `${k} ${report.byKind[k].count} (${size(report.byKind[k].bytes)})`)
      .join(', ');
    const inUse = report.layers.filter((l) => l.inUse.some((w) => w !== 'recently used')).length;
    const recent = report.layers.filter((l) => l.inUse.length > 0).length - inUse;
    const oldest = report.oldestUnused
      ? `; oldest unused ${report.oldestUnused.kind} ${report.oldestUnused.key.slice(0, 12)} (${size(report.oldestUnused.bytes)}, last used ${report.oldestUnused.lastUsed})`
      : '';
    const detail =
      `${size(report.totalBytes)} of ${budget} in ${report.layers.length} layers` +
      `${kinds ? ` — ${kinds}` : ''}; ${inUse} in use, ${recent} used in the last ${DEFAULT_GRACE_MS / 60_000} minutes, ${report.layers.length - inUse - recent} evictable (${size(report.evictableBytes)})${oldest}` +
      `${note ? `; ${note}` : ''}`;
    const free = freeBytes(config.dataDir);
    const left = report.budgetBytes > 0 ? Math.max(0, report.budgetBytes - report.totalBytes) : 0;
    const layers = {
      budgetBytes: report.budgetBytes,
      totalBytes: report.totalBytes,
      evictableBytes: report.evictableBytes,
      freeBytes: free,
      byKind: report.byKind,
      inUse,
      recentlyUsed: recent,
      evictable: report.layers.length - inUse - recent,
      oldestUnused: report.oldestUnused ?? null,
    };
    if (report.over && report.evictableBytes < report.totalBytes - report.budgetBytes) {
      return {
        check: 'layer store',
        status: 'warn',
        detail: `over budget: ${detail}`,
        fix: 'Every layer left is in use: raise layers.budgetMb (PREVIEWD_LAYERS_BUDGET_MB), or delete sandboxes and snapshots you no longer need (previewd rm, previewd snapshots rm).',
        layers,
      };
    }
    if (report.over) {
      return {
        check: 'layer store',
        status: 'warn',
        detail: `over budget: ${detail}`,
        fix: 'The running previewd evicts unused layers on its next pass (every 10 minutes and after each new layer); start it (previewd serve), or raise layers.budgetMb.',
        layers,
      };
    }
    if (left > free) {
      return {
        check: 'layer store',
        status: 'warn',
        detail: `${detail}; only ${size(free)} free on the data dir's disk, ${size(left)} of budget left`,
        fix: `Lower layers.budgetMb (PREVIEWD_LAYERS_BUDGET_MB) to at most ${Math.floor((report.totalBytes + free) / MB)}, or free space on the data dir's disk.`,
        layers,
      };
    }
    return { check: 'layer store', status: 'ok', detail, layers };
  } catch (err) {
    return {
      check: 'layer store',
      status: 'warn',
      detail: `cannot be read: ${(err as Error).message}`,
      fix: `Run the doctor as the user previewd runs as (it reads ${resolve(config.dataDir, 'layers')}).`,
    };
  }
}
