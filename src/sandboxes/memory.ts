import { readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';

const MB = 1024 * 1024;

/** Memory the host can still give (MemAvailable from /proc/meminfo; os.freemem elsewhere), in MB. */
export async function availableMemoryMb(): Promise<number> {
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => undefined);
  const match = meminfo ? /^MemAvailable:\s+(\d+) kB/m.exec(meminfo) : null;
  if (match) return Number(match[1]) / 1024;
  return freemem() / MB;
}

export function hostMemoryMb(): number {
  return totalmem() / MB;
}

/**
 * Memory a container uses now, in MB, read from its cgroup on this host (v1 cgroupfs or systemd
 * driver, or v2): usage without the page cache. Shared memory stays counted although the kernel
 * files it with the cache: it is a tmpfs's contents, and under gVisor the whole memory of the
 * sandbox's processes (the sentry keeps it in a memfd). Undefined when the engine is not local.
 */
export async function containerMemoryMb(containerId: string): Promise<number | undefined> {
  const v2 = [
    `/sys/fs/cgroup/system.slice/docker-${containerId}.scope`,
    `/sys/fs/cgroup/docker/${containerId}`,
  ];
  for (const dir of v2) {
    const current = await readFile(`${dir}/memory.current`, 'utf8').catch(() => undefined);
    if (current === undefined) continue;
    const stat = await readFile(`${dir}/memory.stat`, 'utf8').catch(() => '');
    const file = Number(/^file (\d+)/m.exec(stat)?.[1] ?? 0);
    const shmem = Number(/^shmem (\d+)/m.exec(stat)?.[1] ?? 0);
    return Math.max(0, Number(current) - Math.max(0, file - shmem)) / MB;
  }
  const v1 = [
    `/sys/fs/cgroup/memory/docker/${containerId}`,
    `/sys/fs/cgroup/memory/system.slice/docker-${containerId}.scope`,
  ];
  for (const dir of v1) {
    const usage = await readFile(`${dir}/memory.usage_in_bytes`, 'utf8').catch(() => undefined);
    if (usage === undefined) continue;
    const stat = await readFile(`${dir}/memory.stat`, 'utf8').catch(() => '');
    const cache = Number(/^total_cache (\d+)/m.exec(stat)?.[1] ?? /^cache (\d+)/m.exec(stat)?.[1] ?? 0);
    const shmem = Number(/^total_shmem (\d+)/m.exec(stat)?.[1] ?? /^shmem (\d+)/m.exec(stat)?.[1] ?? 0);
    return Math.max(0, Number(usage) - Math.max(0, cache - shmem)) / MB;
  }
  return undefined;
}
