import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, open, readlink, rename, rmdir, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { PreviewdError } from '../domain/errors.js';
import { exactly, utf8Pieces } from './file-content.js';
import {
  kindOf,
  notRegularFile,
  openError,
  openRegularFile,
  readCapped,
  SAFE_READ_FLAGS,
  SAFE_WRITE_FLAGS,
} from './safe-read.js';
import { entryOf, type FileEntry } from './workspace-entry.js';
import {
  type LocateOptions,
  type Location,
  locate,
  makeOwnedDir,
  notFound,
  type Owner,
} from './workspace-handles.js';
import { listAll } from './workspace-listing.js';
import { removeTree } from './workspace-remove.js';
import { DIRECTORY_FLAGS } from './workspace-walk.js';

export type { FileEntry } from './workspace-entry.js';

function invalid(message: string, status: 'bad' | 'forbidden' = 'bad'): PreviewdError {
  return new PreviewdError(
    'invalid_path',
    message,
    status === 'forbidden' ? { details: { reason: 'outside_workspace' } } : {},
  );
}

/**
 * A sandbox's workspace as a directory on the host, seen with the container's eyes: paths are
 * relative to `/workspace`, and symlinks planted inside the sandbox are followed only within it.
 * Every operation walks from the root's descriptor and acts through the descriptor of the last
 * directory (workspace-handles.ts), never through a host path name sandbox code can change, so a
 * link swapped in mid-operation cannot redirect it outside. What it creates belongs to `owner`,
 * the sandbox's own uid/gid (fchown on the new file's handle).
 */
export class WorkspaceFiles {
  constructor(
    readonly root: string,
    readonly owner: Owner,
    readonly mountPoint = '/workspace',
  ) {}

