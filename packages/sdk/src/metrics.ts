import type { Http } from './http.js';

/** One usage sample of a sandbox (GET /v1/sandboxes/{id}/metrics; docs/usage.md). */
export interface UsageSample {
  /** When the sample was taken (ISO time, the end of its interval). */
  at: string;
  /** CPU over the interval, percent of one core (200 = two cores busy). */
  cpuPercent: number;
  /** Memory in use without the page cache, MB. */
  memoryMb: number;
  /** Space used on the sandbox's disk, MB. */
  diskMb: number;
  /** Bytes received since the container last started (cumulative). */
  netRxBytes: number;
  /** Bytes sent since the container last started (cumulative). */
  netTxBytes: number;
}

/** The answer of `sandboxes.metrics()`. */
export interface SandboxMetrics {
  intervalSec: number;
  retentionSec: number;
  /** Oldest first. */
  samples: UsageSample[];
}

export interface MetricsOptions {
  /** Only samples taken after this time (exclusive): a Date, epoch milliseconds or an ISO time. */
  since?: Date | number | string;
}

/** GET /v1/sandboxes/{id}/metrics with `since` as the API takes it. */
export function fetchSandboxMetrics(
  http: Http,
  id: string,
  opts: MetricsOptions = {},
): Promise<SandboxMetrics> {
  const since =
    opts.since === undefined
      ? undefined
      : opts.since instanceof Date
        ? opts.since.toISOString()
        : String(opts.since);
  return http.json('GET', `/v1/sandboxes/${encodeURIComponent(id)}/metrics`, { query: { since } });
}
