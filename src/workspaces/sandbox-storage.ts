import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type CacheName, currentCacheLayer } from './cache-layers.js';
import type { LayerStore } from './layers.js';
import {
  detachLoops,
  mountLoop,
  mountOverlays,
  mountsUnder,
  type OverlaySpec,
  unmountAll,
} from './mounts.js';
import { makeDisk } from './sandbox-disk.js';

const run = promisify(execFile);

/** A shared download cache: root's, world-writable (template-cache.ts opens its files after each build). */
async function sharedDir(dir: string): Promise<void> {
  if (existsSync(dir)) return;
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o777);
}

/**
 * How a sandbox's download caches (npm, pip) are given to it:
 * - `overlay`: the host's current cache layer (cache-layers.ts) as a read-only lower layer, the sandbox's writes in its own
 *   upper layer on its disk (a tenant's sandbox: it reads what builds downloaded, poisons nothing);
 * - `shared`: the shared cache itself, read-write (previewd's own template builds only);
 * - `own`: a cache of its own on its disk (no overlay possible on this host);
 * - `none`: no cache (`dependencyCache: false`).
 */
export type CacheMode = 'overlay' | 'shared' | 'own' | 'none';

/** What `<dataDir>/sandboxes/<id>/stack.json` records: enough to mount the sandbox's storage again after a restart. */
export interface StackRecord {
  version: 1;
  /** `layers`: overlay stack and (with diskMb) a loop-mounted disk; `plain`: directories (no root, no overlay). */
  mode: 'layers' | 'plain';
  /** Size of the sandbox's disk (its upper layers, home, status folder); absent: no disk of its own. */
  diskMb?: number;
  /** The workspace's read-only layers (keys in the layer store), top first; none: the empty layer. */
  layers: string[];
  caches: CacheMode;
  /** The download-cache layers (cache-layers.ts) under the caches' overlays, taken at create. */
  cacheLayers?: Partial<Record<CacheName, string>>;
  /** The sandbox's uid/gid: its upper layers, home and status folder belong to it. */
  owner: { uid: number; gid: number };
  /**
   * A dependency layer of pip's user site (src/dependencies): the lower of an overlay at
   * /home/user/.local, whose upper is on the sandbox's disk (later installs still work).
   */
  local?: string;
}

export interface PrepareOptions {
  layers?: string[];
  diskMb?: number;
  caches: CacheMode;
}

/** The host paths of one sandbox's storage. */
export interface SandboxPaths {
  base: string;
  stack: string;
  /** The workspace as the host sees it: the overlay's merged view (mount point), or a plain directory. */
  workspace: string;
  /** The sandbox disk's image file and its mount point (a plain directory without a disk). */
  image: string;
  disk: string;
  upper: string;
  work: string;
  /** Mounted at /home/user (the root file system is read-only). */
  home: string;
  /** The supervisor's status folder (/run/previewd). */
  run: string;
  caches: Record<'npm' | 'pip', { target: string; upper: string; work: string; shared: string }>;
  /** The overlay at /home/user/.local (a pip dependency layer below, the sandbox's writes above). */
  local: { target: string; upper: string; work: string };
}

/**
 * One sandbox's storage on the host, under `<dataDir>/sandboxes/<id>/`:
 *
 * ```
 * stack.json      what to mount (written before anything is mounted)
 * disk.img        the sandbox's disk: diskMb preallocated, ext4, loop-mounted at disk/
 * disk/           upper/ work/ (the workspace's writable layer), home/, run/, npm-upper/ …
 * workspace/      overlay: lowerdir = the stack's layers, upperdir = disk/upper
 * npm/ pip/       overlays over <dataDir>/cache/{npm,pip} (caches: overlay)
 * ```
 *
 * Everything a sandbox can write lands on its disk, so `diskMb` bounds it (ENOSPC inside), and the
 * disk is preallocated (fallocate), so the host's file system holding previewd's database and keys
 * never runs out of space because a sandbox wrote: a create that cannot reserve its disk fails.
 */