  /** Splits a user path into workspace-relative segments, refusing anything that leaves the workspace. */
  segments(userPath: string): string[] {
    if (typeof userPath !== 'string') throw invalid('path must be a string');
    if (userPath.includes('\0')) throw invalid('path contains a NUL byte');
    if (userPath.length > 4096) throw invalid('path is longer than 4096 characters');
    let p = userPath.replaceAll('\\', '/');
    if (p.startsWith('/')) {
      if (p === this.mountPoint || p.startsWith(`${this.mountPoint}/`)) p = p.slice(this.mountPoint.length);
      else throw invalid(`absolute path ${userPath} is outside ${this.mountPoint}`, 'forbidden');
    }
    const out: string[] = [];
    for (const seg of p.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (out.length === 0) throw invalid(`path ${userPath} leaves the workspace`, 'forbidden');
        out.pop();
        continue;
      }
      if (seg.length > 255) throw invalid('a path segment is longer than 255 characters');
      out.push(seg);
    }
    return out;
  }

  /** Canonical workspace-relative form ("" for the root). */
  relative(userPath: string): string {
    return this.segments(userPath).join('/');
  }

  /** Walks a path from the root through descriptors (workspace-handles.ts). The caller closes it. */
  private locate(userPath: string, opts: LocateOptions = {}): Promise<Location> {
    return locate(this.root, this.mountPoint, this.segments(userPath), userPath, opts);
  }

  /** The workspace-relative segments a path resolves to (links inside the workspace followed). */
  async resolve(userPath: string): Promise<{ rel: string[] }> {
    const loc = await this.locate(userPath);
    await loc.close();
    return { rel: loc.rel };
  }

  async write(
    userPath: string,
    data: Buffer | string | AsyncIterable<Uint8Array>,
    opts: { mode?: number } = {},
  ): Promise<FileEntry> {
    const loc = await this.locate(userPath, { createParents: this.owner });
    try {
      if (loc.rel.length === 0) throw invalid('cannot write to the workspace root');
      if (loc.name === '') throw invalid(`${userPath} is a directory`);
      // O_NONBLOCK: a FIFO put there fails (ENXIO) or opens at once instead of waiting for a reader.
      const flags = constants.O_WRONLY | SAFE_WRITE_FLAGS;
      const refuse = (err: NodeJS.ErrnoException) => {
        if (err.code === 'ELOOP')
          throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
        if (err.code === 'EISDIR') throw invalid(`${userPath} is a directory`);
        if (err.code === 'ENXIO') throw notRegularFile(userPath, 'other');
        // Its directory was removed after the walk reached it.
        if (err.code === 'ENOENT') throw notFound(userPath);
        throw err;
      };
      // Made by this call (O_EXCL), or opened as it is without O_CREAT: a file removed between
      // the two opens is made again by the first, never created unowned by the second.
      let handle: FileHandle | undefined;
      let created = false;
      for (let attempt = 0; !handle; attempt++) {
        handle = await open(loc.path, flags | constants.O_CREAT | constants.O_EXCL, opts.mode ?? 0o644).catch(
          (err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? undefined : refuse(err)),
        );
        if (handle) {
          created = true;
          // The file this call made is the sandbox's before a byte is written.
          await handle.chown(this.owner.uid, this.owner.gid);
          break;
        }
        handle = await open(loc.path, flags).catch((err: NodeJS.ErrnoException) =>
          err.code === 'ENOENT' && attempt < 8 ? undefined : refuse(err),
        );
      }
      try {
        const before = await handle.stat();
        if (!before.isFile()) throw notRegularFile(userPath, kindOf(before));
        if (!created) await handle.truncate(0);
        if (typeof data === 'string') {
          for (const piece of utf8Pieces(data)) await handle.write(piece);
        } else if (Buffer.isBuffer(data)) {
          await handle.writeFile(data);
        } else {
          for await (const chunk of data) await handle.write(chunk);
        }
        if (opts.mode !== undefined) await handle.chmod(opts.mode);
        return entryOf(loc.rel.join('/'), await handle.stat());
      } finally {
        await handle.close();
      }
    } finally {
      await loc.close();
    }
  }

  /** A file's content in memory, up to `maxBytes` (default 64 MiB; past it `file_too_large`). Routes stream instead. */
  async read(userPath: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    const { handle } = await this.openFile(userPath);
    try {
      return await readCapped(handle, opts.maxBytes ?? 64 * 1024 * 1024, userPath);
    } finally {
      await handle.close();
    }
  }

  /**
   * Opens a regular file for reading (safe-read.ts: never blocks on a FIFO, no link followed by the
   * kernel) through its parent's descriptor. The caller owns the handle.
   */
  private async openFile(
    userPath: string,
    opts: { noLinks?: boolean } = {},
  ): Promise<{ handle: FileHandle; st: Stats; rel: string[] }> {
    const loc = await this.locate(userPath, opts);
    try {
      const { handle, stats } = await openRegularFile(loc.path, {
        label: userPath,
        allow: (st) => {
          if (st.isDirectory()) throw invalid(`${userPath} is a directory; list it with files/list`);
        },
      }).catch((err) => {
        if (err instanceof PreviewdError && err.code === 'not_a_regular_file') {
          const type = (err.details as { type?: string } | undefined)?.type;
          if (type === 'symlink')
            throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
        }
        throw err;
      });
      return { handle, st: stats, rel: loc.rel };
    } finally {
      await loc.close();
    }
  }

  /**
   * Opens a directory for a walk: links inside the workspace followed up to it (through
   * descriptors), the directory itself opened with O_NOFOLLOW. The caller owns the handle.
   */
  async openDirectory(userPath: string): Promise<{ handle: FileHandle; rel: string }> {
    const loc = await this.locate(userPath);
    try {
      const handle = await open(loc.path, DIRECTORY_FLAGS).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw notFound(userPath);
        if (err.code === 'ENOTDIR') throw invalid(`${userPath} is not a directory`);
        if (err.code === 'ELOOP')
          throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
        throw err;
      });
      return { handle, rel: loc.rel.join('/') };
    } finally {
      await loc.close();
    }
  }

  async stat(userPath: string): Promise<FileEntry> {
    const loc = await this.locate(userPath, { followFinal: false });
    try {
      return await describe(loc, userPath);
    } finally {
      await loc.close();
    }
  }

  async exists(userPath: string): Promise<boolean> {
    try {
      await this.stat(userPath);
      return true;
    } catch (err) {
      if (err instanceof PreviewdError && err.code === 'file_not_found') return false;
      throw err;
    }
  }

  /**
   * The entries of a directory (all of them below it with `recursive`), as one array: for
   * previewd's own use (the archive). The files API pages instead (workspace-listing.ts).
   */
  list(userPath = '', opts: { recursive?: boolean; limit?: number } = {}): Promise<FileEntry[]> {
    return listAll(this, userPath, opts);
  }

  /** Opens a regular file for streaming, checked like `read`; `noLinks` refuses any link on the way. */
  async openRead(
    userPath: string,
    opts: { noLinks?: boolean } = {},
  ): Promise<{ stream: Readable; entry: FileEntry }> {
    const { handle, st, rel } = await this.openFile(userPath, opts);
    return { stream: exactly(handle, st.size, userPath), entry: entryOf(rel.join('/'), st) };
  }

  /** Creates a directory with its parents, each one the sandbox's (fchown on the new directory's handle). */
  async mkdir(userPath: string): Promise<FileEntry> {
    const loc = await this.locate(userPath, { createParents: this.owner });
    try {
      if (loc.name !== '') await makeOwnedDir(loc.parent, loc.name, this.owner, userPath);
      const handle = await open(loc.path, DIRECTORY_FLAGS).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOTDIR') throw invalid(`${userPath} is not a directory`);
        if (err.code === 'ELOOP')
          throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
        if (err.code === 'ENOENT') throw notFound(userPath);
        throw err;
      });
      try {
        return entryOf(loc.rel.join('/'), await handle.stat());
      } finally {
        await handle.close();
      }
    } finally {
      await loc.close();
    }
  }

  /** Removes a file, a link (never its target), an empty directory, or a tree with `recursive`. */
  async remove(userPath: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const loc = await this.locate(userPath, { followFinal: false });
    try {
      if (loc.rel.length === 0) throw invalid('cannot delete the workspace root');
      const st = await lstat(loc.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw notFound(userPath);
        throw err;
      });
      if (opts.recursive) return await removeTree(loc.parent, loc.name, userPath);
      if (!st.isDirectory()) {
        await unlink(loc.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') throw notFound(userPath);
          if (err.code === 'EISDIR' || err.code === 'EPERM') throw notEmpty(userPath);
          throw err;
        });
        return;
      }
      // rmdir refuses a directory with entries: one call, however many it holds.
      await rmdir(loc.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw notFound(userPath);
        if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw notEmpty(userPath);
        if (err.code === 'ENOTDIR') throw invalid(`${userPath} changed while it was deleted; try again`);
        throw err;
      });
    } finally {
      await loc.close();
    }
  }

  /** Renames through both parents' descriptors (parents of `to` created); a link at `to` is replaced. */
  async move(from: string, to: string): Promise<FileEntry> {
    if (this.segments(from).length === 0 || this.segments(to).length === 0)
      throw invalid('cannot move the workspace root');
    const src = await this.locate(from, { followFinal: false });
    try {
      await lstat(src.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw notFound(from);
        throw err;
      });
      const dst = await this.locate(to, { followFinal: false, createParents: this.owner });
      try {
        await rename(src.path, dst.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') throw notFound(from);
          if (err.code === 'EINVAL') throw invalid(`cannot move ${from} into itself`);
          if (
            err.code === 'ENOTDIR' ||
            err.code === 'EISDIR' ||
            err.code === 'ENOTEMPTY' ||
            err.code === 'EEXIST'
          )
            throw invalid(`cannot move ${from} onto ${to}: ${err.code}`);
          throw err;
        });
        return await describe(dst, to);
      } finally {
        await dst.close();
      }
    } finally {
      await src.close();
    }
  }

  /** Changes the mode through a descriptor opened without following a link (fchmod, never chmod by path). */
  async chmod(userPath: string, mode: number): Promise<FileEntry> {
    const loc = await this.locate(userPath);
    try {
      // Read-only and non-blocking: the descriptor only carries the chmod (a FIFO must not hold it).
      const handle = await open(loc.path, SAFE_READ_FLAGS).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ELOOP')
          throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
        throw openError(err, userPath);
      });
      try {
        await handle.chmod(mode & 0o7777);
        return entryOf(loc.rel.join('/'), await handle.stat());
      } finally {
        await handle.close();
      }
    } finally {
      await loc.close();
    }
  }
}

function notEmpty(userPath: string): PreviewdError {
  return invalid(`${userPath} is a directory that is not empty; pass recursive=true`);
}

/** The entry at a location, a link described (with its target), not followed. */
async function describe(loc: Location, label: string, tries = 8): Promise<FileEntry> {
  const st = await lstat(loc.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw notFound(label);
    throw err;
  });
  const entry = entryOf(loc.rel.join('/'), st);
  if (st.isSymbolicLink()) {
    const target = await readlink(loc.path).catch((err: NodeJS.ErrnoException) => {
      // No longer a link (replaced since the lstat): described again, a few times.
      if (err.code !== 'EINVAL' && err.code !== 'ENOENT') throw err;
      if (tries > 1) return undefined;
      throw invalid(`${label} kept changing while it was looked at; try again`);
    });
    if (target === undefined) return describe(loc, label, tries - 1);
    entry.target = target;
  }
  return entry;
}
