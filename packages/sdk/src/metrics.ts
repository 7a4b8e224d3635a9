import type { SandboxMetrics } from './generated/api-types.js';
import type { Http } from './http.js';

export type { SandboxMetrics };

/** One usage sample of a sandbox (GET /v1/sandboxes/{id}/metrics; docs/usage.md); generated from the server. */
export type UsageSample = SandboxMetrics['samples'][number];

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
