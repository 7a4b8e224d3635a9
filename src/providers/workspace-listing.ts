import type { FileHandle } from 'node:fs/promises';
import { PreviewdError } from '../domain/errors.js';
import { FILE_PAGE_LIMITS } from '../domain/io-schemas.js';
import { compileGlob, type GlobState } from './glob-pattern.js';
import type { FileEntry } from './workspace-entry.js';
import type { WorkspaceFiles } from './workspace-fs.js';
import { type WalkPage, type WalkRequest, walk } from './workspace-walk.js';

/** What the files API's list and glob answer: pages of a workspace's entries, walked with workspace-walk.ts. */

/** Directories a glob does not enter unless the pattern names them. */
const GLOB_SKIPPED_DIRS = ['node_modules', '.git'];

type WalkLimits = Omit<WalkRequest<unknown>, 'dir' | 'rel' | 'state' | 'visitor'>;

function walkDirectory(
  dir: { handle: FileHandle; rel: string },
  recursive: boolean,
  limits: WalkLimits,
): Promise<WalkPage> {
  return walk<null>({
    dir: dir.handle,
    rel: dir.rel,
    state: null,
    visitor: {
      visit: (_state, _name, isDir) => ({ emit: true, ...(recursive && isDir ? { below: null } : {}) }),
    },
    ...limits,
  });
}

/** One page of a directory's entries (of everything below it with `recursive`). */
export async function listPage(
  files: WorkspaceFiles,
  path: string,
  opts: { recursive?: boolean; limit?: number; cursor?: string } = {},
): Promise<WalkPage> {
  const dir = await files.openDirectory(path);
  return walkDirectory(dir, opts.recursive ?? false, {
    limit: opts.limit ?? FILE_PAGE_LIMITS.default,
    ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
  });
}

/**
 * A directory's entries as one array, without the per-request budgets (previewd's own use: the
 * archive); `limit` still bounds it, and the depth stays bounded (256 levels).
 */
export async function listAll(
  files: WorkspaceFiles,
  path: string,
  opts: { recursive?: boolean; limit?: number } = {},
): Promise<FileEntry[]> {
  const dir = await files.openDirectory(path);
  const page = await walkDirectory(dir, opts.recursive ?? false, {
    limit: opts.limit ?? 10_000,
    maxVisited: Number.POSITIVE_INFINITY,
    maxMillis: Number.POSITIVE_INFINITY,
    maxDepth: 256,
  });
  return page.entries;
}

/**
 * One page of the entries whose path matches a glob (glob-pattern.ts), walking only where the
 * pattern can still match. node_modules and .git are not entered unless the pattern names them.
 * A pattern whose literal start does not exist matches nothing.
 */
export async function globPage(
  files: WorkspaceFiles,
  pattern: string,
  opts: { limit?: number; cursor?: string } = {},
): Promise<WalkPage> {
  const glob = compileGlob(pattern);
  const skipped = new Set(GLOB_SKIPPED_DIRS.filter((d) => !pattern.includes(d)));
  let dir: { handle: FileHandle; rel: string };
  try {
    dir = await files.openDirectory(glob.base);
  } catch (err) {
    if (err instanceof PreviewdError && err.code === 'file_not_found')
      return { entries: [], truncated: false };
    throw err;
  }
  return walk<GlobState>({
    dir: dir.handle,
    rel: dir.rel,
    state: glob.start,
    visitor: {
      visit: (state, name, isDir) => {
        const { matches, below } = glob.step(state, name);
        return { emit: matches, ...(isDir && below && !skipped.has(name) ? { below } : {}) };
      },
    },
    limit: opts.limit ?? FILE_PAGE_LIMITS.default,
    ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
  });
}
