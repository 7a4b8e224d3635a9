import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { PreviewdError } from '../domain/errors.js';

const run = promisify(execFile);

/**
 * A sandbox's disk (src/workspaces/sandbox-storage.ts): a preallocated image of `diskMb` with an
 * ext4 file system whose root belongs to the sandbox user, made under a temporary name and renamed
 * into place, so an image that exists is complete. Nothing when it exists already.
 */
export async function makeDisk(
  image: string,
  diskMb: number,
  owner: { uid: number; gid: number },
): Promise<void> {
  if (existsSync(image)) return;
  const tmp = `${image}.tmp`;
  const { uid, gid } = owner;
  // One process for both steps (a spawn costs more than either). Lazy inode tables and journal:
  // a few milliseconds instead of writing them out; nodiscard keeps the preallocation (a discard
  // would punch the file's blocks out again). No reserved blocks: the sandbox gets all of
  // diskMb. One inode per 8 KiB: node_modules are many small files.
  const script =
    'fallocate -l "$1" "$2" && mkfs.ext4 -q -F -m 0 -i 8192 -E "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=$3" "$2"';
  try {
    await run('sh', ['-c', script, 'sh', `${diskMb}M`, tmp, `${uid}:${gid}`]);
  } catch (err) {
    await rm(tmp, { force: true });
    const text = String((err as { stderr?: string }).stderr ?? err);
    if (/No space left/i.test(text)) {
      throw new PreviewdError(
        'capacity_exhausted',
        `no room on this host for a ${diskMb} MB sandbox disk (the data dir's file system is full)`,
        { cause: err, details: { field: 'resources.diskMb' } },
      );
    }
    throw err;
  }
  await rename(tmp, image);
}
