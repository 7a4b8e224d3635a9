import { Counter, Gauge, type Registry } from 'prom-client';
import type { RawSample } from './sample-ring.js';

/** What the series read: the newest sample of each sandbox sampled now. */
export interface CurrentUsage {
  current(): Map<string, RawSample>;
}

/**
 * Which sandboxes get series: all when they are at most `max`, else the `max` using the most
 * memory (ties by id, so the choice is stable between scrapes). Returns them and how many were left out.
 */
export function pickExported(
  current: Map<string, RawSample>,
  max: number,
): { exported: Array<[string, RawSample]>; dropped: number } {
  const all = [...current];
  if (all.length <= max) return { exported: all, dropped: 0 };
  all.sort(([a, x], [b, y]) => y.memoryMb - x.memoryMb || (a < b ? -1 : a > b ? 1 : 0));
  return { exported: all.slice(0, max), dropped: all.length - max };
}

/**
 * Prometheus series per sandbox (`usage.prometheusMaxSandboxes` > 0), computed at each scrape
 * from the sampler's newest samples: gauges for CPU, memory and disk, counters for the network
 * (bytes since the container started: a restart is a counter reset), and how many sandboxes were
 * left out by the bound. A sandbox that stopped or was deleted leaves the series at the next scrape.
 */
export function registerUsageMetrics(registry: Registry, usage: CurrentUsage, max: number): void {
  // Each series picks for itself (a sort of this node's sampled sandboxes: cheap at scrape rates).
  const pick = () => pickExported(usage.current(), max);
  const gauge = (name: string, help: string, value: (s: RawSample) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['sandbox'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [sandbox, sample] of pick().exported) this.set({ sandbox }, value(sample));
      },
    });
  gauge(
    'previewd_sandbox_cpu_percent',
    'CPU of the sandbox over its last sample interval, percent of one core',
    (s) => s.cpuPercent,
  );
  gauge('previewd_sandbox_memory_mb', 'Memory of the sandbox without the page cache, MB', (s) => s.memoryMb);
  gauge('previewd_sandbox_disk_mb', "Space used on the sandbox's disk, MB", (s) => s.diskMb);
  const counter = (name: string, help: string, value: (s: RawSample) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['sandbox'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [sandbox, sample] of pick().exported) this.inc({ sandbox }, value(sample));
      },
    });
  counter(
    'previewd_sandbox_net_rx_bytes_total',
    'Bytes the sandbox received since its container started',
    (s) => s.netRxBytes,
  );
  counter(
    'previewd_sandbox_net_tx_bytes_total',
    'Bytes the sandbox sent since its container started',
    (s) => s.netTxBytes,
  );
  new Gauge({
    name: 'previewd_sandbox_series_dropped',
    help: 'Sandboxes sampled now but left out of the per-sandbox series (usage.prometheusMaxSandboxes)',
    registers: [registry],
    collect() {
      this.set(pick().dropped);
    },
  });
}
