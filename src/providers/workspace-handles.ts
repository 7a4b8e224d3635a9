import { type FileHandle, lchown, lstat, mkdir, open, readlink } from 'node:fs/promises';
import { PreviewdError } from '../domain/errors.js';
import { DIRECTORY_FLAGS } from './workspace-walk.js';

/**
 * Path resolution inside a workspace through open directory descriptors: Linux's openat2 with
 * RESOLVE_IN_ROOT, done by hand (Node has no openat2).
 *
 * The walk opens the workspace root as a directory, then each directory on the way with
 * O_NOFOLLOW | O_DIRECTORY relative to the previous one, through the procfs magic path
 * `/proc/self/fd/<dirfd>/<name>`: the kernel resolves `/proc/self/fd/<dirfd>` to the directory the
 * descriptor holds, whatever has been renamed or swapped since, so only `<name>` is looked up by
 * name, in that directory, and a link there is never followed by the kernel (ELOOP / ENOTDIR).
 * Links are read (readlink) and followed by the walk itself, component by component: a relative
 * target from the directory the link is in, an absolute one under `/workspace` from the root's
 * descriptor; `..` goes back to the descriptor of the directory before (never opened by name), and
 * a target that leaves the workspace — `..` above the root, an absolute path outside `/workspace` —
 * is refused, as the container would see a path outside its workspace there. The operation then acts
 * on the last component through its parent's descriptor (`/proc/self/fd/<parentfd>/<leaf>`: rename,
 * unlink, rmdir, mkdir, opens with O_NOFOLLOW), so no path sandbox code can change is walked again.
 */

export const MAX_LINK_HOPS = 40;

export interface Owner {
  uid: number;
  gid: number;
}

