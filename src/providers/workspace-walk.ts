import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, readlink } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PreviewdError } from '../domain/errors.js';
import { entryOf, type FileEntry } from './workspace-entry.js';

/**
 * Walks of a workspace directory (list, recursive list, glob) with bounded work per request:
 * pages of at most `limit` entries with a cursor to go on, a budget of entries looked at and of
 * time, a depth limit, and a yield to the event loop whenever the synchronous part (matching,
 * sorting) has run for a few milliseconds. Whatever the tree holds, one request cannot hold the
 * process for long, and the answer says where to continue.
 *
 * Directories are read through their open descriptors (`/proc/self/fd/<fd>/<name>`), each opened
 * with O_NOFOLLOW | O_DIRECTORY relative to its parent's descriptor: a directory swapped for a link
 * mid-walk is not followed, so the walk stays in the directory it started in. Links are listed,
 * never descended. Order: names sorted (code units), each directory before what it holds.
 */

export const WALK_LIMITS = {
  /** Entries one request looks at (matching or not) before it answers with a cursor. */
  visited: 50_000,
  /** Time one request walks before it answers with a cursor. */
  millis: 2_000,
  /** Levels below the directory the walk starts in. */
  depth: 64,
  /** Synchronous work between two yields to the event loop. */
  sliceMillis: 8,
} as const;

export type TruncatedBy = 'limit' | 'walk_budget' | 'depth';

export interface WalkPage {
  entries: FileEntry[];
  /** Not every entry was returned: see `truncatedBy`, and continue with `nextCursor` when present. */
  truncated: boolean;
  /** Pass as `cursor` to get the entries after this page (present when the walk stopped early). */
  nextCursor?: string;
  /**
   * Why the page is short: `limit` (more entries follow), `walk_budget` (the request looked at as
   * many entries, or walked as long, as one request may; more may follow), `depth` (directories
   * below the depth limit were not entered; a cursor cannot reach them, walk from deeper instead).
   */
  truncatedBy?: TruncatedBy;
}

export interface WalkVisitor<S> {
  /**
   * An entry `name` (a directory when `isDir`) in a directory walked with `state`: whether to
   * return it, and the state to walk it with (directories only; undefined: not entered).
   */
  visit(state: S, name: string, isDir: boolean): { emit: boolean; below?: S };
}

export interface WalkRequest<S> {
  /** The directory, open with DIRECTORY_FLAGS and checked to lie inside the workspace. Closed by the walk. */
  dir: FileHandle;
  /** Its workspace-relative path ('' for the root). */
  rel: string;
  state: S;
  visitor: WalkVisitor<S>;
  limit: number;
  cursor?: string;
  maxVisited?: number;
  maxMillis?: number;
  maxDepth?: number;
}

/** Linux's O_CLOEXEC (node:fs does not export it; libuv sets it too). */
const O_CLOEXEC = 0o2000000;
/** Opens a directory without following a link at the last step, and without blocking on anything else. */
export const DIRECTORY_FLAGS =
  constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK | O_CLOEXEC;

/** The cursor of a walk position: the workspace-relative path of the last entry it dealt with. */
export function encodeCursor(path: string): string {
  return Buffer.from(path, 'utf8').toString('base64url');
}

function badCursor(message: string): PreviewdError {
  return new PreviewdError('invalid_request', `cursor: ${message}`, {
    hint: 'Pass the nextCursor of the previous answer unchanged, with the same path or pattern.',
  });
}

/** The path segments of a cursor, which must lie below `rel`. */
export function decodeCursor(cursor: string, rel: string): string[] {
  if (!/^[A-Za-z0-9_-]{1,6000}$/.test(cursor)) throw badCursor('not a cursor this server gave');
  const path = Buffer.from(cursor, 'base64url').toString('utf8');
  const segments = path.split('/');
  if (path.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw badCursor('not a cursor this server gave');
  }
  const base = rel === '' ? [] : rel.split('/');
  if (segments.length <= base.length || base.some((s, i) => segments[i] !== s)) {
    throw badCursor('it belongs to another listing');
  }
  return segments;
}

