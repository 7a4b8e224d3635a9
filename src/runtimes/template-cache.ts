import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, lstat, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { SandboxProvider } from '../providers/provider.js';
import { readRegularFile, readRegularFileIfExists } from '../providers/safe-read.js';
import { DIRECTORY_FLAGS } from '../providers/workspace-walk.js';
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
/** Caps of what harvest reads from a workspace (the sandbox wrote it: a FIFO or a huge file must not stop previewd). */
const LOCKFILE_MAX_BYTES = 32 * 1024 * 1024;
const STAMP_MAX_BYTES = 4096;

/**
 * Per-host cache of the Node templates' installed dependencies:
 * `<dataDir>/cache/templates/<name>/{node_modules, package-lock.json, fingerprint}`.
 *
 * Filled from a sandbox whose install finished (the first sandbox created from the template, or
 * `previewd templates warm`): its node_modules is copied, stamped with the install the next
 * sandboxes will run (so the supervisor skips it) and kept beside its lockfile. A sandbox created
 * from a warm template gets the lockfile among its files and node_modules hardlinked in (instant;
 * npm replaces files rather than writing into them, and the supervisor writes its stamp anew).
 * `fingerprint` is a hash of the template's files: a changed template makes the cache stale.
 */
export class TemplateCache {
  private readonly harvesting = new Map<string, Promise<boolean>>();

  constructor(
    private readonly deps: { config: Pick<Config, 'dataDir' | 'images'>; log: Logger; root?: string },
  ) {}

  dir(name: TemplateName): string {
    return resolve(this.deps.config.dataDir, 'cache', 'templates', name);
  }

  /** The files of a new sandbox from `name`: the template's, plus the cached lockfile when warm. */
  async filesFor(name: string): Promise<{ files: Record<string, string>; warm: boolean }> {
    const files = await templateFiles(name, this.deps.root ?? templatesRoot());
    const template = name as TemplateName;
    if (!nodeTemplates.includes(template) || !(await this.fresh(template, files)))
      return { files, warm: false };
    const lock = await readFile(join(this.dir(template), LOCKFILE), 'utf8').catch(() => undefined);
    if (lock === undefined) return { files, warm: false };
    return { files: { ...files, [LOCKFILE]: lock }, warm: true };
  }

  /** Whether the cache of `name` was built from these template files. */
  async fresh(name: TemplateName, files?: Record<string, string>): Promise<boolean> {
    const current = files ?? (await templateFiles(name, this.deps.root ?? templatesRoot()));
    const stored = await readFile(join(this.dir(name), 'fingerprint'), 'utf8').catch(() => undefined);
    return (
      stored?.trim() === templateFingerprint(current) && existsSync(join(this.dir(name), 'node_modules'))
    );
  }

  /** Hardlinks the cached node_modules into a workspace (host path) that has none. */
  async seed(name: TemplateName, workspaceRoot: string): Promise<void> {
    const target = join(workspaceRoot, 'node_modules');
    if (existsSync(target)) return;
    await run('cp', ['-al', join(this.dir(name), 'node_modules'), target]);
  }

  /**
   * Copies a workspace's installed node_modules into the cache of `name` (once: a fresh cache is
   * kept). The workspace's dependency files must be the template's (checked by the stamp the
   * supervisor left). Returns whether the cache was written.
   */
  harvest(name: TemplateName, workspaceRoot: string): Promise<boolean> {
    const pending = this.harvesting.get(name);
    if (pending) return pending;
    const work = this.harvestOnce(name, workspaceRoot).finally(() => this.harvesting.delete(name));
    this.harvesting.set(name, work);
    return work;
  }

  /**
   * The workspace is the sandbox's: everything read from it is read without following links and
   * without blocking (safe-read.ts), and what is copied out of it is checked once copied (the copy
   * is previewd's, the sandbox cannot change it any more).
   */
  private async harvestOnce(name: TemplateName, workspaceRoot: string): Promise<boolean> {
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
    const final = this.dir(name);
    const tmp = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { recursive: true });
    try {
      // cp -a copies a link given on its command line as a link: swapped meanwhile, it is caught below.
      await run('cp', ['-a', modules, join(tmp, 'node_modules')]);
      if (!(await lstat(join(tmp, 'node_modules'))).isDirectory()) {
        throw new Error(`${name}: node_modules of the workspace is not a directory`);
      }
      // Vite's pre-bundled deps belong to one dev server run.
      await rm(join(tmp, 'node_modules', '.vite'), { recursive: true, force: true });
      // The copied stamp may be a link the sandbox planted: removed, then created anew (never followed).
      const stamp = join(tmp, 'node_modules', STAMP);
      await rm(stamp, { force: true });
      await writeFile(stamp, `${installStamp(next.install, withLock)}\n`, { flag: 'wx' });
      await chown(stamp, 1000, 1000).catch(() => undefined);
      await writeFile(join(tmp, LOCKFILE), lock);
      await writeFile(join(tmp, 'fingerprint'), `${templateFingerprint(files)}\n`);
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      this.deps.log.info({ template: name }, 'template dependencies cached');
      return true;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Waits (bounded) until the supervisor of a sandbox created from a cold Node template reports
   * its install done, then harvests its node_modules: the first use warms the cache.
   */
  async harvestWhenInstalled(
    name: TemplateName,
    sandboxId: string,
    provider: SandboxProvider,
    timeoutMs = 15 * 60_000,
  ): Promise<boolean> {
    if (!nodeTemplates.includes(name) || !provider.appStatus) return false;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const status = await provider.appStatus(sandboxId).catch(() => undefined);
      if (status?.state === 'running') return this.harvest(name, provider.files(sandboxId).root);
      if (status?.state === 'failed' || status?.state === 'stopped') return false;
      if (!existsSync(provider.files(sandboxId).root)) return false; // deleted meanwhile
      await new Promise((r) => setTimeout(r, 500));
    }
    return false;
  }
}
