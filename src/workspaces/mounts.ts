import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The host mounts previewd makes for sandbox storage: overlayfs stacks (src/workspaces/layers.ts)
 * and loop-mounted disks (src/workspaces/sandbox-disk.ts). Everything here is idempotent: mounting
 * what is mounted and unmounting what is not are no-ops, so a restart (or a kill -9 in the middle
 * of either) is settled by running the same call again.
 *
 * Mounts live in the kernel, not in previewd's process: a kill -9 leaves them in place, a reboot
 * removes them (the reconciler remounts before it starts containers).
 */

/** Decodes the octal escapes of /proc/self/mountinfo (space, tab, newline, backslash). */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export interface MountEntry {
  target: string;
  fsType: string;
  source: string;
}

/** This process's mount table (/proc/self/mountinfo). */
export async function readMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left?.split(' ') ?? [];
    const after = right?.split(' ') ?? [];
    if (fields[4] === undefined) continue;
    out.push({ target: unescapeMountPath(fields[4]), fsType: after[0] ?? '', source: after[1] ?? '' });
  }
  return out;
}

/** The mount at exactly `target` (the last one, when mounts are stacked), if any. */
export async function mountAt(target: string): Promise<MountEntry | undefined> {
  const abs = resolve(target);
  return (await readMounts()).filter((m) => m.target === abs).at(-1);
}

/** Every mount at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const abs = resolve(dir);
  return (await readMounts())
    .filter((m) => m.target === abs || m.target.startsWith(`${abs}/`))
    .sort((a, b) => b.target.length - a.target.length);
}

/** overlayfs parses `:` and `,` in its options (and `\` escapes them): previewd's paths never carry them. */
function overlayPath(path: string): string {
  const abs = resolve(path);
  if (/[:,\\\s]/.test(abs)) throw new Error(`overlay layer path ${abs} contains ":", ",", "\\" or a space`);
  return abs;
}

export interface OverlaySpec {
  /** Read-only layers, top first (overlayfs order). */
  lowers: string[];
  /** The writable layer and overlayfs's work directory: same file system, not inside each other. */
  upper: string;
  work: string;
  target: string;
}

/**
 * Mounts an overlay unless one is mounted at `target` already. `index=off` and `xino=off`: the
 * layers are moved between hosts as plain directories later (issue 16) and never exported over
 * NFS; `redirect_dir`/`metacopy` stay off (their default) so a sandbox cannot make the overlay
 * follow a redirect it wrote into its own upper layer.
 */
export async function mountOverlay(spec: OverlaySpec): Promise<'mounted' | 'already'> {
  return (await mountOverlays([spec]))[0] as 'mounted' | 'already';
}

function overlayOptions(spec: OverlaySpec): string {
  if (spec.lowers.length === 0) throw new Error('an overlay needs at least one lower layer');
  return [
    `lowerdir=${spec.lowers.map(overlayPath).join(':')}`,
    `upperdir=${overlayPath(spec.upper)}`,
    `workdir=${overlayPath(spec.work)}`,
    'index=off',
    'xino=off',
    'redirect_dir=off',
    'metacopy=off',
    'nodev',
    'nosuid',
  ].join(',');
}

/**
 * Mounts the overlays of `specs` that are not mounted, in one shell (a process spawn costs more
 * than a mount): one look at the mount table, one process. Returns what each one was.
 */
export async function mountOverlays(specs: OverlaySpec[]): Promise<('mounted' | 'already')[]> {
  const mounted = new Map((await readMounts()).map((m) => [m.target, m.fsType]));
  const todo: string[] = [];
  const result = specs.map((spec) => {
    const target = resolve(spec.target);
    const fsType = mounted.get(target);
    if (fsType !== undefined) {
      if (fsType !== 'overlay') throw new Error(`${target} is a ${fsType} mount, not an overlay`);
      return 'already' as const;
    }
    todo.push(overlayOptions(spec), target);
    return 'mounted' as const;
  });
  if (todo.length > 0) {
    const script = 'while [ $# -gt 0 ]; do mount -t overlay overlay -o "$1" "$2" || exit 1; shift 2; done';
    await run('sh', ['-c', script, 'sh', ...todo]);
  }
  return result;
}

/**
 * Loop-mounts a file system image at `target` unless something is mounted there. `mount -o loop`
 * sets up the loop device with autoclear: unmounting the last mount of it releases the device.
 */
export async function mountLoop(image: string, target: string): Promise<'mounted' | 'already'> {
  if (await mountAt(target)) return 'already';
  await run('mount', ['-o', 'loop,nodev,nosuid,noatime', resolve(image), resolve(target)]);
  return 'mounted';
}

/**
 * Unmounts every one of `targets` that is mounted, in one `umount` process (whatever is left, a
 * busy one, is then unmounted alone: lazily if busy).
 */
export async function unmountAll(targets: string[]): Promise<void> {
  const mounted = new Set((await readMounts()).map((m) => m.target));
  const todo = [...new Set(targets.map((t) => resolve(t)))].filter((t) => mounted.has(t));
  if (todo.length === 0) return;
  await run('umount', todo).catch(() => undefined);
  for (const target of todo) await unmount(target);
}

/** Unmounts `target` (every mount stacked there) if mounted; a busy mount is detached lazily. */
export async function unmount(target: string): Promise<boolean> {
  const abs = resolve(target);
  let any = false;
  for (let i = 0; i < 8 && (await mountAt(abs)); i++) {
    any = true;
    try {
      await run('umount', [abs]);
    } catch (err) {
      if (!/busy/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
      await run('umount', ['-l', abs]);
    }
  }
  return any;
}

/** Detaches every loop device still backed by `image` (one left by a kill -9 between attach and mount). */
export async function detachLoops(image: string): Promise<number> {
  const abs = resolve(image);
  // The kernel's own list (/sys/block/loopN/loop/backing_file): no process for the usual case of none.
  const devices = await readdir('/sys/block').catch(() => [] as string[]);
  let n = 0;
  for (const dev of devices) {
    if (!/^loop\d+$/.test(dev)) continue;
    const backing = (await readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => '')).trim();
    if (backing !== abs && backing !== `${abs} (deleted)`) continue;
    await run('losetup', ['-d', `/dev/${dev}`]).catch(() => undefined);
    n++;
  }
  return n;
}

/** Whether this process may make the mounts above (root with CAP_SYS_ADMIN, overlay and loop available). */
export async function canMount(): Promise<{ ok: boolean; reason?: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'previewd does not run as root' };
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  if (!/\toverlay$/m.test(filesystems)) return { ok: false, reason: 'the kernel has no overlay file system' };
  try {
    await run('losetup', ['-f']);
  } catch (err) {
    return { ok: false, reason: `no free loop device (losetup -f: ${(err as Error).message.trim()})` };
  }
  return { ok: true };
}
