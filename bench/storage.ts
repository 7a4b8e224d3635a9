/**
 * bench/storage: what a sandbox's storage costs its create and its delete (src/workspaces): the
 * disk (fallocate + mkfs.ext4 + loop mount) and the workspace and cache overlays, against plain
 * directories (what a create did before: mkdir + chown) as the floor, interleaved in one run.
 * Also the no-op remount (`ensureMounted` when everything is mounted: what start and the
 * reconciler pay) and the removal (unmount, loop device released, rm).
 *
 *   node --import tsx bench/storage.ts [N=20] [--disk-mb 1024]
 */
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerStore } from '../src/workspaces/layers.js';
import { canMount } from '../src/workspaces/mounts.js';
import { SandboxStorage } from '../src/workspaces/sandbox-storage.js';
import { printTable, summary } from './stats.js';

const N = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 20);
const flagAt = process.argv.indexOf('--disk-mb');
const DISK_MB = flagAt === -1 ? 1024 : Number(process.argv[flagAt + 1]);
const owner = { uid: 100_999, gid: 100_999 };

async function main(): Promise<void> {
  const ok = await canMount();
  if (!ok.ok) throw new Error(`cannot mount here: ${ok.reason}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'previewd-bench-storage-'));
  const storage = new SandboxStorage({ dataDir, layers: new LayerStore(dataDir), mounts: true });
  const samples: Record<string, number[]> = {
    'floor: plain dirs (mkdir + chown)': [],
    [`prepare: ${DISK_MB} MB disk + 3 overlays`]: [],
    'ensureMounted, all mounted (start, reconciler)': [],
    'remove: unmount, release loop, rm': [],
  };
  const time = async (key: string, fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    samples[key]!.push(performance.now() - t0);
  };
  try {
    for (let i = 0; i < N; i++) {
      const id = `bench${i}`;
      const plain = join(dataDir, 'plain', id);
      await time('floor: plain dirs (mkdir + chown)', async () => {
        for (const dir of ['workspace', 'home', 'run']) {
          await mkdir(join(plain, dir), { recursive: true });
          await chown(join(plain, dir), owner.uid, owner.gid);
        }
      });
      await time(`prepare: ${DISK_MB} MB disk + 3 overlays`, () =>
        storage.prepare(id, owner, { diskMb: DISK_MB, caches: 'overlay' }),
      );
      await time('ensureMounted, all mounted (start, reconciler)', () => storage.ensureMounted(id));
      await time('remove: unmount, release loop, rm', () => storage.remove(id));
    }
  } finally {
    for (const id of await storage.stacked()) await storage.remove(id).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  }
  printTable(
    `Sandbox storage, ${N} sandboxes one after the other (ms)`,
    Object.entries(samples).map(([what, ms]) => ({ what, ...summary(ms) })),
  );
}

await main();