export class SandboxStorage {
  private readonly mounting = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      dataDir: string;
      layers: LayerStore;
      /** false: directories only (previewd is not root, or overlay/loop are missing here). */
      mounts: boolean;
    },
  ) {}

  get layered(): boolean {
    return this.deps.mounts;
  }

  paths(sandboxId: string): SandboxPaths {
    if (!/^[a-z0-9]{1,64}$/.test(sandboxId)) throw new Error(`not a sandbox id: ${sandboxId}`);
    const base = resolve(this.deps.dataDir, 'sandboxes', sandboxId);
    const disk = join(base, 'disk');
    const cache = (name: 'npm' | 'pip') => ({
      target: join(base, name),
      upper: join(disk, `${name}-upper`),
      work: join(disk, `${name}-work`),
      shared: resolve(this.deps.dataDir, 'cache', name),
    });
    return {
      base,
      stack: join(base, 'stack.json'),
      workspace: join(base, 'workspace'),
      image: join(base, 'disk.img'),
      disk,
      upper: join(disk, 'upper'),
      work: join(disk, 'work'),
      home: join(disk, 'home'),
      run: join(disk, 'run'),
      caches: { npm: cache('npm'), pip: cache('pip') },
      local: {
        target: join(base, 'local'),
        upper: join(disk, 'local-upper'),
        work: join(disk, 'local-work'),
      },
    };
  }

  async readStack(sandboxId: string): Promise<StackRecord | undefined> {
    const text = await readFile(this.paths(sandboxId).stack, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as StackRecord;
    if (parsed.version !== 1)
      throw new Error(`stack.json of ${sandboxId}: unknown version ${parsed.version}`);
    return parsed;
  }

  /**
   * Creates the sandbox's storage and mounts it: stack.json first (so a crash after it is finished
   * by `ensureMounted`), then the disk, then the overlays.
   */
  async prepare(
    sandboxId: string,
    owner: { uid: number; gid: number },
    opts: PrepareOptions,
  ): Promise<SandboxPaths> {
    const p = this.paths(sandboxId);
    const layered = this.deps.mounts;
    const stack: StackRecord = {
      version: 1,
      mode: layered ? 'layers' : 'plain',
      ...(layered && opts.diskMb ? { diskMb: opts.diskMb } : {}),
      layers: opts.layers ?? [],
      caches: !layered && opts.caches === 'overlay' ? 'own' : opts.caches,
      owner: { uid: owner.uid, gid: owner.gid },
    };
    for (const key of stack.layers) {
      if (!this.deps.layers.has(key)) throw new Error(`layer ${key} is not in the layer store`);
      await this.deps.layers.touch(key);
    }
    if (stack.caches === 'overlay') {
      stack.cacheLayers = {};
      for (const name of ['npm', 'pip'] as const) {
        const key = await currentCacheLayer(this.deps.dataDir, this.deps.layers, name);
        if (key) stack.cacheLayers[name] = key;
      }
    }
    await mkdir(p.base, { recursive: true, mode: 0o711 });
    const tmp = `${p.stack}.tmp`;
    await writeFile(tmp, `${JSON.stringify(stack)}\n`, { mode: 0o600 });
    await rename(tmp, p.stack);
    if (stack.diskMb) await makeDisk(p.image, stack.diskMb, stack.owner);
    await this.ensureMounted(sandboxId);
    if (!layered) {
      // No overlays here: the layers' files are copied in (new inodes of the sandbox's, never links).
      for (const key of [...stack.layers].reverse()) {
        await run('cp', ['-a', `${this.deps.layers.path(key)}/.`, p.workspace]);
        await run('chown', ['-R', `${owner.uid}:${owner.gid}`, p.workspace]);
      }
    }
    return p;
  }

  /**
   * Adds read-only layers under a prepared sandbox whose container does not exist yet (a
   * dependency layer, once the plan is known: src/dependencies): `workspace` below the stack's
   * layers, `local` as pip's user site. stack.json is rewritten first, then the workspace overlay
   * is mounted again with the new lowers (its upper, the files just written, stays); a restart or a
   * kill -9 after the rewrite mounts the same. Without overlays, the layers' files are copied in.
   */
  async addLowerLayers(sandboxId: string, add: { workspace?: string[]; local?: string }): Promise<void> {
    const p = this.paths(sandboxId);
    const stack = await this.readStack(sandboxId);
    if (!stack) throw new Error(`sandbox ${sandboxId} has no stack`);
    const workspace = add.workspace ?? [];
    for (const key of [...workspace, ...(add.local ? [add.local] : [])]) {
      if (!this.deps.layers.has(key)) throw new Error(`layer ${key} is not in the layer store`);
      await this.deps.layers.touch(key);
    }
    const next: StackRecord = { ...stack, layers: [...stack.layers, ...workspace] };
    if (add.local) next.local = add.local;
    const tmp = `${p.stack}.tmp`;
    await writeFile(tmp, `${JSON.stringify(next)}\n`, { mode: 0o600 });
    await rename(tmp, p.stack);
    const { uid, gid } = stack.owner;
    if (stack.mode === 'plain') {
      for (const key of workspace) {
        await run('cp', ['-a', `${this.deps.layers.path(key)}/.`, p.workspace]);
        await run('chown', ['-R', `${uid}:${gid}`, p.workspace]);
      }
      if (add.local) {
        const local = join(p.home, '.local');
        await mkdir(local, { recursive: true });
        await run('cp', ['-a', `${this.deps.layers.path(add.local)}/local/.`, local]);
        await run('chown', ['-R', `${uid}:${gid}`, local]);
      }
      return;
    }
    if (workspace.length > 0) await unmountAll([p.workspace]);
    await this.ensureMounted(sandboxId);
  }

  /**
   * Mounts whatever of the sandbox's storage is not mounted (its disk, then its overlays), as
   * stack.json says. Idempotent, safe to call from the reconciler and before every start; one at a
   * time per sandbox in this process.
   */
  ensureMounted(sandboxId: string): Promise<void> {
    const pending = this.mounting.get(sandboxId);
    if (pending) return pending;
    const work = this.mountOnce(sandboxId).finally(() => this.mounting.delete(sandboxId));
    this.mounting.set(sandboxId, work);
    return work;
  }

  private async mountOnce(sandboxId: string): Promise<void> {
    const stack = await this.readStack(sandboxId);
    if (!stack) return; // created before stacks (a plain workspace directory), or gone
    const p = this.paths(sandboxId);
    await mkdir(p.disk, { recursive: true, mode: 0o755 });
    if (stack.mode === 'layers' && stack.diskMb) {
      if (!existsSync(p.image)) throw new Error(`the disk of sandbox ${sandboxId} is missing (${p.image})`);
      await mountLoop(p.image, p.disk);
    }
    const { uid, gid } = stack.owner;
    const owned = async (dir: string) => {
      if (existsSync(dir)) return;
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chown(dir, uid, gid);
    };
    await owned(p.home);
    await owned(join(p.home, '.cache'));
    await owned(p.run);
    if (stack.caches !== 'none') {
      // The engine would create these mount points root-owned inside the home bind.
      await owned(join(p.home, '.npm'));
      await owned(join(p.home, '.cache', 'pip'));
    }
    if (stack.mode === 'plain') {
      await owned(p.workspace);
      if (stack.caches === 'shared') for (const c of Object.values(p.caches)) await sharedDir(c.shared);
      return;
    }
    const lowers =
      stack.layers.length > 0
        ? stack.layers.map((key) => this.deps.layers.path(key))
        : [await this.deps.layers.empty()];
    const overlays: OverlaySpec[] = [{ lowers, upper: p.upper, work: p.work, target: p.workspace }];
    if (stack.local) {
      await owned(join(p.home, '.local'));
      // The layer holds `local/` (pip's user site as the build left it).
      overlays.push({ lowers: [join(this.deps.layers.path(stack.local), 'local')], ...p.local });
    }
    if (stack.caches === 'overlay') {
      for (const name of ['npm', 'pip'] as const) {
        const c = p.caches[name];
        const key = stack.cacheLayers?.[name];
        // Stacks from before cache layers named the shared directory itself.
        const lower = stack.cacheLayers
          ? key
            ? this.deps.layers.path(key)
            : await this.deps.layers.empty()
          : c.shared;
        if (!stack.cacheLayers) await sharedDir(c.shared);
        overlays.push({ lowers: [lower], upper: c.upper, work: c.work, target: c.target });
      }
    }
    if (stack.caches === 'shared') for (const c of Object.values(p.caches)) await sharedDir(c.shared);
    for (const o of overlays) {
      await owned(o.upper);
      await owned(o.target);
      // The work dir is overlayfs's own: root's, not the sandbox's.
      await mkdir(o.work, { recursive: true, mode: 0o700 });
    }
    // One look at the mount table and one process for all of them.
    await mountOverlays(overlays);
  }

  /**
   * What the container mounts, its storage mounted first: the workspace and the download caches
   * as its stack says (under `home`, the sandbox's home on its disk: `paths().home`). The root
   * file system is read-only, so the container's writable layer takes no writes at all; /tmp is a tmpfs of at most a quarter of
   * the memory limit (16 MiB – 1 GiB), which counts against that limit. A sandbox made before
   * stacks existed (a plain workspace directory, no stack.json) gets a plain stack recorded now.
   */
  async containerMounts(
    sandboxId: string,
    opts: { owner: { uid: number; gid: number }; caches: CacheMode; memoryMb: number; home: string },
  ): Promise<{ binds: string[]; tmpfs: Record<string, string> }> {
    const p = this.paths(sandboxId);
    let stack = await this.readStack(sandboxId);
    if (!stack) {
      stack = {
        version: 1,
        mode: 'plain',
        layers: [],
        caches: opts.caches === 'overlay' ? 'own' : opts.caches,
        owner: opts.owner,
      };
      await mkdir(p.base, { recursive: true, mode: 0o711 });
      await writeFile(p.stack, `${JSON.stringify(stack)}\n`, { mode: 0o600 });
    }
    await this.ensureMounted(sandboxId);
    // The home itself (p.home, on the disk) is bound by the provider with the sandbox's user files.
    const binds = [`${p.workspace}:/workspace`];
    if (stack.local && stack.mode === 'layers') binds.push(`${p.local.target}:${opts.home}/.local`);
    if (stack.caches === 'overlay') {
      binds.push(
        `${p.caches.pip.target}:${opts.home}/.cache/pip`,
        `${p.caches.npm.target}:${opts.home}/.npm`,
      );
    } else if (stack.caches === 'shared') {
      binds.push(
        `${p.caches.pip.shared}:${opts.home}/.cache/pip`,
        `${p.caches.npm.shared}:${opts.home}/.npm`,
      );
    }
    const tmpMb = Math.max(16, Math.min(1024, Math.floor(opts.memoryMb / 4)));
    return { binds, tmpfs: { '/tmp': `rw,nosuid,nodev,size=${tmpMb}m,mode=1777` } };
  }

  /**
   * Unmounts everything of the sandbox (overlays, then its disk) and detaches its loop device.
   * Idempotent; a sandbox with nothing mounted costs one read of the mount table.
   */
  async release(sandboxId: string): Promise<void> {
    await this.mounting.get(sandboxId)?.catch(() => undefined);
    const p = this.paths(sandboxId);
    // The overlays (one umount for all), then the disk their upper layers are on.
    const overlays = (await mountsUnder(p.base)).map((m) => m.target).filter((t) => t !== p.disk);
    await unmountAll(overlays);
    await unmountAll([p.disk]);
    await detachLoops(p.image);
  }

  /** Unmounts and removes the sandbox's storage. */
  async remove(sandboxId: string): Promise<void> {
    await this.release(sandboxId);
    const p = this.paths(sandboxId);
    const left = await mountsUnder(p.base);
    if (left.length > 0) throw new Error(`${left[0]?.target} is still mounted; not removing ${p.base}`);
    await rm(p.base, { recursive: true, force: true });
  }

  /** The sandboxes with a stack on this host (whatever their row says). */
  async stacked(): Promise<string[]> {
    const root = resolve(this.deps.dataDir, 'sandboxes');
    const names = await readdir(root).catch(() => [] as string[]);
    return names.filter((n) => existsSync(join(root, n, 'stack.json')));
  }
}
