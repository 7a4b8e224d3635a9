import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Prometheus metrics of the edge, registered on the control plane's registry (served at /metrics). */
export class EdgeMetrics {
  readonly requests: Counter<'sandbox' | 'port' | 'status'>;
  readonly duration: Histogram<'sandbox' | 'port'>;
  readonly wakes: Counter<'result'>;
  readonly wakeDuration: Histogram;
  readonly websockets: Gauge;
  readonly frontRequests: Counter<'sandbox' | 'port'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'previewd_edge_requests_total',
      help: 'Preview requests by sandbox, port and status',
      labelNames: ['sandbox', 'port', 'status'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'previewd_edge_request_duration_seconds',
      help: 'Preview request duration until the response ended, by sandbox and port',
      labelNames: ['sandbox', 'port'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    });
    this.wakes = new Counter({
      name: 'previewd_edge_wakes_total',
      help: 'Sandboxes woken by a preview request, by result',
      labelNames: ['result'],
      registers: [registry],
    });
    this.wakeDuration = new Histogram({
      name: 'previewd_edge_wake_duration_seconds',
      help: 'From the first request for a sleeping sandbox until it was started',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    });
    this.frontRequests = new Counter({
      name: 'previewd_edge_front_requests_total',
      help: 'Requests the HAProxy front sent straight to the sandbox, by sandbox and port (all of them, logged or not; updated every 5 s)',
      labelNames: ['sandbox', 'port'],
      registers: [registry],
    });
    this.websockets = new Gauge({
      name: 'previewd_edge_open_websockets',
      help: 'WebSockets open through the edge',
      registers: [registry],
    });
  }

  private readonly children = new Map<string, { inc(): void; observe(v: number): void }>();

  /** Counts one request; labelled children are cached so the hot path does no label hashing. */
  observe(sandbox: string, port: number, status: number, seconds: number): void {
    const key = `${sandbox}:${port}:${status}`;
    let child = this.children.get(key);
    if (!child) {
      const counter = this.requests.labels({ sandbox, port: String(port), status: String(status) });
      const histogram = this.duration.labels({ sandbox, port: String(port) });
      child = { inc: () => counter.inc(), observe: (v) => histogram.observe(v) };
      this.children.set(key, child);
    }
    child.inc();
    child.observe(seconds);
  }

  /** Drops the series of a deleted sandbox. */
  forget(sandboxId: string): void {
    for (const key of this.children.keys()) if (key.startsWith(`${sandboxId}:`)) this.children.delete(key);
    this.requests.remove({ sandbox: sandboxId } as never);
    this.duration.remove({ sandbox: sandboxId } as never);
    this.frontRequests.remove({ sandbox: sandboxId } as never);
  }
}
