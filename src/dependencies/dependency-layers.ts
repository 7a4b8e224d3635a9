import { constants, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { CreateSandboxInput, RuntimePlan } from '../domain/schemas.js';
import type { SandboxProvider } from '../providers/provider.js';
import { SAFE_WRITE_FLAGS } from '../providers/safe-read.js';
import type { WorkspaceFiles } from '../providers/workspace-fs.js';
import { planFromInput } from '../runtimes/plan.js';
import { installStamp } from '../runtimes/templates.js';
import { LayerStore } from '../workspaces/layers.js';
import { SandboxStorage } from '../workspaces/sandbox-storage.js';
import {
  type DependencyInput,
  type DependencyRecipe,
  dependencyRecipe,
  INPUT_MAX_BYTES,
  NODE_INPUTS,
  npmLockIdentity,
  PIP_INPUTS,
} from './dependency-key.js';

/** The stamp runtime/supervisor.sh keeps: in node_modules for Node, in the home for pip. */
export const STAMP = '.previewd-install-hash';

/** What a create did about its dependencies (`runtime.dependencies`). */
export type DependencyOutcome = 'layer' | 'installed';

/** A layer attached at create, or the recipe whose layer previewd builds once the sandbox installed. */
export interface Attachment {
  outcome?: DependencyOutcome;
  /** Eligible but no layer yet: the build to start after the sandbox's own install. */
  build?: DependencyRecipe;
}

/** A failed build is not tried again for a while (a lockfile that never installs). */
const RETRY_AFTER_MS = 10 * 60_000;

/**
 * Dependency layers of one previewd (docs/runtimes.md#dependency-layers): installed dependencies
 * kept as read-only layers of the layer store, keyed by what decides them (dependency-key.ts).
 * `attach` gives a new sandbox the layer of its key when there is one; otherwise the create asks
 * for a build, which runs in previewd's own throwaway sandbox (dependency-build.ts), never from
 * the user's sandbox. Builds run one at a time, one per key.
 */
export class DependencyLayers {
  /** Sandboxes this process created to build a layer (only these are read back), by key. */
  private readonly builds = new Map<string, string>();
  private readonly pending = new Map<string, Promise<boolean>>();
  private readonly failedAt = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();
  readonly layers: LayerStore;

  constructor(
    readonly deps: {
      config: Pick<Config, 'dataDir' | 'images' | 'dependencyLayers'>;
      storage: SandboxStorage;
      log: Logger;
    },
  ) {
    this.layers = new LayerStore(deps.config.dataDir);
  }

  get storage(): SandboxStorage {
    return this.deps.storage;
  }

  markBuild(sandboxId: string, key: string): void {
    this.builds.set(sandboxId, key);
  }

  unmarkBuild(sandboxId: string): void {
    this.builds.delete(sandboxId);
  }

  /** The key previewd's build sandbox `sandboxId` builds, if it is one. */
  buildOf(sandboxId: string): string | undefined {
    return this.builds.get(sandboxId);
  }

  /** The recipe of a new sandbox's dependencies (undefined: installs as before), read from its workspace. */
  async recipe(
    files: WorkspaceFiles,
    written: Readonly<Record<string, string>>,
    plan: RuntimePlan,
    input: CreateSandboxInput,
    owner: string | undefined,
  ): Promise<DependencyRecipe | undefined> {
    if (!plan.install || !plan.packageManager) return undefined;
    const names: readonly DependencyInput[] = plan.packageManager === 'pip' ? PIP_INPUTS : NODE_INPUTS;
    const inputs: Partial<Record<DependencyInput, Buffer>> = {};
    for (const name of names) {
      if (!(name in written)) continue;
      const content = await files.read(name, { maxBytes: INPUT_MAX_BYTES }).catch(() => undefined);
      if (content === undefined) return undefined; // too large, or not a regular file
      inputs[name] = content;
    }
    let detectedInstall: string | undefined;
    try {
      detectedInstall = planFromInput({ files: written }, this.deps.config).install;
    } catch {
      return undefined;
    }
    const recipe = dependencyRecipe({
      inputs,
      paths: Object.keys(written),
      plan,
      detectedInstall,
      env: { ...plan.env, ...(input.env ?? {}) },
      owner,
      shared: this.deps.config.dependencyLayers.shared,
    });
    if (!recipe.eligible) {
      this.deps.log.debug({ reason: recipe.reason }, 'dependencies: no layer for this project');
      return undefined;
    }
    return recipe;
  }

  /**
   * Gives a prepared sandbox (no container yet) the layer of its recipe, if built: the layer as a
   * lower layer (node_modules under the workspace, pip's user site at ~/.local) and the install
   * stamp the supervisor computes for this sandbox's own files, so it installs nothing.
   */
  async attach(sandboxId: string, files: WorkspaceFiles, recipe: DependencyRecipe): Promise<Attachment> {
    if (!this.layers.has(recipe.key)) {
      const failed = this.failedAt.get(recipe.key);
      if (failed !== undefined && Date.now() - failed < RETRY_AFTER_MS) return { outcome: 'installed' };
      return { outcome: 'installed', build: recipe };
    }
    const stampInputs: Record<string, Buffer> = {};
    for (const name of STAMPED) {
      const content = await files.read(name, { maxBytes: INPUT_MAX_BYTES }).catch(() => undefined);
      if (content !== undefined) stampInputs[name] = content;
    }
    const stamp = `${installStamp(recipe.install, stampInputs)}\n`;
    if (recipe.kind === 'node') {
      await this.storage.addLowerLayers(sandboxId, { workspace: [recipe.key] });
      await files.write(`node_modules/${STAMP}`, stamp);
      if (recipe.packageManager === 'npm') {
        await ownHiddenLockfile(
          files,
          stampInputs['package-lock.json'] ?? stampInputs['npm-shrinkwrap.json'],
        );
      }
    } else {
      await this.storage.addLowerLayers(sandboxId, { local: recipe.key });
      await writeHomeStamp(this.storage, sandboxId, stamp);
    }
    this.deps.log.info({ sandboxId, layer: recipe.key, kind: recipe.kind }, 'dependencies from a layer');
    return { outcome: 'layer' };
  }

  /**
   * Builds the layer of `recipe` once `userSandboxId`'s own install is over (so the two installs do
   * not share the CPU): joined when the key is already queued, one build at a time.
   */
  buildAfterInstall(
    recipe: DependencyRecipe,
    userSandboxId: string,
    provider: SandboxProvider,
    build: (recipe: DependencyRecipe) => Promise<boolean>,
    timeoutMs = 15 * 60_000,
  ): Promise<boolean> {
    const pending = this.pending.get(recipe.key);
    if (pending) return pending;
    const work = (async () => {
      // Only after an install that succeeded, in a sandbox still there (not one deleted meanwhile,
      // nor one whose install failed: the build would fail the same way).
      if (!(await installSucceeded(provider, userSandboxId, timeoutMs))) return false;
      const turn = this.queue.then(async () => {
        if (this.layers.has(recipe.key)) return true;
        const ok = await build(recipe).catch((err) => {
          this.deps.log.warn({ err, layer: recipe.key }, 'dependency layer build failed');
          return false;
        });
        if (!ok) this.failedAt.set(recipe.key, Date.now());
        return ok;
      });
      this.queue = turn.catch(() => undefined);
      return turn;
    })().finally(() => this.pending.delete(recipe.key));
    this.pending.set(recipe.key, work);
    return work;
  }
}

/**
 * npm copies its lockfile's name and version into node_modules/.package-lock.json; the layer was
 * built under previewd's own name (dependency-key.ts anonymousNpmLock), so the sandbox gets the
 * file as its own install would have written it: its lockfile's name and version, the rest the
 * layer's (a new file in its upper layer; the layer is not touched).
 */
async function ownHiddenLockfile(files: WorkspaceFiles, lockfile: Buffer | undefined): Promise<void> {
  const own = npmLockIdentity(lockfile);
  const hidden = await files
    .read(`node_modules/${HIDDEN_LOCKFILE}`, { maxBytes: INPUT_MAX_BYTES })
    .catch(() => undefined);
  if (!own || hidden === undefined) return;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(hidden.toString('utf8')) as Record<string, unknown>;
  } catch {
    return;
  }
  const { name: _name, version: _version, ...rest } = parsed;
  const rewritten = {
    ...(own.name !== undefined ? { name: own.name } : {}),
    ...(own.version !== undefined ? { version: own.version } : {}),
    ...rest,
  };
  await files.write(`node_modules/${HIDDEN_LOCKFILE}`, `${JSON.stringify(rewritten, null, 2)}\n`);
}