/** The procfs path of `name` inside the open directory `dir` ('' names the directory itself). */
export function at(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name === '' ? '.' : name}`;
}

export function invalidPath(message: string, outside = false): PreviewdError {
  return new PreviewdError(
    'invalid_path',
    message,
    outside ? { details: { reason: 'outside_workspace' } } : {},
  );
}

export function notFound(label: string): PreviewdError {
  return new PreviewdError('file_not_found', `${label || '/'} does not exist`);
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/**
 * Makes the directory `name` in the open directory `parent` and gives it to `owner` at once, by
 * lchown through the parent's descriptor: whatever sandbox code put at that name since (a link,
 * its own directory) is in the workspace and gets the sandbox's uid, nothing else. Returns whether
 * it made the directory (false: something was there already).
 */
export async function makeOwnedDir(
  parent: FileHandle,
  name: string,
  owner: Owner,
  label: string,
): Promise<boolean> {
  const path = at(parent, name);
  try {
    await mkdir(path, 0o755);
  } catch (err) {
    if (code(err) === 'EEXIST') return false;
    if (code(err) === 'ENOENT') throw notFound(label); // its parent was removed meanwhile
    throw err;
  }
  await lchown(path, owner.uid, owner.gid).catch((err) => {
    if (code(err) !== 'ENOENT') throw err; // removed already: nothing left to own
  });
  return true;
}

/** Where a path ends: the open directory holding its last component, and that component's name. */
export interface Location {
  /** The directory the last component lies in (the root's own handle for the root). */
  parent: FileHandle;
  /** The last component; '' when the path is the directory `parent` itself (the root, or a link to a directory). */
  name: string;
  /** Workspace-relative segments of the path as resolved (links followed). */
  rel: string[];
  /** `at(parent, name)`: the path every operation on the last component uses. */
  path: string;
  /** Closes every descriptor of the walk. */
  close(): Promise<void>;
}

export interface LocateOptions {
  /** Follow a link at the last component (default true); when false the link itself is the result. */
  followFinal?: boolean;
  /** Refuse any link on the way (previewd's own walks that must not leave a listed tree). */
  noLinks?: boolean;
  /** Create missing directories on the way, owned by this uid/gid. */
  createParents?: Owner;
}

/** The segments of a link target, and whether it starts again at the root. */
function linkTarget(
  target: string,
  mountPoint: string,
  label: string,
): { fromRoot: boolean; segs: string[] } {
  let rest = target;
  const fromRoot = target.startsWith('/');
  if (fromRoot) {
    if (target !== mountPoint && !target.startsWith(`${mountPoint}/`)) {
      throw invalidPath(`path ${label} leads outside the workspace through a symlink`, true);
    }
    rest = target.slice(mountPoint.length);
  }
  return { fromRoot, segs: rest.split('/').filter((s) => s !== '' && s !== '.') };
}

/**
 * Walks `segments` (already checked by WorkspaceFiles.segments: no NUL, no `..` above the root)
 * from the workspace root as described above. The caller closes the location.
 */
export async function locate(
  root: string,
  mountPoint: string,
  segments: string[],
  label: string,
  opts: LocateOptions = {},
): Promise<Location> {
  const followFinal = opts.followFinal ?? true;
  const rootHandle = await open(root, DIRECTORY_FLAGS).catch((err) => {
    if (code(err) === 'ENOENT') throw notFound(label);
    throw err;
  });
  const stack: { handle: FileHandle; name: string }[] = [];
  const top = () => stack.at(-1)?.handle ?? rootHandle;
  const closeAll = async () => {
    for (const entry of stack.splice(0).reverse()) await entry.handle.close().catch(() => undefined);
    await rootHandle.close().catch(() => undefined);
  };
  const done = (name: string): Location => ({
    parent: top(),
    name,
    rel: [...stack.map((e) => e.name), ...(name ? [name] : [])],
    path: at(top(), name),
    close: closeAll,
  });
  const relOf = (seg: string) => [...stack.map((e) => e.name), seg].join('/');
  let pending = [...segments];
  // Links followed, and components looked at again because they changed under the walk.
  let hops = 0;
  const hop = () => {
    if (++hops > MAX_LINK_HOPS) throw invalidPath(`too many levels of symlinks (or changes) in ${label}`);
  };
  try {
    while (pending.length > 0) {
      const seg = pending.shift()!;
      if (seg === '..') {
        const popped = stack.pop();
        if (!popped) throw invalidPath(`path ${label} leads outside the workspace through a symlink`, true);
        await popped.handle.close();
        continue;
      }
      const last = pending.length === 0;
      if (last && !followFinal) return done(seg);
      const path = at(top(), seg);
      const st = await lstat(path).catch((err) => {
        if (code(err) === 'ENOENT') return undefined;
        throw err;
      });
      if (st?.isSymbolicLink()) {
        if (opts.noLinks) throw invalidPath(`${relOf(seg)} is a symlink`, true);
        hop();
        const target = await readlink(path).catch((err) => {
          // Replaced (or removed) since the lstat: looked at again below.
          if (code(err) === 'EINVAL' || code(err) === 'ENOENT') return undefined;
          throw err;
        });
        if (target === undefined) {
          pending.unshift(seg);
          continue;
        }
        const { fromRoot, segs } = linkTarget(target, mountPoint, label);
        if (fromRoot) {
          for (const entry of stack.splice(0).reverse()) await entry.handle.close();
        }
        pending = [...segs, ...pending];
        continue;
      }
      if (last) return done(seg);
      if (!st) {
        if (!opts.createParents) throw notFound(label);
        await makeOwnedDir(top(), seg, opts.createParents, label);
      }
      let handle: FileHandle;
      try {
        handle = await open(path, DIRECTORY_FLAGS);
      } catch (err) {
        const c = code(err);
        if (c === 'ENOTDIR') throw invalidPath(`${relOf(seg)} is not a directory`);
        if (c === 'ELOOP' || c === 'ENOENT') {
          // Swapped for a link, or removed, since the lstat: look at it again.
          hop();
          pending.unshift(seg);
          continue;
        }
        throw err;
      }
      stack.push({ handle, name: seg });
    }
    return done('');
  } catch (err) {
    await closeAll();
    throw err;
  }
}
