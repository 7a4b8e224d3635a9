import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SandboxProvider } from '../providers/provider.js';
import { readRegularFile } from '../providers/safe-read.js';
import { DIRECTORY_FLAGS } from '../providers/workspace-walk.js';
import { installStamp } from '../runtimes/templates.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { DependencyRecipe } from './dependency-key.js';
import { type DependencyLayers, STAMP } from './dependency-layers.js';

const run = promisify(execFile);
const STAMP_MAX_BYTES = 4096;

/**
 * Builds the layer of `recipe` in previewd's own throwaway sandbox: the recipe's files only (a
 * canonical package.json, the lockfile, .npmrc/.yarnrc; or requirements.txt), the image, install
 * and install env of the recipe, `exec sleep infinity` as its app, marked in-process as a build
 * (a label anyone could set; the mark no one else can). Once its supervisor reports the install
 * over, its files are read as a sandbox's (no link followed: the directory is opened O_NOFOLLOW,
 * copied with `cp -a` — links as links —, then checked again in the copy, which is previewd's),
 * published under the key, and the sandbox is deleted. Returns whether the layer exists now.
 */
export async function buildDependencyLayer(
  service: SandboxService,
  provider: SandboxProvider,
  deps: DependencyLayers,
  recipe: DependencyRecipe,
  timeoutMs = 15 * 60_000,
): Promise<boolean> {
  if (deps.layers.has(recipe.key)) return true;
  const sandbox = await service.create(
    {
      files: recipe.buildFiles,
      image: recipe.image,
      env: recipe.env,
      runtime: { install: recipe.install, start: 'exec sleep infinity' },
      labels: { 'previewd.dependency-build': recipe.key },
      idlePolicy: 'always_on',
    },
    { dependencyBuild: recipe.key },
  );
  try {
    if (!(await installed(service, provider, sandbox.id, timeoutMs))) return false;
    const paths = deps.storage.paths(sandbox.id);
    const stampDir = recipe.kind === 'node' ? join(paths.workspace, 'node_modules') : paths.home;
    const stamp = await readStamp(stampDir);
    if (stamp !== installStamp(recipe.install, recipe.buildFiles)) return false;
    const source =
      recipe.kind === 'node' ? join(paths.workspace, 'node_modules') : join(paths.home, '.local');
    const name = recipe.kind === 'node' ? 'node_modules' : 'local';
    if (recipe.kind === 'pip' && !existsSync(source)) {
      // Everything was in the image already: an empty user site.
      await deps.layers.put(
        recipe.key,
        async (dir) => {
          await run('mkdir', ['-m', '0777', join(dir, name)]);
        },
        { kind: 'dependency' },
      );
      return true;
    }
    await deps.layers.put(
      recipe.key,
      async (dir) => {
        const target = join(dir, name);
        await assertDirectory(source);
        await run('cp', ['-a', source, target]);
        // Swapped for a link between the check and the copy: cp copied the link, caught here.
        if (!(await lstat(target)).isDirectory()) throw new Error(`${name} of the build is not a directory`);
        await rm(join(target, STAMP), { force: true });
        await rm(join(target, '.vite'), { recursive: true, force: true });
        // Only files, directories and links: no FIFO, socket or device node from a sandbox.
        await run('find', [target, '!', '-type', 'f', '!', '-type', 'd', '!', '-type', 'l', '-delete']);
        // Each sandbox has its own uid: readable and writable by all, which opens nothing — a layer
        // is only ever an overlay's lower, never written (a write copies the file up, into that
        // sandbox's own layer); no setuid/setgid bit survives.
        await run('chmod', ['-R', 'a+rwX,ug-s', target]);
      },
      { kind: 'dependency' },
    );
    deps.deps.log.info({ layer: recipe.key, kind: recipe.kind }, 'dependency layer built');
    return true;
  } finally {
    // Through the service; when it cannot any more (previewd is stopping, its store closed), the
    // container and storage still go: a build never outlives its previewd.
    await service.delete(sandbox.id).catch(() => provider.destroy(sandbox.id).catch(() => undefined));
    deps.unmarkBuild(sandbox.id);
  }
}

/** Waits (bounded) until the build's supervisor reports its install done (`running`: the app started). */
async function installed(
  service: SandboxService,
  provider: SandboxProvider,
  sandboxId: string,
  timeoutMs: number,
): Promise<boolean> {
  if (!provider.appStatus) return false;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Deleted meanwhile, or previewd stopping (its store closed): no build.
    const row = await service.get(sandboxId).catch(() => undefined);
    if (!row || row.state === 'deleted' || row.state === 'error') return false;
    const status = await provider.appStatus(sandboxId).catch(() => undefined);
    if (status?.state === 'running') return true;
    // crashed: the install failed and the supervisor tries again; failed: it gave up.
    if (status?.state === 'failed' || status?.state === 'stopped') return false;
    if (!status && !existsSync(provider.files(sandboxId).root)) return false; // deleted meanwhile
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function assertDirectory(path: string): Promise<void> {
  const dir = await open(path, DIRECTORY_FLAGS);
  await dir.close();
}

/** The stamp in `dir` (opened without following a link), '' when there is none. */
async function readStamp(dir: string): Promise<string> {
  const handle = await open(dir, DIRECTORY_FLAGS).catch(() => undefined);
  if (!handle) return '';
  try {
    return (
      await readRegularFile(`/proc/self/fd/${handle.fd}/${STAMP}`, {
        maxBytes: STAMP_MAX_BYTES,
        label: STAMP,
      }).catch(() => Buffer.alloc(0))
    )
      .toString('utf8')
      .trim();
  } finally {
    await handle.close();
  }
}
