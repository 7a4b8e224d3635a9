import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PreviewdError } from '@previewd/sdk';
import { pack } from 'tar-stream';

/** Folders never uploaded: installed dependencies, VCS data and caches are rebuilt in the sandbox. */
const SKIPPED_DIRS = new Set(['node_modules', '.git', '.venv', 'venv', '__pycache__', '.next', '.cache']);
const MAX_FILES = 5000;
const MAX_BYTES = 48 * 1024 * 1024;

export interface ProjectFile {
  path: string;
  content: Buffer;
  mode: number;
}

export interface ProjectArchive {
  /** The project as one tar.gz, the body of the create (binary files included). */
  archive: Buffer;
  files: number;
  bytes: number;
}

/**
 * Reads a local project folder for `create <dir>` (and `up`): regular files (and links to files,
 * read as the file), without SKIPPED_DIRS, those `keep` refuses, or more than 5000 files / 48 MiB.
 */
export function readProjectFiles(dir: string, keep: (path: string) => boolean = () => true): ProjectFile[] {
  const out: ProjectFile[] = [];
  let bytes = 0;
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      const path = relative(dir, full).split(sep).join('/');
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(full);
        continue;
      }
      const info =
        entry.isFile() || entry.isSymbolicLink() ? statSync(full, { throwIfNoEntry: false }) : undefined;
      if (!info?.isFile() || !keep(path)) continue;
      const content = readFileSync(full);
      bytes += content.length;
      if (out.length + 1 > MAX_FILES || bytes > MAX_BYTES) {
        throw new PreviewdError('payload_too_large', `${dir} holds more than ${MAX_FILES} files or 48 MiB`, {
          hint: 'Create the sandbox from a smaller folder, then add files with previewd files put.',
        });
      }
      out.push({ path, content, mode: info.mode & 0o777 });
    }
  };
  walk(dir);
  return out;
}

/** The project folder as one tar.gz, so every file is in the workspace before the app starts. */
export async function packProject(dir: string, keep?: (path: string) => boolean): Promise<ProjectArchive> {
  const files = readProjectFiles(dir, keep);
  const tar = pack();
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of tar) parts.push(chunk as Buffer);
  })();
  for (const file of files) {
    await new Promise<void>((resolve, reject) =>
      tar.entry({ name: file.path, mode: file.mode, size: file.content.length }, file.content, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  tar.finalize();
  await collected;
  return {
    archive: gzipSync(Buffer.concat(parts)),
    files: files.length,
    bytes: files.reduce((n, f) => n + f.content.length, 0),
  };
}
