import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { chown, lstat, mkdir, open, opendir, readlink, realpath, rename, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { PreviewdError } from '../domain/errors.js';
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
import { listAll } from './workspace-listing.js';
import { DIRECTORY_FLAGS } from './workspace-walk.js';

export type { FileEntry } from './workspace-entry.js';

const MAX_LINK_HOPS = 40;

/**
 * A string as UTF-8 in pieces of about 1 MiB, so a big file content (create bodies reach 64 MB) is
 * not encoded in one go on the event loop. A piece never ends between the halves of a surrogate pair.
 */
function* utf8Pieces(text: string, size = 1024 * 1024): Generator<Buffer> {
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield Buffer.from(text.slice(start, end), 'utf8');
    start = end;
  }
}

function invalid(message: string, status: 'bad' | 'forbidden' = 'bad'): PreviewdError {
  return new PreviewdError(
    'invalid_path',
    message,
    status === 'forbidden' ? { details: { reason: 'outside_workspace' } } : {},
  );
}

/**
 * A sandbox's workspace as a directory on the host, seen with the container's eyes: paths are
 * relative to `/workspace`, symlinks planted inside the sandbox are resolved as the container would
 * resolve them and refused when they lead outside, and every open is checked again through
 * /proc/self/fd so a link swapped in between check and use cannot redirect a read or a write.
 */
export class WorkspaceFiles {
  private realRoot?: string;

