import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { PreviewdError } from '../domain/errors.js';
import type { LayerStore } from '../workspaces/layers.js';
import type { SandboxStorage } from '../workspaces/sandbox-storage.js';

/**
 * At most this many snapshot layers under a workspace: a snapshot of a sandbox made from a
 * snapshot stacks one more, and overlayfs's mount options (one page) and lookups bound the depth.
 * Past it the merged view is frozen instead, as one flat layer.
 */
export const MAX_STACK_DEPTH = 12;
/** Room the host's file system keeps after a freeze (it holds previewd's database and keys). */
const HOST_RESERVE_BYTES = 512 * 1024 * 1024;

export interface FrozenLayers {
  /** The new layer's key (a hash of the frozen tree). */
  key: string;
  /** Top first: the frozen layer, then the layers it sat on. */
  layers: string[];
  sizeMb: number;
}

const TAR_OPTS = ['--numeric-owner', '--xattrs', '--xattrs-include=*'];

/**
 * Copies `src` into `dst` (an empty directory) through one tar stream and hashes that stream:
 * links are copied as links (never followed), FIFOs and device nodes (overlayfs whiteouts) as
 * what they are, never opened, sockets left out, xattrs kept (overlayfs's opaque directories);
 * everything lands root's. Returns the stream's hash and size.
 */
async function copyHashed(src: string, dst: string): Promise<{ hash: string; bytes: number }> {
  // Modes opened to every sandbox uid (a+rwX, set-id bits off) and owner root in the stream itself:
  // no second walk over the tree after the copy.
  const create = spawn(
    'tar',
    [
      '--create',
      '--file=-',
      '--sort=name',
      '--mode=a+rwX,ug-s',
      '--owner=0',
      '--group=0',
      ...TAR_OPTS,
      '-C',
      src,
      '.',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const extract = spawn('tar', ['--extract', '--file=-', ...TAR_OPTS, '--no-same-owner', '-C', dst], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const hash = createHash('sha256');
  let bytes = 0;
  let stderr = '';
  create.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  extract.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  create.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  create.stdout.pipe(extract.stdin);
  extract.stdin.on('error', () => undefined);
  const exit = (p: ReturnType<typeof spawn>) =>
    new Promise<number>((resolve) => {
      p.on('error', () => resolve(127));
      p.on('close', (code) => resolve(code ?? 1));
    });
  const [c, x] = await Promise.all([exit(create), exit(extract)]);
  if (c !== 0 || x !== 0) {
    if (/No space left/i.test(stderr)) {
      throw new PreviewdError(
        'capacity_exhausted',
        'no room on this host for the snapshot (its data dir is full)',
        {
          hint: 'Delete snapshots you no longer need, or free space in the data dir of this node.',
        },
      );
    }
    throw new Error(`freezing ${src} failed (tar ${c}/${x}): ${stderr.trim()}`);
  }
  return { hash: hash.digest('hex'), bytes };
}

/** Free bytes of the file system holding `dir` for an unprivileged writer (the reserve stays). */
async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** Bytes in use on the sandbox's own disk (an upper bound of its writable layer), 0 without one. */
async function diskUsed(dir: string): Promise<number> {
  const s = await statfs(dir).catch(() => undefined);
  return s ? (s.blocks - s.bfree) * s.bsize : 0;
}

/**
 * Freezes the sandbox's files as they are on disk now into a new read-only layer of the layer
 * store. The caller keeps the sandbox still meanwhile (its container paused, or not running).
 *
 * - Layered storage: its writable layer (the overlay's upper directory, whiteouts and opaque
 *   directories included), over the layers it sat on — unless those are already
 *   MAX_STACK_DEPTH deep: then the merged view, flat.
 * - Plain directories (no root): the workspace itself, flat.
 *
 * The layer's files are root's and readable and writable by everyone (a+rwX, set-id bits off):
 * every sandbox has its own uid, and a sandbox made from the snapshot writes its changes into its
 * own upper layer (copy-up), never into the layer.
 */
export async function freezeWorkspace(
  deps: { storage: SandboxStorage; layers: LayerStore },
  sandboxId: string,
): Promise<FrozenLayers> {
  const { storage, layers } = deps;
  const stack = await storage.readStack(sandboxId);
  if (!stack) {
    throw new PreviewdError(
      'snapshot_unavailable',
      `sandbox ${sandboxId} has no storage on this node to freeze`,
    );
  }
  await storage.ensureMounted(sandboxId);
  const p = storage.paths(sandboxId);
  const flat = stack.mode === 'plain' || stack.layers.length >= MAX_STACK_DEPTH;
  const source = flat ? p.workspace : p.upper;
  const lower = flat ? [] : stack.layers;
  await layers.empty(); // the layer root exists
  const needed = (stack.diskMb ? await diskUsed(p.disk) : 0) + HOST_RESERVE_BYTES;
  const free = await freeBytes(layers.root);
  if (free < needed) {
    throw new PreviewdError(
      'capacity_exhausted',
      `no room on this host for the snapshot: ${Math.floor(free / 1048576)} MB free, ${Math.ceil(needed / 1048576)} MB needed`,
      { hint: 'Delete snapshots you no longer need, or free space in the data dir of this node.' },
    );
  }
  let bytes = 0;
  const { key } = await layers.publish(
    async (dir) => {
      const copied = await copyHashed(source, dir);
      bytes = copied.bytes;
      hashes.set(dir, copied.hash);
    },
    async (dir) => {
      const hash = hashes.get(dir);
      hashes.delete(dir);
      if (!hash) throw new Error('freeze: no hash for the frozen tree');
      return hash.slice(0, 32);
    },
  );
  return { key, layers: [key, ...lower], sizeMb: Math.max(1, Math.ceil(bytes / 1048576)) };
}

/** The stream hash of each tree being published (fill → keyOf of the same directory). */
const hashes = new Map<string, string>();
