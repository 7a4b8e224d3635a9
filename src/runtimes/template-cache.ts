import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { SandboxProvider } from '../providers/provider.js';
import { readRegularFile, readRegularFileIfExists } from '../providers/safe-read.js';
import { DIRECTORY_FLAGS } from '../providers/workspace-walk.js';
import { publishCacheLayer } from '../workspaces/cache-layers.js';
import { LayerStore, layerKey } from '../workspaces/layers.js';
import { planFromInput } from './plan.js';
import {
  installStamp,
  nodeTemplates,
  type TemplateName,
  templateFiles,
  templateFingerprint,
  templatesRoot,
} from './templates.js';

const run = promisify(execFile);

/** The stamp file runtime/supervisor.sh keeps in node_modules. */
const STAMP = '.previewd-install-hash';
const LOCKFILE = 'package-lock.json';
/** Caps of what a build reads from a workspace (the sandbox wrote it: a FIFO or a huge file must not stop previewd). */
const LOCKFILE_MAX_BYTES = 32 * 1024 * 1024;
const STAMP_MAX_BYTES = 4096;

/**
 * Per-host cache of the Node templates' installed dependencies. The installed `node_modules` is a
 * read-only layer of the layer store (`<dataDir>/layers/<key>/node_modules`, src/workspaces/layers.ts);
 * `<dataDir>/cache/templates/<name>/{package-lock.json, fingerprint, layer}` says which layer is
 * current for the template. `fingerprint` is a hash of the template's files: a changed template
 * makes the cache stale.
 *
 * Only previewd fills it: `build` runs in a throwaway sandbox previewd itself created from the bare
 * template (`warmTemplate`, src/runtimes/template-warm.ts, marked by `markBuild` — not a label, which
 * any caller can set), and copies that sandbox's node_modules into a new layer once its install
 * finished. A tenant's sandbox never fills it. A sandbox created from a warm template gets the
 * lockfile among its files and the layer as the lower layer of its workspace overlay: it reads the
 * build's files, and anything it writes is copied up into its own layer (its disk) — the layer's
 * inodes are never writable from a sandbox. Where overlays are not available (previewd not root),
 * `seed` copies the layer's files into the workspace instead (a real copy: slower, never shared).
 */
export class TemplateCache {
  private readonly building = new Map<string, Promise<boolean>>();
  /** Sandboxes this process created to build a template's layer (only these are read back). */
  private readonly builds = new Map<string, TemplateName>();
  readonly layers: LayerStore;

  constructor(
    private readonly deps: {
      config: Pick<Config, 'dataDir' | 'images'>;
      log: Logger;
      root?: string;
      layers?: LayerStore;
    },
  ) {
    this.layers = deps.layers ?? new LayerStore(deps.config.dataDir);
  }

  dir(name: TemplateName): string {
    return resolve(this.deps.config.dataDir, 'cache', 'templates', name);
  }

  /** The files of a new sandbox from `name`: the template's, plus the cached lockfile and the layer when warm. */
  async filesFor(name: string): Promise<{ files: Record<string, string>; warm: boolean; layer?: string }> {
    const files = await templateFiles(name, this.deps.root ?? templatesRoot());
    const template = name as TemplateName;
    if (!nodeTemplates.includes(template)) return { files, warm: false };
    const layer = await this.currentLayer(template, files);
    if (!layer) return { files, warm: false };
    // Named for a new stack from now on: the layer budget leaves it (docs/layers.md).
    if (!(await this.layers.claim(layer))) return { files, warm: false };
    const lock = await readFile(join(this.dir(template), LOCKFILE), 'utf8').catch(() => undefined);
    if (lock === undefined) return { files, warm: false };
    return { files: { ...files, [LOCKFILE]: lock }, warm: true, layer };
  }

  /** The layer key of a fresh cache of `name`, if any. */
  private async currentLayer(name: TemplateName, files: Record<string, string>): Promise<string | undefined> {
    const stored = await readFile(join(this.dir(name), 'fingerprint'), 'utf8').catch(() => undefined);
    if (stored?.trim() !== templateFingerprint(files)) return undefined;
    const key = (await readFile(join(this.dir(name), 'layer'), 'utf8').catch(() => ''))?.trim();
    if (!key || !this.layers.has(key) || !existsSync(join(this.layers.path(key), 'node_modules')))
      return undefined;
    return key;
  }

  /** Whether the cache of `name` was built from these template files. */
  async fresh(name: TemplateName, files?: Record<string, string>): Promise<boolean> {
    const current = files ?? (await templateFiles(name, this.deps.root ?? templatesRoot()));
    return (await this.currentLayer(name, current)) !== undefined;
  }

  /**
   * Without overlays: copies the layer's node_modules into a workspace (host path) that has none.
   * A real copy (`cp -a`, new inodes owned by the sandbox user), never links to the layer.
   */
  async seed(layer: string, workspaceRoot: string): Promise<void> {
    const target = join(workspaceRoot, 'node_modules');
    if (existsSync(target)) return;
    await run('cp', ['-a', join(this.layers.path(layer), 'node_modules'), target]);
  }

  /** Marks a sandbox as previewd's own build of `name` (template-warm.ts): the only kind `build` reads. */
  markBuild(sandboxId: string, name: TemplateName): void {
    this.builds.set(sandboxId, name);
  }

  unmarkBuild(sandboxId: string): void {
    this.builds.delete(sandboxId);
  }

