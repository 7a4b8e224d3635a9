import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import { PreviewdError } from '../domain/errors.js';
import type { FileEntry, WorkspaceFiles } from './workspace-fs.js';

/**
 * Streams a tar of a workspace directory (or one file). Entries are named relative to `path`;
 * symlinks are stored as links (never followed), so nothing outside the workspace is read.
 */
export async function packWorkspace(files: WorkspaceFiles, path: string): Promise<Readable> {
  // Like list: a link given as the path is followed (and refused when it leads outside).
  const { rel } = await files.resolve(path);
  const root = await files.stat(rel.join('/'));
  const tar = pack();
  const base = root.path;
  const nameOf = (entry: FileEntry) =>
    base === '' ? entry.path : posix.relative(base, entry.path) || posix.basename(entry.path);
  const entries =
    root.type === 'directory' ? await files.list(base, { recursive: true, limit: 1_000_000 }) : [root];
  void (async () => {
    for (const entry of entries) {
      const header = {
        name: nameOf(entry),
        mode: Number.parseInt(entry.mode, 8),
        mtime: new Date(entry.mtime),
      };
      if (entry.type === 'directory') {
        tar.entry({ ...header, type: 'directory' });
      } else if (entry.type === 'symlink') {
        tar.entry({ ...header, type: 'symlink', linkname: entry.target ?? '' });
      } else if (entry.type === 'file') {
        const opened = await files.openRead(entry.path).catch(() => undefined);
        if (!opened) continue; // vanished or replaced meanwhile
        const sink = tar.entry({ ...header, type: 'file', size: opened.entry.size });
        await pipeline(opened.stream, sink);
      }
    }
    tar.finalize();
  })().catch((err) => tar.destroy(err as Error));
  return tar as unknown as Readable;
}

export interface ExtractReport {
  written: FileEntry[];
  /** Entries not written (links, devices), with the reason. */
  skipped: { path: string; reason: string }[];
}

/**
 * Writes a tar stream into the workspace under `into`: regular files and directories only, each
 * through WorkspaceFiles (so every path is checked like a single write). Links are skipped.
 */
export async function extractIntoWorkspace(
  files: WorkspaceFiles,
  into: string,
  source: Readable,
  limits: { maxEntries?: number } = {},
): Promise<ExtractReport> {
  const report: ExtractReport = { written: [], skipped: [] };
  const maxEntries = limits.maxEntries ?? 100_000;
  const tar = extract();
  let count = 0;
  const done = (async () => {
    for await (const entry of tar) {
      const name = entry.header.name.replace(/^\.\//, '');
      try {
        // Each name must stay inside `into` on its own (no "../" entries, no absolute names).
        const rel = files.segments(name.startsWith('/') ? `.${name}` : name).join('/');
        const target = into ? `${into}/${rel}` : rel;
        if (++count > maxEntries) {
          throw new PreviewdError('payload_too_large', `the archive has more than ${maxEntries} entries`);
        }
        if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
          const mode = entry.header.mode !== undefined ? entry.header.mode & 0o777 : undefined;
          report.written.push(
            await files.write(target, entry as AsyncIterable<Uint8Array>, mode ? { mode } : {}),
          );
        } else if (entry.header.type === 'directory') {
          if (files.relative(target) !== '') await files.mkdir(target);
        } else {
          report.skipped.push({ path: name, reason: `${entry.header.type} entries are not extracted` });
        }
      } finally {
        entry.resume();
      }
    }
  })();
  await Promise.all([
    pipeline(source, tar).catch((err) => {
      if (err instanceof PreviewdError) throw err;
      throw new PreviewdError(
        'invalid_request',
        `the body is not a valid tar stream: ${(err as Error).message}`,
      );
    }),
    done,
  ]);
  return report;
}
