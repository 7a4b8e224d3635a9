import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { detachLoops, mountsUnder, unmount } from '../../src/workspaces/mounts.js';

/**
 * Unmounts every overlay and sandbox disk previewd left under a test's data dir (a killed server,
 * a sandbox a test did not delete) and detaches their loop devices, so removing the data dir never
 * walks into a mount and no loop device outlives the test.
 */
export async function releaseMounts(dataDir: string): Promise<void> {
  for (const m of await mountsUnder(dataDir)) await unmount(m.target).catch(() => undefined);
  let names: string[] = [];
  try {
    names = readdirSync(join(dataDir, 'sandboxes'));
  } catch {
    return;
  }
  for (const name of names) await detachLoops(join(dataDir, 'sandboxes', name, 'disk.img'));
}
