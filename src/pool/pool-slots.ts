import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { SandboxIdentity } from '../domain/sandbox.js';
import { mountsUnder } from '../workspaces/mounts.js';

const run = promisify(execFile);

/** Where a pool container sees its control directory (root-only: identity, environment, FIFO). */
export const POOL_CONTROL_MOUNT = '/run/previewd-pool';

/**
 * A slot: the host side of one warm pool container, `<dataDir>/pool/<slot>`:
 *
 * - `mnt/` — bound onto itself and made a shared mount; its `workspace`, `home` and `run` are the
 *   container's /workspace, /home/user and /run/previewd, bound with `rslave` propagation, so what
 *   previewd mounts onto them at the claim appears inside the running container;
 * - `etc/passwd`, `etc/group` — bound read-only at /etc/passwd and /etc/group, rewritten in place
 *   (same inode) with the sandbox's user at the claim;
 * - `ctl/` — root-only (0700), at /run/previewd-pool: the waiter's FIFO `go`, its `ready` mark,
 *   and the `identity` and `env` (a `set --` line) previewd writes at the claim;
 * - `claim.json` — host only: which sandbox claimed the slot, its identity and environment.
 */
export interface SlotPaths {
  base: string;
  mnt: string;
  workspace: string;
  home: string;
  run: string;
  etc: string;
  ctl: string;
  claim: string;
}

export interface SlotClaim {
  sandboxId: string;
  identity: SandboxIdentity;
  /** The sandbox's environment (as a normal spawn gives it), for execs in the claimed container. */
  env: Record<string, string>;
}

export function poolRoot(dataDir: string): string {
  return resolve(dataDir, 'pool');
}

export function slotPaths(dataDir: string, slot: string): SlotPaths {
  if (!/^[a-z0-9]{1,32}$/.test(slot)) throw new Error(`invalid pool slot name ${slot}`);
  const base = join(poolRoot(dataDir), slot);
  const mnt = join(base, 'mnt');
  return {
    base,
    mnt,
    workspace: join(mnt, 'workspace'),
    home: join(mnt, 'home'),
    run: join(mnt, 'run'),
    etc: join(base, 'etc'),
    ctl: join(base, 'ctl'),
    claim: join(base, 'claim.json'),
  };
}

const PLACEHOLDER_PASSWD =
  'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
const PLACEHOLDER_GROUP = 'root:x:0:\nnogroup:x:65534:\n';

/** Makes a slot's folders, its shared `mnt` mount and its control FIFO. */
export async function prepareSlot(p: SlotPaths): Promise<void> {
  await mkdir(p.base, { recursive: true, mode: 0o711 });
  for (const dir of [p.workspace, p.home, p.run]) await mkdir(dir, { recursive: true, mode: 0o755 });
  await mkdir(p.etc, { recursive: true, mode: 0o755 });
  await writeFile(join(p.etc, 'passwd'), PLACEHOLDER_PASSWD, { mode: 0o644 });
  await writeFile(join(p.etc, 'group'), PLACEHOLDER_GROUP, { mode: 0o644 });
  await mkdir(p.ctl, { recursive: true, mode: 0o700 });
  await chmod(p.ctl, 0o700);
  await rm(join(p.ctl, 'go'), { force: true });
  await run('mkfifo', ['-m', '0600', join(p.ctl, 'go')]);
  if (!(await mountsUnder(p.mnt)).some((m) => m.target === p.mnt)) {
    await run('mount', ['--bind', p.mnt, p.mnt]);
  }
  await run('mount', ['--make-shared', p.mnt]);
}

/** The container's bind of a slot (every one but the control dir is the sandbox-facing side). */
export function slotBinds(p: SlotPaths): string[] {
  return [
    `${p.workspace}:/workspace:rslave`,
    `${p.home}:/home/user:rslave`,
    `${p.run}:/run/previewd:rslave`,
    `${p.etc}/passwd:/etc/passwd:ro`,
    `${p.etc}/group:/etc/group:ro`,
    `${p.ctl}:${POOL_CONTROL_MOUNT}`,
  ];
}

/** Where a sandbox-side container path lands in the slot; undefined: the slot has no such mount. */
export function slotTarget(p: SlotPaths, containerPath: string): string | undefined {
  const roots: [string, string][] = [
    ['/workspace', p.workspace],
    ['/home/user', p.home],
    ['/run/previewd', p.run],
  ];
  for (const [root, host] of roots) {
    if (containerPath === root) return host;
    if (containerPath.startsWith(`${root}/`)) {
      const rest = containerPath.slice(root.length + 1);
      if (rest.split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
      return join(host, rest);
    }
  }
  return undefined;
}

/**
 * Makes `target` (below `root`) a directory to mount on, refusing links: every component is
 * lstat'ed. No process of the sandbox runs while a slot is claimed, so nothing can swap them.
 */
async function mountPoint(root: string, target: string): Promise<void> {
  const parts = target
    .slice(root.length + 1)
    .split('/')
    .filter(Boolean);
  let at = root;
  for (const part of parts) {
    at = join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st) await mkdir(at, { mode: 0o755 });
    else if (!st.isDirectory()) throw new Error(`${at} is not a directory; not mounting on it`);
  }
}

