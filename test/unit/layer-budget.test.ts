import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pinLayers } from '../../src/snapshots/layer-pins.js';
import { LayerBudget } from '../../src/workspaces/layer-budget.js';
import { LayerStore, layerKey } from '../../src/workspaces/layers.js';

const MB = 1024 * 1024;
const MIN = 60_000;

/** A fake storage: the stacks this test says exist. */
function stacks(map: Record<string, { layers: string[]; cacheLayers?: Record<string, string> }>) {
  return {
    stacked: async () => Object.keys(map),
    readStack: async (id: string) =>
      map[id]
        ? { version: 1, mode: 'layers', caches: 'overlay', owner: { uid: 1, gid: 1 }, ...map[id] }
        : undefined,
  } as never;
}

describe('layer store budget: LRU eviction of layers nothing uses', () => {
  let dataDir: string;
  let clock: number;
  const now = () => clock;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'previewd-layer-budget-'));
    clock = Date.parse('2026-01-01T00:00:00Z');
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  /** Publishes a layer of about `mb` MB at the current clock, then lets 20 minutes pass. */
  async function layer(layers: LayerStore, name: string, mb: number): Promise<string> {
    const key = layerKey('test', name);
    await layers.put(key, async (dir) => writeFile(join(dir, 'blob'), Buffer.alloc(mb * MB, 1)));
    await layers.meta(key);
    await layers.touch(key);
    clock += 20 * MIN;
    return key;
  }

  function budget(
    layers: LayerStore,
    budgetMb: number,
    extra: Partial<ConstructorParameters<typeof LayerBudget>[0]> = {},
  ) {
    return new LayerBudget({
      dataDir,
      layers,
      sources: { storage: stacks({}) },
      budgetMb: () => budgetMb,
      log: pino({ level: 'silent' }),
      now,
      ...extra,
    });
  }

  it('removes the least recently used unused layers until the store fits, newest kept', async () => {
    const layers = new LayerStore(dataDir, now);
    const a = await layer(layers, 'a', 2);
    const b = await layer(layers, 'b', 2);
    const c = await layer(layers, 'c', 2);
    // a is used again after c: b is now the least recently used.
    await layers.touch(a);
    clock += 20 * MIN;
    const result = await budget(layers, 5).runOnce();
    expect(result.evicted).toEqual([b]);
    expect(layers.has(b)).toBe(false);
    expect(layers.has(a) && layers.has(c)).toBe(true);
    expect(result.over).toBe(false);
    expect(result.totalBytes).toBeLessThanOrEqual(5 * MB);
    // Its meta and last use are gone with it.
    expect(existsSync(join(layers.root, '.meta', `${b}.json`))).toBe(false);
    expect(await layers.lastUsed(b)).toBeUndefined();
    // A tighter budget takes c next (a was used after it), then a.
    expect((await budget(layers, 2.5).runOnce()).evicted).toEqual([c]);
    expect((await budget(layers, 1).runOnce()).evicted).toEqual([a]);
  });

  it('never evicts a layer a stack, a snapshot row or a pin names, nor the empty layer', async () => {
    const layers = new LayerStore(dataDir, now);
    await layers.empty();
    const stacked = await layer(layers, 'stacked', 1);
    const cache = await layer(layers, 'cache', 1);
    const snap = await layer(layers, 'snap', 1);
    const pinned = await layer(layers, 'pinned', 1);
    const loose = await layer(layers, 'loose', 1);
    const unpin = pinLayers([pinned]);
    try {
      const pass = budget(layers, 1, {
        sources: {
          storage: stacks({ s1: { layers: [stacked], cacheLayers: { npm: cache } } }),
          snapshotLayers: async () => [snap],
        },
      });
      const result = await pass.runOnce();
      expect(result.evicted).toEqual([loose]);
      for (const k of [stacked, cache, snap, pinned]) expect(layers.has(k)).toBe(true);
      expect(existsSync(layers.path('empty'))).toBe(true);
      // Over budget with nothing evictable: reported, nothing else removed.
      expect(result.over).toBe(true);
      const report = await pass.report();
      expect(report.evictableBytes).toBe(0);
      expect(report.oldestUnused).toBeUndefined();
      expect(report.layers.find((l) => l.key === snap)?.inUse).toEqual(['snapshot']);
      expect(report.layers.find((l) => l.key === pinned)?.inUse).toEqual(['pinned by a create']);
    } finally {
      unpin();
    }
    // Unpinned: it goes on the next pass.
    expect(
      (
        await budget(layers, 1, {
          sources: { storage: stacks({ s1: { layers: [stacked, cache, snap] } }) },
        }).runOnce()
      ).evicted,
    ).toEqual([pinned]);
  });

  it('keeps a layer used within the grace window, and one touched after the survey', async () => {
    const layers = new LayerStore(dataDir, now);
    const old = await layer(layers, 'old', 1);
    const fresh = await layer(layers, 'fresh', 1);
    clock -= 15 * MIN; // fresh was used 5 minutes ago
    const result = await budget(layers, 0.5).runOnce();
    expect(result.evicted).toEqual([old]);
    expect(layers.has(fresh)).toBe(true);
    // evict() itself refuses a layer used since the use it was told of.
    clock += 30 * MIN;
    const seen = (await layers.lastUsed(fresh))!.getTime();
    clock += MIN;
    await layers.touch(fresh);
    expect(await layers.evict(fresh, seen)).toBe(false);
    expect(layers.has(fresh)).toBe(true);
    // And a touch after an eviction fails: the layer is gone, a stack cannot name it.
    expect(await layers.evict(fresh, clock)).toBe(true);
    await expect(layers.touch(fresh)).rejects.toThrow(/not in the layer store/);
    expect(await layers.claim(fresh)).toBe(false);
  });

  it('a budget of 0 evicts nothing', async () => {
    const layers = new LayerStore(dataDir, now);
    const a = await layer(layers, 'a', 2);
    const result = await budget(layers, 0).runOnce();
    expect(result).toMatchObject({ evicted: [], over: false });
    expect(layers.has(a)).toBe(true);
  });

  it('measures a layer once: its size is read back from .meta, not the tree', async () => {
    const layers = new LayerStore(dataDir, now);
    const a = await layer(layers, 'a', 1);
    const meta = JSON.parse(await readFile(join(layers.root, '.meta', `${a}.json`), 'utf8'));
    expect(meta.bytes).toBeGreaterThanOrEqual(MB);
    expect(meta.bytes).toBeLessThan(2 * MB);
    // The tree grows behind the store's back (layers never change, so it is not walked again).
    writeFileSync(join(layers.path(a), 'more'), Buffer.alloc(3 * MB, 1));
    const report = await budget(layers, 100).report();
    expect(report.totalBytes).toBe(meta.bytes);
    expect(report.byKind.other).toMatchObject({ count: 1, bytes: meta.bytes, evictable: 1 });
  });

  it('classifies by pointers and markers; metrics count bytes and evictions per kind', async () => {
    const layers = new LayerStore(dataDir, now);
    const tpl = await layer(layers, 'tpl', 1);
    const npm = await layer(layers, 'npm', 1);
    const snap = await layer(layers, 'snap', 1);
    const dep = layerKey('dep');
    await layers.put(dep, async (dir) => writeFile(join(dir, 'x'), 'x'), { kind: 'dependency' });
    await layers.meta(dep, 'dependency');
    clock += 20 * MIN;
    await mkdir(join(dataDir, 'cache', 'templates', 'express'), { recursive: true });
    await writeFile(join(dataDir, 'cache', 'templates', 'express', 'layer'), `${tpl}\n`);
    await writeFile(join(dataDir, 'cache', 'npm.layer'), `${npm}\n`);
    await mkdir(join(dataDir, 'snapshots', 'layers'), { recursive: true });
    await writeFile(join(dataDir, 'snapshots', 'layers', snap), '');
    const registry = new Registry();
    const pass = budget(layers, 2.5, {
      registry,
      sources: { storage: stacks({}), snapshotLayers: async () => [snap] },
    });
    const report = await pass.report();
    expect(report.byKind.template.count).toBe(1);
    expect(report.byKind.cache.count).toBe(1);
    expect(report.byKind.snapshot).toMatchObject({ count: 1, inUse: 1 });
    expect(report.byKind.dependency.count).toBe(1);
    // Oldest first: the template layer (current pointers are evictable when unused: rebuilt later).
    expect(report.oldestUnused?.key).toBe(tpl);
    const result = await pass.runOnce();
    expect(result.evicted).toEqual([tpl]);
    const text = await registry.metrics();
    expect(text).toMatch(/previewd_layers_evicted_total\{kind="template"\} 1/);
    expect(text).toMatch(/previewd_layers_bytes\{kind="template"\} 0/);
    expect(text).toMatch(/previewd_layers_bytes\{kind="snapshot"\} [1-9]/);
  });
});
