import type { Stats } from 'node:fs';
import { posix } from 'node:path';

/** One path of a workspace as the files API describes it. */
export interface FileEntry {
  /** Workspace-relative path. */
  path: string;
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Permission bits in octal, e.g. "0644". */
  mode: string;
  mtime: string;
  /** Link target, for symlinks. */
  target?: string;
}

function typeOf(st: Stats): FileEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** The entry of a workspace-relative path from its (l)stat. */
export function entryOf(rel: string, st: Stats): FileEntry {
  return {
    path: rel,
    name: rel ? posix.basename(rel) : '',
    type: typeOf(st),
    size: st.size,
    mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
    mtime: st.mtime.toISOString(),
  };
}