/**
 * Binds each source onto its slot target, parents first (they propagate into the container), in
 * one `sh` (paths as arguments, never in the script). A target nested in another bind is made in
 * that bind's source first: the same directory once bound.
 */
export async function mountIntoSlot(
  p: SlotPaths,
  binds: { source: string; target: string }[],
): Promise<void> {
  const ordered = [...binds].sort((a, b) => a.target.length - b.target.length);
  const args: string[] = [];
  for (const [i, { source, target }] of ordered.entries()) {
    const root = [p.workspace, p.home, p.run].find((r) => target === r || target.startsWith(`${r}/`));
    if (!root) throw new Error(`${target} is not in the slot`);
    if (target !== root) {
      const parent = ordered
        .slice(0, i)
        .filter((b) => target.startsWith(`${b.target}/`))
        .at(-1);
      if (!parent) throw new Error(`${target} has no parent bind in the slot`);
      await mountPoint(parent.source, join(parent.source, target.slice(parent.target.length + 1)));
    }
    args.push(source, target);
  }
  if (args.length === 0) return;
  await run('sh', [
    '-c',
    'while [ "$#" -gt 0 ]; do mount --rbind "$1" "$2" || exit 1; shift 2; done',
    'sh',
    ...args,
  ]);
}

/** Rewrites the slot's user files in place (their inodes are bound into the container). */
export async function writeSlotUser(p: SlotPaths, passwd: string, group: string): Promise<void> {
  await writeFile(join(p.etc, 'passwd'), passwd);
  await writeFile(join(p.etc, 'group'), group);
}

/**
 * The environment as one `set -- 'NAME=value' …` line: the waiter sources it as root, which only
 * sets its positional parameters (nothing is exported while it is root: no LD_PRELOAD or PATH of
 * the sandbox's ever reaches a root process), then hands them to `env` after dropping to the
 * sandbox's user. Names outside [A-Za-z_][A-Za-z0-9_]* are refused.
 */
export function shellEnvArgs(env: Record<string, string>): string {
  const words: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new Error(`environment name ${name} cannot be exported`);
    if (value.includes('\0')) throw new Error(`environment value of ${name} holds a NUL byte`);
    words.push(`'${`${name}=${value}`.replaceAll("'", `'\\''`)}'`);
  }
  return `set -- ${words.join(' ')}\n`;
}

/** Writes what the waiter reads (identity, environment) and the host-side claim record. */
export async function writeClaim(p: SlotPaths, claim: SlotClaim): Promise<void> {
  await writeFile(join(p.ctl, 'identity'), `${claim.identity.uid} ${claim.identity.gid}\n`, { mode: 0o600 });
  await writeFile(join(p.ctl, 'env'), shellEnvArgs(claim.env), { mode: 0o600 });
  await writeFile(p.claim, `${JSON.stringify(claim)}\n`, { mode: 0o600 });
}

export async function readClaim(p: SlotPaths): Promise<SlotClaim | undefined> {
  try {
    return JSON.parse(await readFile(p.claim, 'utf8')) as SlotClaim;
  } catch {
    return undefined;
  }
}

/** Whether the waiter has reached its FIFO (it marks `ready` just before blocking on it). */
export async function waiterReady(p: SlotPaths): Promise<boolean> {
  return lstat(join(p.ctl, 'ready')).then(
    (st) => st.isFile(),
    () => false,
  );
}

/**
 * Wakes the waiter: a non-blocking open of the FIFO for writing. `false` when nothing reads it
 * (ENXIO: the container is not waiting), so the caller discards the container.
 */
export async function signalWaiter(p: SlotPaths): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(join(p.ctl, 'go'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return false;
    throw err;
  }
  try {
    await handle.write('go\n');
  } finally {
    await handle.close();
  }
  return true;
}

/** Unmounts everything in the slot (the claim's binds, then `mnt` itself) and removes it. */
export async function removeSlot(p: SlotPaths): Promise<void> {
  for (const m of await mountsUnder(p.base)) {
    await run('umount', [m.target]).catch(async () => {
      // Still busy a moment after the container went: detach it (no new users can reach it).
      await run('umount', ['-l', m.target]);
    });
  }
  const left = await mountsUnder(p.base);
  if (left.length > 0) throw new Error(`${left[0]?.target} is still mounted; not removing ${p.base}`);
  await rm(p.base, { recursive: true, force: true });
}

/** The slots on disk (claimed or not). */
export async function listSlots(dataDir: string): Promise<string[]> {
  return (await readdir(poolRoot(dataDir)).catch(() => [] as string[])).filter((n) =>
    /^[a-z0-9]{1,32}$/.test(n),
  );
}
