import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { LayerStore } from '../workspaces/layers.js';
import type { SandboxStorage } from '../workspaces/sandbox-storage.js';
import { isPinned } from './layer-pins.js';

const KEY = /^[a-f0-9]{32}$/;

/**
 * The layers snapshots and forks froze on this node, and their collection. Each frozen layer
 * has a marker `<dataDir>/snapshots/layers/<key>` (the layer directory itself holds only the
 * files); a marked layer is freed once no snapshot row of this node and no sandbox stack on this
 * host names it, and no create of this process has it pinned (layer-pins.ts). Template and cache
 * layers have no marker and are never touched here.
 */
export class FrozenLayers {
  private readonly markers: string;
  private running: Promise<string[]> | undefined;
  private again = false;

  constructor(
    private readonly deps: {
      dataDir: string;
      store: Store;
      layers: LayerStore;
      storage: SandboxStorage;
      nodeId: () => string;
      log: Logger;
    },
  ) {
    this.markers = resolve(deps.dataDir, 'snapshots', 'layers');
  }

  async mark(key: string): Promise<void> {
    await mkdir(this.markers, { recursive: true, mode: 0o700 });
    await writeFile(join(this.markers, key), '', { mode: 0o600 });
  }

  async marked(): Promise<string[]> {
    return (await readdir(this.markers).catch(() => [] as string[])).filter((n) => KEY.test(n));
  }

  /** One collection at a time; a call during one runs another after it. Returns the freed keys. */
  collect(): Promise<string[]> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      const freed: string[] = [];
      do {
        this.again = false;
        freed.push(...(await this.collectOnce()));
      } while (this.again);
      return freed;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async collectOnce(): Promise<string[]> {
    const marked = await this.marked();
    if (marked.length === 0) return [];
    const used = new Set<string>();
    for (const snap of await this.deps.store.listSnapshots({ node: this.deps.nodeId() })) {
      for (const key of snap.layers) used.add(key);
    }
    for (const id of await this.deps.storage.stacked()) {
      const stack = await this.deps.storage.readStack(id).catch(() => undefined);
      for (const key of stack?.layers ?? []) used.add(key);
    }
    const freed: string[] = [];
    for (const key of marked) {
      if (used.has(key) || isPinned(key)) continue;
      await this.deps.layers.discard(key);
      await rm(join(this.markers, key), { force: true });
      freed.push(key);
    }
    if (freed.length > 0) this.deps.log.info({ layers: freed }, 'snapshot layers freed');
    return freed;
  }

  has(key: string): boolean {
    return existsSync(join(this.markers, key));
  }
}
