import { type FileHandle, open, readdir, rmdir, unlink } from 'node:fs/promises';
import { at, invalidPath } from './workspace-handles.js';
import { DIRECTORY_FLAGS } from './workspace-walk.js';

/**
 * Recursive delete through directory descriptors: each directory is opened with O_NOFOLLOW |
 * O_DIRECTORY relative to its parent's descriptor and emptied through its own, each entry unlinked
 * or removed in the directory that holds it. A directory swapped for a link meanwhile is unlinked
 * (the link, never what it points to), so nothing outside the tree is ever removed.
 */

/** Levels below the deleted directory (one descriptor each stays open on the way down). */
export const MAX_REMOVE_DEPTH = 512;
/** Rounds of emptying a directory that sandbox code keeps filling. */
const MAX_ROUNDS = 8;

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/** Removes `name` in the open directory `parent`, whatever it is, with everything below it. */
export async function removeTree(parent: FileHandle, name: string, label: string, depth = 0): Promise<void> {
  if (depth > MAX_REMOVE_DEPTH) {
    throw invalidPath(`${label} is deeper than ${MAX_REMOVE_DEPTH} levels; delete it in parts`);
  }
  const path = at(parent, name);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let dir: FileHandle;
    try {
      dir = await open(path, DIRECTORY_FLAGS);
    } catch (err) {
      const c = code(err);
      if (c === 'ENOENT') return;
      if (c !== 'ELOOP' && c !== 'ENOTDIR') throw err;
      // Not a directory (a file, a link, a FIFO): one unlink in its parent.
      try {
        await unlink(path);
        return;
      } catch (e) {
        const u = code(e);
        if (u === 'ENOENT') return;
        if (u !== 'EISDIR' && u !== 'EPERM') throw e;
        continue; // became a directory meanwhile: empty it next round
      }
    }
    try {
      const names = await readdir(`/proc/self/fd/${dir.fd}`);
      for (const child of names) await removeTree(dir, child, label, depth + 1);
    } finally {
      await dir.close();
    }
    try {
      await rmdir(path);
      return;
    } catch (err) {
      const c = code(err);
      if (c === 'ENOENT') return;
      if (c === 'ENOTDIR') continue; // swapped for a file or link: unlinked next round
      if (c !== 'ENOTEMPTY' && c !== 'EEXIST') throw err;
    }
  }
  throw invalidPath(`${label} kept changing while it was deleted; try again`);
}
