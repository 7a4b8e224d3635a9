import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PreviewdError } from '../domain/errors.js';
import { templateNameSchema } from '../domain/schemas.js';

/** The templates a sandbox can be created from (`template` in the create request). */
export const templateNames = templateNameSchema.options;
export type TemplateName = (typeof templateNames)[number];

/** Templates whose dependencies come from npm (worth a warm cache); the Python ones use the image's. */
export const nodeTemplates: readonly TemplateName[] = ['vite-react', 'vite-vue', 'next', 'express'];

export function isTemplateName(name: string): name is TemplateName {
  return (templateNames as readonly string[]).includes(name);
}

/** The repository's templates/ folder: one real, minimal app per template. */
export function templatesRoot(): string {
  const candidates = [fileURLToPath(new URL('../../templates', import.meta.url)), resolve('templates')];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

/** The files of a template (workspace path → content). Unknown names are invalid_request. */
export async function templateFiles(name: string, root = templatesRoot()): Promise<Record<string, string>> {
  if (!isTemplateName(name)) {
    throw new PreviewdError('invalid_request', `unknown template "${name}"`, {
      hint: `Templates: ${templateNames.join(', ')}.`,
      details: { field: 'template', allowed: templateNames },
    });
  }
  const dir = join(root, name);
  const files: Record<string, string> = {};
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === '.git') continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files[relative(dir, path)] = await readFile(path, 'utf8');
    }
  };
  await walk(dir);
  return files;
}

/** The files runtime/supervisor.sh hashes, in its order. */
const STAMPED_FILES = [
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
 * The install stamp the supervisor computes (runtime/supervisor.sh `install_hash`): the install
 * command and the dependency files. A node_modules carrying it is not installed again.
 */
export function installStamp(install: string, files: Record<string, string | Buffer>): string {
  const hash = createHash('sha256').update(`${install}\n`);
  for (const name of STAMPED_FILES) {
    const content = files[name];
    if (content === undefined) continue;
    hash.update(`== ${name}\n`).update(content);
  }
  return hash.digest('hex');
}

/** A fingerprint of a template's files: a cache built from other files is stale. */
export function templateFingerprint(files: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const path of Object.keys(files).sort()) hash.update(`${path}\0${files[path]}\0`);
  return hash.digest('hex');
}
