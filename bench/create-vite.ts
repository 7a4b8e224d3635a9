/**
 * Projects no one here wrote: the templates of npm's `create-vite`, fetched at bench time with
 * `npm pack create-vite` (never committed), each given a lockfile the way a user's project has one
 * (`npm install --package-lock-only` on this host, nothing installed), then packed as the tar.gz
 * body a `POST /v1/sandboxes` takes (docs/sources.md) — the same body `previewd create <dir>` sends.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ViteProject {
  /** The create-vite template, e.g. `react`. */
  name: string;
  /** create-vite's version the project came from. */
  version: string;
  dir: string;
  /** The project as a tar.gz body. */
  archive: Buffer;
  /** A module of the project's own the dev server must transform (proves the dependencies resolve). */
  module: string;
}

export interface ViteProjects {
  projects: ViteProject[];
  /** Removes the fetched files. */
  dispose(): Promise<void>;
}

/** `npm pack create-vite` into a temporary folder, then the named templates as projects with lockfiles. */
export async function fetchViteProjects(names: string[]): Promise<ViteProjects> {
  const root = await mkdtemp(join(tmpdir(), 'previewd-bench-create-vite-'));
  try {
    const { stdout } = await run('npm', ['pack', 'create-vite', '--silent', '--pack-destination', root], {
      cwd: root,
    });
    const tarball = stdout.trim().split('\n').at(-1) ?? '';
    await run('tar', ['-xzf', join(root, tarball), '-C', root]);
    const version = JSON.parse(await readFile(join(root, 'package', 'package.json'), 'utf8'))
      .version as string;
    const projects: ViteProject[] = [];
    for (const name of names) {
      const dir = join(root, 'package', `template-${name}`);
      // create-vite renames `_gitignore` when it scaffolds; a user's project has `.gitignore`.
      for (const entry of await readdir(dir)) {
        if (entry.startsWith('_')) await rename(join(dir, entry), join(dir, `.${entry.slice(1)}`));
      }
      const pkgPath = join(dir, 'package.json');
      const pkg = JSON.parse(await readFile(pkgPath, 'utf8'));
      pkg.name = `bench-${name}`;
      await writeFile(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
      await run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        timeout: 300_000,
      });
      const src = await readdir(join(dir, 'src')).catch(() => [] as string[]);
      const main =
        src.find((f) => /^main\.(jsx?|tsx?)$/.test(f)) ??
        src.find((f) => /\.(jsx?|tsx?|vue|svelte)$/.test(f));
      const archive = (
        await run('tar', ['-czf', '-', '-C', dir, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 })
      ).stdout as Buffer;
      projects.push({ name, version, dir, archive, module: main ? `/src/${main}` : '/' });
    }
    return { projects, dispose: () => rm(root, { recursive: true, force: true }) };
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The project under another name — package.json and package-lock.json, as `npm install` leaves
 * them for an app scaffolded under that name: another app with the same dependencies.
 */
export async function renamedArchive(project: ViteProject, name: string): Promise<Buffer> {
  const copy = await mkdtemp(join(tmpdir(), 'previewd-bench-project-'));
  try {
    await run('cp', ['-a', `${project.dir}/.`, copy]);
    const pkgPath = join(copy, 'package.json');
    const pkg = JSON.parse(await readFile(pkgPath, 'utf8'));
    pkg.name = name;
    await writeFile(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
    const lockPath = join(copy, 'package-lock.json');
    const lock = JSON.parse(await readFile(lockPath, 'utf8'));
    lock.name = name;
    if (lock.packages?.['']) lock.packages[''].name = name;
    await writeFile(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
    return (await run('tar', ['-czf', '-', '-C', copy, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 }))
      .stdout as Buffer;
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}