/** Walks a directory as described above; resolves to one page. */
export async function walk<S>(req: WalkRequest<S>): Promise<WalkPage> {
  const maxVisited = req.maxVisited ?? WALK_LIMITS.visited;
  const maxDepth = req.maxDepth ?? WALK_LIMITS.depth;
  const deadline = performance.now() + (req.maxMillis ?? WALK_LIMITS.millis);
  const baseLevel = req.rel === '' ? 0 : req.rel.split('/').length;
  const entries: FileEntry[] = [];
  let visited = 0;
  let last: string | undefined;
  let depthCut = false;
  let sliceStart = performance.now();
  // An object, not a `let`: the walk's closures set it.
  const outcome: { stop?: { by: TruncatedBy; cursor: string } } = {};

  const breathe = async () => {
    if (performance.now() - sliceStart < WALK_LIMITS.sliceMillis) return;
    await nextTurn();
    sliceStart = performance.now();
  };

  /**
   * `level`: the segments of `rel` (the index of the cursor's segment compared here); `after`: the
   * cursor's segments while this directory lies on the cursor's path.
   */
  const walkDir = async (
    dir: FileHandle,
    rel: string,
    level: number,
    state: S,
    after: string[] | undefined,
  ): Promise<void> => {
    const at = `/proc/self/fd/${dir.fd}`;
    const dirents = await readdir(at, { withFileTypes: true }).catch(() => []);
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    await breathe();
    let pivot = after?.[level];
    for (const dirent of dirents) {
      const name = dirent.name;
      let done = false;
      let afterBelow: string[] | undefined;
      if (pivot !== undefined) {
        if (name < pivot) continue;
        if (name === pivot) {
          // On the cursor's path: dealt with already, but what lies below may not be.
          done = true;
          afterBelow = after!.length > level + 1 ? after : undefined;
        } else {
          pivot = undefined;
        }
      }
      if (!done) {
        if (visited >= maxVisited || (visited > 0 && performance.now() > deadline)) {
          outcome.stop = { by: 'walk_budget', cursor: last! };
          return;
        }
        visited++;
      }
      const isDir = dirent.isDirectory();
      const { emit, below } = req.visitor.visit(state, name, isDir);
      const childRel = rel ? `${rel}/${name}` : name;
      if (emit && !done) {
        if (entries.length >= req.limit) {
          outcome.stop = { by: 'limit', cursor: last! };
          return;
        }
        const st = await lstat(`${at}/${name}`).catch(() => undefined);
        if (st) {
          const entry = entryOf(childRel, st);
          if (st.isSymbolicLink()) entry.target = await readlink(`${at}/${name}`).catch(() => undefined);
          entries.push(entry);
        }
      }
      if (!done) last = childRel;
      if (isDir && below !== undefined) {
        if (level + 1 - baseLevel > maxDepth) {
          depthCut = true;
        } else {
          const child = await open(`${at}/${name}`, DIRECTORY_FLAGS).catch(() => undefined);
          if (child) {
            try {
              await walkDir(child, childRel, level + 1, below, afterBelow);
            } finally {
              await child.close();
            }
            if (outcome.stop) return;
          }
        }
      }
      await breathe();
    }
  };

  try {
    const after = req.cursor !== undefined ? decodeCursor(req.cursor, req.rel) : undefined;
    await walkDir(req.dir, req.rel, baseLevel, req.state, after);
  } finally {
    await req.dir.close();
  }
  const { stop } = outcome;
  if (stop) return { entries, truncated: true, nextCursor: encodeCursor(stop.cursor), truncatedBy: stop.by };
  return depthCut ? { entries, truncated: true, truncatedBy: 'depth' } : { entries, truncated: false };
}
