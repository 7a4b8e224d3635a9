import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { PeriodicPass } from '../sandboxes/periodic-pass.js';
import { isPinned } from '../snapshots/layer-pins.js';
import type { Store } from '../store/store.js';
import type { LayerKind, LayerStore } from './layers.js';
import type { SandboxStorage } from './sandbox-storage.js';

export const LAYER_KINDS: readonly LayerKind[] = ['template', 'cache', 'dependency', 'snapshot', 'other'];

/** Layers named within this long are never evicted: a create may have chosen one and not yet stacked it. */
export const DEFAULT_GRACE_MS = 10 * 60_000;

export interface LayerEntry {
  key: string;
  kind: LayerKind;
  bytes: number;
  /** The last use (a new stack named it), else when it was published/first measured; ms. */
  lastUsed: number;
  /** Why it is kept (stack, snapshot, pin, recent); empty: evictable. */
  inUse: string[];
}

export interface LayerStoreReport {
  budgetBytes: number;
  totalBytes: number;
  evictableBytes: number;
  byKind: Record<LayerKind, { count: number; bytes: number; inUse: number; evictable: number }>;
  /** The least recently used evictable layer, if any. */
  oldestUnused?: { key: string; kind: LayerKind; bytes: number; lastUsed: string };
  over: boolean;
  layers: LayerEntry[];
}

/** Where a layer is named: every sandbox stack on this host, this node's snapshot rows, pins. */
export interface InUseSources {
  storage: Pick<SandboxStorage, 'stacked' | 'readStack'>;
  /** This node's snapshot rows (their layers stay); absent: none read (say so in the report). */
  snapshotLayers?: () => Promise<string[]>;
}

/** The keys named now, each with why. */
export async function layersInUse(src: InUseSources): Promise<Map<string, string[]>> {
  const used = new Map<string, string[]>();
  const add = (key: string, why: string) => used.set(key, [...(used.get(key) ?? []), why]);
  for (const id of await src.storage.stacked()) {
    // A stack that cannot be read keeps nothing apart, so no eviction may run blind: rethrown.
    const stack = await src.storage.readStack(id);
    for (const key of stack?.layers ?? []) add(key, `stack ${id}`);
    for (const key of Object.values(stack?.cacheLayers ?? {})) if (key) add(key, `stack ${id}`);
    // A pip dependency layer, the lower of the overlay at ~/.local (src/dependencies).
    if (stack?.local) add(stack.local, `stack ${id}`);
  }
  for (const key of (await src.snapshotLayers?.()) ?? []) add(key, 'snapshot');
  return used;
}

/** This node's snapshot rows' layer keys, from the store. */
export function snapshotLayersOf(store: Store, nodeId: () => string): () => Promise<string[]> {
  return async () => (await store.listSnapshots({ node: nodeId() })).flatMap((s) => s.layers);
}

/** Kinds the pointers and markers of the data dir say (the meta's kind when they say nothing). */
async function pointedKinds(dataDir: string): Promise<Map<string, LayerKind>> {
  const kinds = new Map<string, LayerKind>();
  const read = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).trim();
  const templates = resolve(dataDir, 'cache', 'templates');
  for (const name of await readdir(templates).catch(() => [] as string[])) {
    const key = await read(join(templates, name, 'layer'));
    if (key) kinds.set(key, 'template');
  }
  for (const name of ['npm', 'pip']) {
    const key = await read(resolve(dataDir, 'cache', `${name}.layer`));
    if (key) kinds.set(key, 'cache');
  }
  for (const key of await readdir(resolve(dataDir, 'snapshots', 'layers')).catch(() => [] as string[]))
    kinds.set(key, 'snapshot');
  return kinds;
}

/**
 * Every published layer with its size (measured once, layers.ts `meta`), kind, last use and
 * whether something keeps it. `now` and `graceMs` decide "recently used" (kept too).
 */
export async function surveyLayers(opts: {
  dataDir: string;
  layers: LayerStore;
  inUse: Map<string, string[]>;
  budgetBytes: number;
  now: number;
  graceMs: number;
  /** false: measure unmeasured layers without writing their meta (a reader such as the doctor). */
  record?: boolean;
}): Promise<LayerStoreReport> {
  const kinds = await pointedKinds(opts.dataDir);
  const entries: LayerEntry[] = [];
  for (const key of await opts.layers.keys()) {
    const meta = await opts.layers
      .meta(key, kinds.get(key) ?? 'other', { record: opts.record ?? true })
      .catch(() => undefined);
    if (!meta) continue; // removed meanwhile
    const used = (await opts.layers.lastUsed(key))?.getTime();
    const lastUsed = Math.max(used ?? 0, meta.measuredAt);
    const why = [...(opts.inUse.get(key) ?? [])];
    if (isPinned(key)) why.push('pinned by a create');
    if (opts.now - lastUsed < opts.graceMs) why.push('recently used');
    entries.push({ key, kind: kinds.get(key) ?? meta.kind, bytes: meta.bytes, lastUsed, inUse: why });
  }
  entries.sort((a, b) => a.lastUsed - b.lastUsed || a.key.localeCompare(b.key));
  const byKind = Object.fromEntries(
    LAYER_KINDS.map((k) => [k, { count: 0, bytes: 0, inUse: 0, evictable: 0 }]),
  ) as LayerStoreReport['byKind'];
  let totalBytes = 0;
  let evictableBytes = 0;
  for (const e of entries) {
    const k = byKind[e.kind];
    k.count += 1;
    k.bytes += e.bytes;
    totalBytes += e.bytes;
    if (e.inUse.length > 0) k.inUse += 1;
    else {
      k.evictable += 1;
      evictableBytes += e.bytes;
    }
  }
  const oldest = entries.find((e) => e.inUse.length === 0);
  return {
    budgetBytes: opts.budgetBytes,
    totalBytes,
    evictableBytes,
    byKind,
    ...(oldest
      ? {
          oldestUnused: {
            key: oldest.key,
            kind: oldest.kind,
            bytes: oldest.bytes,
            lastUsed: new Date(oldest.lastUsed).toISOString(),
          },
        }
      : {}),
    over: opts.budgetBytes > 0 && totalBytes > opts.budgetBytes,
    layers: entries,
  };
}

