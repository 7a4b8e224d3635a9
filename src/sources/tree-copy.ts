import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PreviewdError } from '../domain/errors.js';
import type { WorkspaceFiles } from '../providers/workspace-fs.js';
import { leavesWorkspace, linkLeavesWorkspace } from './link-policy.js';

/** What a folder of previewd's own (a fresh clone) holds, checked before anything is copied. */
export interface TreeScan {
  files: { path: string; mode: number }[];
  dirs: string[];
  /** Links that stay inside: not copied (the files API makes no links), reported. */
  links: string[];
  bytes: number;
}

/**
 * Walks `root` without following links: regular files and directories are kept; a link pointing
 * outside the workspace refuses the whole tree (`invalid_path`), as do more than `maxEntries`
 * entries or `maxBytes` bytes; other kinds (FIFOs, devices) are left out. Names in `skip` (at any
 * depth: `.git` folders and submodules' `.git` files) are not copied.
 */
export async function scanTree(
  root: string,
  limits: { maxEntries: number; maxBytes: number; skip: string[] },
): Promise<TreeScan> {
  const scan: TreeScan = { files: [], dirs: [], links: [], bytes: 0 };
  let entries = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (limits.skip.includes(entry.name)) continue;
      if (++entries > limits.maxEntries) {
        throw new PreviewdError(
          'payload_too_large',
          `the repository has more than ${limits.maxEntries} entries`,
        );
      }
      const full = join(dir, entry.name);
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const info = await lstat(full);
      if (info.isSymbolicLink()) {
        if (linkLeavesWorkspace(path, await readlink(full))) throw leavesWorkspace(path, 'the link');
        scan.links.push(path);
      } else if (info.isDirectory()) {
        scan.dirs.push(path);
        await walk(full, path);
      } else if (info.isFile()) {
        scan.bytes += info.size;
        if (scan.bytes > limits.maxBytes) {
          throw new PreviewdError(
            'payload_too_large',
            `the repository holds more than ${limits.maxBytes} bytes`,
          );
        }
        scan.files.push({ path, mode: info.mode & 0o777 });
      }
    }
  };
  await walk(root, '');
  return scan;
}

/** Copies a scanned tree into the workspace (each path through WorkspaceFiles); the paths written. */
export async function copyTree(root: string, scan: TreeScan, files: WorkspaceFiles): Promise<string[]> {
  for (const dir of scan.dirs) await files.mkdir(dir);
  const written: string[] = [];
  for (const file of scan.files) {
    const entry = await files.write(file.path, createReadStream(join(root, file.path)), { mode: file.mode });
    written.push(entry.path);
  }
  return written;
}