  constructor(
    readonly root: string,
    private readonly owner: { uid: number; gid: number },
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

  private async rootReal(): Promise<string> {
    this.realRoot ??= await realpath(this.root);
    return this.realRoot;
  }

  /**
   * Resolves a user path to a host path inside the workspace, following symlinks with container
   * semantics. Missing trailing segments are kept as they are (for creation).
   */
  async resolve(
    userPath: string,
    opts: { followFinal?: boolean } = {},
  ): Promise<{ host: string; rel: string[] }> {
    const followFinal = opts.followFinal ?? true;
    let pending = this.segments(userPath);
    const resolved: string[] = [];
    let hops = 0;
    let missing = false;
    while (pending.length > 0) {
      const seg = pending[0]!;
      pending = pending.slice(1);
      if (seg === '..') {
        if (resolved.length === 0)
          throw invalid(`path ${userPath} leads outside the workspace through a symlink`, 'forbidden');
        resolved.pop();
        continue;
      }
      if (missing) {
        resolved.push(seg);
        continue;
      }
      const hostPath = join(this.root, ...resolved, seg);
      let st: Stats;
      try {
        st = await lstat(hostPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          missing = true;
          resolved.push(seg);
          continue;
        }
        throw err;
      }
      if (st.isSymbolicLink() && (pending.length > 0 || followFinal)) {
        if (++hops > MAX_LINK_HOPS) throw invalid(`too many levels of symlinks in ${userPath}`);
        const target = await readlink(hostPath);
        let targetSegs: string[];
        if (target.startsWith('/')) {
          if (target !== this.mountPoint && !target.startsWith(`${this.mountPoint}/`)) {
            throw invalid(`path ${userPath} leads outside the workspace through a symlink`, 'forbidden');
          }
          resolved.length = 0;
          targetSegs = target.slice(this.mountPoint.length).split('/');
        } else {
          targetSegs = target.split('/');
        }
        pending = [...targetSegs.filter((s) => s !== '' && s !== '.'), ...pending];
        continue;
      }
      if (pending.length > 0 && !st.isDirectory()) {
        throw new PreviewdError('invalid_path', `${[...resolved, seg].join('/')} is not a directory`);
      }
      resolved.push(seg);
    }
    return { host: join(this.root, ...resolved), rel: resolved };
  }

  /** Confirms that an open file descriptor really lies inside the workspace. */
  private async assertFdInside(
    fd: number,
    userPath: string,
    onOutside?: (real: string) => Promise<void>,
  ): Promise<void> {
    const real = await realpath(`/proc/self/fd/${fd}`);
    const root = await this.rootReal();
    if (real !== root && !real.startsWith(`${root}${sep}`)) {
      await onOutside?.(real);
      throw invalid(`path ${userPath} leads outside the workspace`, 'forbidden');
    }
  }

  /** Creates each missing directory of `rel` (workspace-relative, already resolved), owned by the sandbox user. */
  private async mkdirs(rel: string[]): Promise<void> {
    let current = this.root;
    for (const seg of rel) {
      current = join(current, seg);
      try {
        await mkdir(current);
        await chown(current, this.owner.uid, this.owner.gid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await lstat(current);
        if (!st.isDirectory()) throw new PreviewdError('invalid_path', `${seg} is not a directory`);
      }
    }
  }

  async write(
    userPath: string,
    data: Buffer | string | AsyncIterable<Uint8Array>,
    opts: { mode?: number } = {},
  ): Promise<FileEntry> {
    const { host, rel } = await this.resolve(userPath);
    if (rel.length === 0) throw invalid('cannot write to the workspace root');
    await this.mkdirs(rel.slice(0, -1));
    // O_NONBLOCK: a FIFO put there fails (ENXIO) or opens at once instead of waiting for a reader.
    const flags = constants.O_WRONLY | constants.O_CREAT | SAFE_WRITE_FLAGS;
    const refuse = (err: NodeJS.ErrnoException) => {
      if (err.code === 'ELOOP')
        throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
      if (err.code === 'EISDIR') throw invalid(`${userPath} is a directory`);
      if (err.code === 'ENXIO') throw notRegularFile(userPath, 'other');
      throw err;
    };
    let handle = await open(host, flags | constants.O_EXCL, opts.mode ?? 0o644).catch(
      (err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? undefined : refuse(err)),
    );
    const created = handle !== undefined;
    handle ??= await open(host, flags).catch(refuse);
    try {
      // A file this call created in the wrong place (a directory swapped for a link mid-way) is removed again.
      await this.assertFdInside(handle.fd, userPath, async (real) => {
        if (created) await rm(real, { force: true }).catch(() => undefined);
      });
      const before = await handle.stat();
      if (!before.isFile()) throw notRegularFile(userPath, kindOf(before));
      await handle.truncate(0);
      if (typeof data === 'string') {
        for (const piece of utf8Pieces(data)) await handle.write(piece);
      } else if (Buffer.isBuffer(data)) {
        await handle.writeFile(data);
      } else {
        for await (const chunk of data) await handle.write(chunk);
      }
      if (created) await handle.chown(this.owner.uid, this.owner.gid);
      if (opts.mode !== undefined) await handle.chmod(opts.mode);
      const st = await handle.stat();
      return entryOf(rel.join('/'), st);
    } finally {
      await handle.close();
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
   * Opens a regular file for reading (safe-read.ts: never blocks on a FIFO, no link followed at the
   * last step), the descriptor checked to lie inside the workspace. The caller owns the handle.
   */
  private async openFile(userPath: string): Promise<{ handle: FileHandle; st: Stats; rel: string[] }> {
    const { host, rel } = await this.resolve(userPath);
    const { handle, stats } = await openRegularFile(host, {
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
    try {
      await this.assertFdInside(handle.fd, userPath);
      return { handle, st: stats, rel };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Opens a directory for a walk: links resolved with container semantics up to it, none followed
   * at the last step, the descriptor checked to lie inside the workspace. The caller owns the handle.
   */
  async openDirectory(userPath: string): Promise<{ handle: FileHandle; rel: string }> {
    const { host, rel } = await this.resolve(userPath);
    const handle = await open(host, DIRECTORY_FLAGS).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT')
        throw new PreviewdError('file_not_found', `${userPath || '/'} does not exist`);
      if (err.code === 'ENOTDIR') throw invalid(`${userPath} is not a directory`);
      if (err.code === 'ELOOP')
        throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
      throw err;
    });
    try {
      await this.assertFdInside(handle.fd, userPath);
      return { handle, rel: rel.join('/') };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(userPath: string): Promise<FileEntry> {
    const { host, rel } = await this.resolve(userPath, { followFinal: false });
    const st = await lstat(host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new PreviewdError('file_not_found', `${userPath} does not exist`);
      throw err;
    });
    const entry = entryOf(rel.join('/'), st);
    if (st.isSymbolicLink()) entry.target = await readlink(host);
    return entry;
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

  /** Opens a regular file for streaming, checked like `read`. */
  async openRead(userPath: string): Promise<{ stream: Readable; entry: FileEntry }> {
    const { handle, st, rel } = await this.openFile(userPath);
    return { stream: handle.createReadStream({ autoClose: true }), entry: entryOf(rel.join('/'), st) };
  }

  async mkdir(userPath: string): Promise<FileEntry> {
    const { rel } = await this.resolve(userPath);
    await this.mkdirs(rel);
    return this.stat(rel.join('/'));
  }

  async remove(userPath: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const { host, rel } = await this.resolve(userPath, { followFinal: false });
    if (rel.length === 0) throw invalid('cannot delete the workspace root');
    const st = await lstat(host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new PreviewdError('file_not_found', `${userPath} does not exist`);
      throw err;
    });
    if (st.isDirectory() && !opts.recursive) {
      // One entry tells "not empty": a directory of 100 000 entries is not read whole for it.
      const dir = await opendir(host);
      const first = await dir.read().finally(() => dir.close());
      if (first !== null) throw invalid(`${userPath} is a directory that is not empty; pass recursive=true`);
    }
    await rm(host, { recursive: true, force: true });
  }

  async move(from: string, to: string): Promise<FileEntry> {
    const src = await this.resolve(from, { followFinal: false });
    const dst = await this.resolve(to);
    if (src.rel.length === 0 || dst.rel.length === 0) throw invalid('cannot move the workspace root');
    await lstat(src.host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new PreviewdError('file_not_found', `${from} does not exist`);
      throw err;
    });
    await this.mkdirs(dst.rel.slice(0, -1));
    await rename(src.host, dst.host);
    return this.stat(dst.rel.join('/'));
  }

  async chmod(userPath: string, mode: number): Promise<FileEntry> {
    const { host, rel } = await this.resolve(userPath);
    // Read-only and non-blocking: the descriptor only carries the chmod (a FIFO must not hold it).
    const handle = await open(host, SAFE_READ_FLAGS).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ELOOP')
        throw invalid(`${userPath} is a symlink that cannot be followed`, 'forbidden');
      throw openError(err, userPath);
    });
    try {
      await this.assertFdInside(handle.fd, userPath);
      await handle.chmod(mode & 0o7777);
      return entryOf(rel.join('/'), await handle.stat());
    } finally {
      await handle.close();
    }
  }
}