/** The evictable layers to remove, least recently used first, until the total fits the budget. */
export function planEviction(report: LayerStoreReport): LayerEntry[] {
  if (report.budgetBytes <= 0) return [];
  let total = report.totalBytes;
  const out: LayerEntry[] = [];
  for (const e of report.layers) {
    if (total <= report.budgetBytes) break;
    if (e.inUse.length > 0) continue;
    out.push(e);
    total -= e.bytes;
  }
  return out;
}

export interface EvictionResult {
  evicted: string[];
  freedBytes: number;
  totalBytes: number;
  budgetBytes: number;
  /** Still over budget after the pass: everything left is in use. */
  over: boolean;
}

/**
 * The layer store's disk budget (`layers.budgetMb`): after a layer is published and on a timer,
 * when the store holds more than the budget, removes the layers nothing keeps — least recently
 * used first, until it fits. Kept: a layer any sandbox stack on this host names (its layers and
 * download caches), one a snapshot row of this node names, one a create of this process pinned,
 * one used or published within the grace window, and `empty`. Builds under way are `.tmp-…`
 * directories, not layers yet. Current template and download-cache layers are evictable when
 * nothing uses them: the next warm-up or template build makes them again (docs/layers.md).
 */
export class LayerBudget extends PeriodicPass<EvictionResult> {
  private readonly evictedCounter: Counter<'kind'>;
  private last?: LayerStoreReport;
  private unsubscribe?: () => void;

  constructor(
    private readonly deps: {
      dataDir: string;
      layers: LayerStore;
      sources: InUseSources;
      budgetMb: () => number;
      log: Logger;
      registry?: Registry;
      now?: () => number;
      graceMs?: number;
      intervalMs?: number;
    },
  ) {
    super('layer budget pass', () => deps.intervalMs ?? 10 * 60_000, deps.log);
    const registers = deps.registry ? [deps.registry] : [];
    const self = this;
    new Gauge({
      name: 'previewd_layers_bytes',
      help: 'Bytes the layer store holds, by layer kind (as of the last budget pass)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const k of LAYER_KINDS) this.set({ kind: k }, self.last?.byKind[k].bytes ?? 0);
      },
    });
    this.evictedCounter = new Counter({
      name: 'previewd_layers_evicted_total',
      help: 'Layers the layer store budget removed, by layer kind',
      labelNames: ['kind'],
      registers,
    });
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Also checks after every publish into this store. */
  override start(): void {
    super.start();
    this.unsubscribe = this.deps.layers.onPublish(() => {
      void this.runOnce().catch((err) => this.deps.log.warn({ err }, 'layer budget pass failed'));
    });
  }

  override async stop(): Promise<void> {
    this.unsubscribe?.();
    await super.stop();
  }

  /** The store as of now (sizes measured once), without removing anything. */
  async report(): Promise<LayerStoreReport> {
    const report = await surveyLayers({
      dataDir: this.deps.dataDir,
      layers: this.deps.layers,
      inUse: await layersInUse(this.deps.sources),
      budgetBytes: this.deps.budgetMb() * 1024 * 1024,
      now: this.now(),
      graceMs: this.deps.graceMs ?? DEFAULT_GRACE_MS,
    });
    this.last = report;
    return report;
  }

  protected async pass(): Promise<EvictionResult> {
    const report = await this.report();
    const evicted: string[] = [];
    let freed = 0;
    for (const e of planEviction(report)) {
      // Re-checked under the layer's lock: a stack that named it since the survey keeps it.
      if (isPinned(e.key) || !(await this.deps.layers.evict(e.key, e.lastUsed))) continue;
      evicted.push(e.key);
      freed += e.bytes;
      this.evictedCounter.inc({ kind: e.kind });
      this.deps.log.info(
        { layer: e.key, kind: e.kind, bytes: e.bytes, lastUsed: new Date(e.lastUsed).toISOString() },
        'layer evicted (layer store over budget)',
      );
    }
    const totalBytes = report.totalBytes - freed;
    const over = report.budgetBytes > 0 && totalBytes > report.budgetBytes;
    if (evicted.length > 0) this.last = await this.report();
    if (over) {
      this.deps.log.warn(
        { totalBytes, budgetBytes: report.budgetBytes },
        'layer store over budget, and every layer left is in use: raise layers.budgetMb (PREVIEWD_LAYERS_BUDGET_MB), or delete sandboxes and snapshots',
      );
    }
    return { evicted, freedBytes: freed, totalBytes, budgetBytes: report.budgetBytes, over };
  }
}

/** Whether the data dir has a layer store at all (the doctor says so instead of a report). */
export function hasLayerStore(dataDir: string): boolean {
  return existsSync(resolve(dataDir, 'layers'));
}
