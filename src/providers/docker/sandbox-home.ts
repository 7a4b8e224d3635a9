import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { SandboxIdentity } from '../../domain/sandbox.js';

/**
 * A sandbox's own home and user name. The runtime images make `user` (uid 1000) with its home at
 * /home/user; a sandbox runs as its own uid instead (src/sandboxes/identity.ts), which owns nothing
 * in the image. So each container gets:
 *
 * - `<dataDir>/sandboxes/<id>/home` at /home/user (HOME): its own — npm's and pip's
 *   caches, shell history, tool configs land there, never in a folder another sandbox can reach;
 * - `<dataDir>/sandboxes/<id>/etc/{passwd,group}` read-only at /etc/passwd and /etc/group, naming
 *   its uid `user` (root and nobody kept), so `whoami`, `os.userInfo()`, git and pip find a user.
 *
 * Both folders sit beside the workspace and go with it when the sandbox is deleted.
 */

export const SANDBOX_HOME = '/home/user';

export function sandboxDir(dataDir: string, sandboxId: string): string {
  return resolve(dataDir, 'sandboxes', sandboxId);
}

function passwd(identity: SandboxIdentity): string {
  return [
    'root:x:0:0:root:/root:/bin/sh',
    `user:x:${identity.uid}:${identity.gid}:sandbox user:${SANDBOX_HOME}:/bin/bash`,
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    '',
  ].join('\n');
}

function group(identity: SandboxIdentity): string {
  return ['root:x:0:', `user:x:${identity.gid}:`, 'nogroup:x:65534:', ''].join('\n');
}

/** Makes the home and the user files of a sandbox; returns the binds that mount them. */
export async function sandboxHomeBinds(
  dataDir: string,
  sandboxId: string,
  identity: SandboxIdentity,
  ownedDir: (dir: string, identity: SandboxIdentity) => Promise<void>,
): Promise<string[]> {
  const base = sandboxDir(dataDir, sandboxId);
  // On the sandbox's disk (src/workspaces/sandbox-storage.ts): what it writes there counts against diskMb.
  const home = join(base, 'disk', 'home');
  const etc = join(base, 'etc');
  await ownedDir(home, identity);
  // Root's, read-only inside: the sandbox cannot rename itself into another uid's name.
  await mkdir(etc, { recursive: true, mode: 0o755 });
  await chown(etc, 0, 0).catch(() => undefined);
  await writeFile(join(etc, 'passwd'), passwd(identity), { mode: 0o644 });
  await writeFile(join(etc, 'group'), group(identity), { mode: 0o644 });
  return [`${home}:${SANDBOX_HOME}`, `${etc}/passwd:/etc/passwd:ro`, `${etc}/group:/etc/group:ro`];
}
