import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { containerMemoryMb } from '../sandboxes/memory.js';
import type { DiskUsage } from './disk-usage.js';
import type { UsageReading, UsageSource, UsageTarget } from './usage-source.js';

const MB = 1024 * 1024;

/** Where a container's CPU counter is on this host: cgroup v1 (`cpuacct.usage`, ns) or v2 (`cpu.stat`, µs). */
interface CgroupPaths {
  cpuFile: string;
  v2: boolean;
  /** `cgroup.procs` of the same group: any pid of the container (its network namespace). */
  procsFile: string;
}

function cgroupCandidates(id: string): CgroupPaths[] {
  const v1 = ['/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/cpu,cpuacct'].flatMap((root) =>
    [`${root}/docker/${id}`, `${root}/system.slice/docker-${id}.scope`].map((dir) => ({
      cpuFile: `${dir}/cpuacct.usage`,
      v2: false,
      procsFile: `${dir}/cgroup.procs`,
    })),
  );
  const v2 = [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`].map((dir) => ({
    cpuFile: `${dir}/cpu.stat`,
    v2: true,
    procsFile: `${dir}/cgroup.procs`,
  }));
  return [...v2, ...v1];
}

/** Received and sent bytes of every interface but loopback, from a /proc/<pid>/net/dev text. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === 'lo') continue;
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    rx += Number(fields[0] ?? 0);
    tx += Number(fields[8] ?? 0);
  }
  return { rx, tx };
}

/** CPU nanoseconds from a cgroup's counter file (v1: ns as text; v2: `usage_usec` in cpu.stat). */
export function parseCpuNs(text: string, v2: boolean): number {
  if (!v2) return Number(text.trim());
  return Number(/^usage_usec (\d+)/m.exec(text)?.[1] ?? Number.NaN) * 1000;
}

/**
 * Reads usage from the host, one small set of files per sandbox per sample: the container's
 * cgroup (CPU counter; memory as admission measures it, `containerMemoryMb`), its network
 * counters through one of its pids (`/proc/<pid>/net/dev`, the container's own namespace), and its
 * disk (`DiskUsage`). Where the cgroup files are not readable (a remote engine, previewd in a
 * container without the host's /sys/fs/cgroup) it asks the engine for one stats snapshot
 * (`stream: false`, one-shot) instead.
 */
export class HostUsageSource implements UsageSource {
  private readonly cgroups = new Map<string, CgroupPaths | null>();
  private readonly sandboxContainer = new Map<string, string>();

  constructor(
    private readonly deps: {
      docker: Pick<Docker, 'getContainer'>;
      disk: DiskUsage;
      /** Override for tests of the engine path: never read host cgroup files. */
      hostFiles?: boolean;
    },
  ) {}

  async read(target: UsageTarget): Promise<UsageReading | undefined> {
    const previous = this.sandboxContainer.get(target.sandboxId);
    if (previous && previous !== target.containerId) this.cgroups.delete(previous);
    this.sandboxContainer.set(target.sandboxId, target.containerId);
    const diskMb = await this.deps.disk.usedMb(target.sandboxId).catch(() => 0);
    const host = this.deps.hostFiles === false ? undefined : await this.readHost(target.containerId);
    const counters = host ?? (await this.readEngine(target.containerId));
    return counters ? { ...counters, diskMb } : undefined;
  }

  forget(sandboxId: string): void {
    const containerId = this.sandboxContainer.get(sandboxId);
    if (containerId) this.cgroups.delete(containerId);
    this.sandboxContainer.delete(sandboxId);
    this.deps.disk.forget(sandboxId);
  }

  private async cgroupOf(containerId: string): Promise<CgroupPaths | null> {
    const known = this.cgroups.get(containerId);
    if (known !== undefined) return known;
    let found: CgroupPaths | null = null;
    for (const candidate of cgroupCandidates(containerId)) {
      const text = await readFile(candidate.cpuFile, 'utf8').catch(() => undefined);
      if (text !== undefined && Number.isFinite(parseCpuNs(text, candidate.v2))) {
        found = candidate;
        break;
      }
    }
    this.cgroups.set(containerId, found);
    return found;
  }

  private async readHost(containerId: string): Promise<Omit<UsageReading, 'diskMb'> | undefined> {
    const cgroup = await this.cgroupOf(containerId);
    if (!cgroup) return undefined;
    const [cpuText, procs, memoryMb] = await Promise.all([
      readFile(cgroup.cpuFile, 'utf8').catch(() => undefined),
      readFile(cgroup.procsFile, 'utf8').catch(() => ''),
      containerMemoryMb(containerId),
    ]);
    if (cpuText === undefined || memoryMb === undefined) {
      // The group went away: the container stopped (or restarted with the same id: look again).
      this.cgroups.delete(containerId);
      return undefined;
    }
    let net: { rx: number; tx: number } | undefined;
    for (const pid of procs.split('\n').filter(Boolean).slice(0, 3)) {
      const text = await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => undefined);
      if (text !== undefined) {
        net = parseNetDev(text);
        break;
      }
    }
    if (!net) return undefined;
    return { cpuNs: parseCpuNs(cpuText, cgroup.v2), memoryMb, netRxBytes: net.rx, netTxBytes: net.tx };
  }

  private async readEngine(containerId: string): Promise<Omit<UsageReading, 'diskMb'> | undefined> {
    const stats = (await this.deps.docker
      .getContainer(containerId)
      .stats({ stream: false, 'one-shot': true } as { stream: false })
      .catch(() => undefined)) as EngineStats | undefined;
    if (!stats?.cpu_stats?.cpu_usage || !stats.memory_stats?.usage) return undefined;
    const mem = stats.memory_stats;
    const s = mem.stats ?? {};
    const cache = s.total_cache ?? s.cache ?? s.file ?? 0;
    const shmem = s.total_shmem ?? s.shmem ?? 0;
    let rx = 0;
    let tx = 0;
    for (const n of Object.values(stats.networks ?? {})) {
      rx += n.rx_bytes ?? 0;
      tx += n.tx_bytes ?? 0;
    }
    return {
      cpuNs: stats.cpu_stats.cpu_usage.total_usage,
      memoryMb: Math.max(0, (mem.usage ?? 0) - Math.max(0, cache - shmem)) / MB,
      netRxBytes: rx,
      netTxBytes: tx,
    };
  }
}

/** The part of the engine's stats answer read here. */
interface EngineStats {
  cpu_stats?: { cpu_usage?: { total_usage: number } };
  memory_stats?: { usage?: number; stats?: Record<string, number | undefined> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}