  /**
   * Copies the node_modules of previewd's build sandbox `sandboxId` (workspace at `workspaceRoot`)
   * into a new layer and makes it current for `name` (once: a fresh cache is kept). Refuses any
   * other sandbox. Returns whether the cache was written.
   */
  build(name: TemplateName, sandboxId: string, workspaceRoot: string): Promise<boolean> {
    if (this.builds.get(sandboxId) !== name) {
      return Promise.reject(new Error(`sandbox ${sandboxId} is not previewd's build of ${name}`));
    }
    const pending = this.building.get(name);
    if (pending) return pending;
    const work = this.buildOnce(name, workspaceRoot).finally(() => this.building.delete(name));
    this.building.set(name, work);
    return work;
  }

  /**
   * The build sandbox ran the template's own install, but its files are still read as a sandbox's:
   * without following links and without blocking (safe-read.ts), and what is copied out is checked
   * once copied (the copy is previewd's, the sandbox cannot change it any more).
   */
  private async buildOnce(name: TemplateName, workspaceRoot: string): Promise<boolean> {
    const files = await templateFiles(name, this.deps.root ?? templatesRoot());
    if (await this.fresh(name, files)) return false;
    const lockBytes = await readRegularFileIfExists(join(workspaceRoot, LOCKFILE), {
      maxBytes: LOCKFILE_MAX_BYTES,
      label: LOCKFILE,
    });
    if (lockBytes === undefined) return false;
    const lock = lockBytes.toString('utf8');
    // node_modules itself, never a link; its stamp read through the open directory.
    const modules = join(workspaceRoot, 'node_modules');
    const dir = await open(modules, DIRECTORY_FLAGS).catch(() => undefined);
    if (!dir) return false;
    let installed: string;
    try {
      installed = (
        await readRegularFile(`/proc/self/fd/${dir.fd}/${STAMP}`, {
          maxBytes: STAMP_MAX_BYTES,
          label: STAMP,
        }).catch(() => Buffer.alloc(0))
      )
        .toString('utf8')
        .trim();
    } finally {
      await dir.close();
    }
    // The workspace installed the template's dependencies (as created: no lockfile yet)?
    const asCreated = planFromInput({ template: name, files }, this.deps.config);
    if (!asCreated.install || installed !== installStamp(asCreated.install, files)) return false;
    // The next sandboxes get the lockfile too, so their plan's install differs: stamp for that one.
    const withLock = { ...files, [LOCKFILE]: lock };
    const next = planFromInput({ template: name, files: withLock }, this.deps.config);
    if (!next.install) return false;
    const key = layerKey(
      'template',
      name,
      templateFingerprint(files),
      createHash('sha256').update(lock).digest('hex'),
      next.install,
    );
    await this.layers.put(
      key,
      async (layer) => {
        // cp -a copies a link given on its command line as a link: swapped meanwhile, it is caught below.
        await run('cp', ['-a', modules, join(layer, 'node_modules')]);
        if (!(await lstat(join(layer, 'node_modules'))).isDirectory()) {
          throw new Error(`${name}: node_modules of the build is not a directory`);
        }
        // Vite's pre-bundled deps belong to one dev server run.
        await rm(join(layer, 'node_modules', '.vite'), { recursive: true, force: true });
        // The copied stamp may be a link: removed, then created anew (never followed).
        const stamp = join(layer, 'node_modules', STAMP);
        await rm(stamp, { force: true });
        await writeFile(stamp, `${installStamp(next.install!, withLock)}\n`, { flag: 'wx' });
        // Every sandbox has its own uid: the layer is readable and writable by all of them. It is only
        // ever an overlay's lower layer, which overlayfs never writes (a write copies the file up into
        // that sandbox's own layer), so its mode decides who may change their own copy, nothing more.
        await run('chmod', ['-R', 'a+rwX,ug-s', join(layer, 'node_modules')]);
      },
      { kind: 'template' },
    );
    // What the build downloaded becomes the next download-cache layer (never written in place:
    // running sandboxes have the current one as their lower layer).
    const disk = join(dirname(workspaceRoot), 'disk');
    for (const cache of ['npm', 'pip'] as const) {
      await publishCacheLayer(
        this.deps.config.dataDir,
        this.layers,
        cache,
        join(disk, `${cache}-upper`),
      ).catch((err) => this.deps.log.warn({ err, cache }, 'publishing the download cache layer failed'));
    }
    // The pointer: lockfile, fingerprint and layer key, replaced in one rename.
    const final = this.dir(name);
    const tmp = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { recursive: true });
    try {
      await writeFile(join(tmp, LOCKFILE), lock);
      await writeFile(join(tmp, 'fingerprint'), `${templateFingerprint(files)}\n`);
      await writeFile(join(tmp, 'layer'), `${key}\n`);
      const old = `${final}.old-${randomBytes(4).toString('hex')}`;
      if (existsSync(final)) await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
      this.deps.log.info({ template: name, layer: key }, 'template dependencies cached');
      return true;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Waits (bounded) until the supervisor of previewd's build sandbox reports its install done,
   * then builds the template's layer from it.
   */
  async buildWhenInstalled(
    name: TemplateName,
    sandboxId: string,
    provider: SandboxProvider,
    timeoutMs = 15 * 60_000,
  ): Promise<boolean> {
    if (!nodeTemplates.includes(name) || !provider.appStatus) return false;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const status = await provider.appStatus(sandboxId).catch(() => undefined);
      if (status?.state === 'running') return this.build(name, sandboxId, provider.files(sandboxId).root);
      if (status?.state === 'failed' || status?.state === 'stopped') return false;
      if (!existsSync(provider.files(sandboxId).root)) return false; // deleted meanwhile
      await new Promise((r) => setTimeout(r, 500));
    }
    return false;
  }
}
