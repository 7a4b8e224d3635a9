import { lstat, opendir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../domain/clock.js';
import type { SandboxPaths, StackRecord } from '../workspaces/sandbox-storage.js';

const MB = 1024 * 1024;
/** A walk (a sandbox without a disk of its own) looks at this many entries at most. */
const WALK_BUDGET = 20_000;
/** …and is redone at most this often. */
const WALK_EVERY_MS = 60_000;

/** What the disk measure needs of the sandbox storage (src/workspaces/sandbox-storage.ts). */
export interface StorageView {
  paths(sandboxId: string): Pick<SandboxPaths, 'disk' | 'workspace'>;
  readStack(sandboxId: string): Promise<Pick<StackRecord, 'mode' | 'diskMb'> | undefined>;
}

/**
 * Space a sandbox uses on its disk. With a disk of its own (an ext4 image loop-mounted at
 * `disk/`, holding its writable layer, home and caches) one statfs of it; without, a bounded walk
 * of its writable layers (or of its workspace: plain directories, previewd not root), redone at
 * most once a minute.
 */
export class DiskUsage {
  private readonly stacks = new Map<string, Pick<StackRecord, 'mode' | 'diskMb'> | null>();
  private readonly walks = new Map<string, { at: number; mb: number }>();

  constructor(
    private readonly storage: StorageView,
    private readonly clock: Clock,
  ) {}

  async usedMb(sandboxId: string): Promise<number> {
    let stack = this.stacks.get(sandboxId);
    if (stack === undefined) {
      stack = (await this.storage.readStack(sandboxId).catch(() => undefined)) ?? null;
      this.stacks.set(sandboxId, stack);
    }
    const paths = this.storage.paths(sandboxId);
    if (stack?.mode === 'layers' && stack.diskMb) {
      const fs = await statfs(paths.disk);
      return ((fs.blocks - fs.bfree) * fs.bsize) / MB;
    }
    const walked = this.walks.get(sandboxId);
    if (walked && this.clock.now() - walked.at < WALK_EVERY_MS) return walked.mb;
    // A stack without a disk keeps its writable layers under disk/ on the host's file system.
    const root = stack?.mode === 'layers' ? paths.disk : paths.workspace;
    const mb = (await walkBytes(root, WALK_BUDGET)) / MB;
    this.walks.set(sandboxId, { at: this.clock.now(), mb });
    return mb;
  }

  forget(sandboxId: string): void {
    this.stacks.delete(sandboxId);
    this.walks.delete(sandboxId);
  }
}

/** Bytes allocated under `root` (links not followed), looking at no more than `budget` entries. */
async function walkBytes(root: string, budget: number): Promise<number> {
  let left = budget;
  let bytes = 0;
  const dirs = [root];
  while (dirs.length > 0 && left > 0) {
    const dir = dirs.pop() as string;
    const handle = await opendir(dir).catch(() => undefined);
    if (!handle) continue;
    for await (const entry of handle) {
      if (--left <= 0) break;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) dirs.push(path);
      else if (entry.isFile()) bytes += ((await lstat(path).catch(() => undefined))?.blocks ?? 0) * 512;
    }
  }
  return bytes;
}
