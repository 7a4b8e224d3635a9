/** A sandbox the sampler reads: this node's own, running or paused. */
export interface UsageTarget {
  sandboxId: string;
  /** The engine's id of its container (cgroup paths, engine stats). */
  containerId: string;
}

/** Counters of one sandbox at one moment, as the host (or the engine) reports them. */
export interface UsageReading {
  /** CPU time used by the container so far, in nanoseconds (cumulative). */
  cpuNs: number;
  /** Memory in use without the page cache, in MB. */
  memoryMb: number;
  /** Space used on the sandbox's disk, in MB. */
  diskMb: number;
  /** Bytes received and sent on the container's interfaces (loopback excluded) since it started. */
  netRxBytes: number;
  netTxBytes: number;
}

/**
 * Where the sampler reads usage: the host's cgroup and /proc files, or the engine's stats
 * (host-usage-source.ts), or a test's fake. One call per sandbox per sample.
 */
export interface UsageSource {
  /** Undefined when the sandbox's container is gone (it stopped between the listing and the read). */
  read(target: UsageTarget): Promise<UsageReading | undefined>;
  /** The sandbox is gone: drop whatever is cached about it. */
  forget?(sandboxId: string): void;
}