/** npm's record of what it installed, in node_modules. */
const HIDDEN_LOCKFILE = '.package-lock.json';

/** The files the supervisor hashes into its stamp (runtime/supervisor.sh install_hash). */
const STAMPED = [
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'pnpm-lock.yaml',
  'yarn.lock',
  'requirements.txt',
  'pyproject.toml',
  'poetry.lock',
];

/**
 * Waits (bounded) until a sandbox's supervisor has finished installing: true once the install
 * succeeded (the app started), false when the supervisor gave up or the sandbox is gone.
 */
async function installSucceeded(
  provider: SandboxProvider,
  sandboxId: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let seen = false;
  while (Date.now() < deadline && provider.appStatus) {
    const status = await provider.appStatus(sandboxId).catch(() => 'gone' as const);
    if (status === 'gone' || (!status && seen) || !existsSync(provider.files(sandboxId).root)) return false;
    if (status?.state === 'running') return true;
    // crashed: the supervisor tries again (a failed download, an app that exits); failed: it gave up.
    if (status?.state === 'failed' || status?.state === 'stopped') return false;
    seen ||= status !== undefined;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/** The pip stamp in the sandbox's home (on its disk): a new file of the sandbox's, never followed. */
async function writeHomeStamp(storage: SandboxStorage, sandboxId: string, stamp: string): Promise<void> {
  const stack = await storage.readStack(sandboxId);
  if (!stack) throw new Error(`sandbox ${sandboxId} has no stack`);
  const path = join(storage.paths(sandboxId).home, STAMP);
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | SAFE_WRITE_FLAGS,
    0o644,
  );
  try {
    await handle.chown(stack.owner.uid, stack.owner.gid);
    await handle.writeFile(stamp);
  } finally {
    await handle.close();
  }
}

const perProvider = new WeakMap<object, DependencyLayers>();

/**
 * The dependency layers of the previewd `provider` belongs to: only a provider with host storage
 * (overlay stacks or plain directories: DockerProvider) has them; undefined when disabled.
 */
export function dependencyLayersFor(
  provider: SandboxProvider,
  config: Pick<Config, 'dataDir' | 'images' | 'dependencyLayers'>,
  log: Logger,
): DependencyLayers | undefined {
  if (!config.dependencyLayers.enabled) return undefined;
  const storage = (provider as { storage?: unknown }).storage;
  if (!(storage instanceof SandboxStorage)) return undefined;
  let layers = perProvider.get(provider);
  if (!layers) {
    layers = new DependencyLayers({ config, storage, log });
    perProvider.set(provider, layers);
  }
  return layers;
}
