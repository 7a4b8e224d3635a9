import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { sandboxStates } from '../domain/state-machine.js';
import type { Store } from '../store/store.js';

/** Prometheus metrics of the control plane, served at /metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'previewd_process_' });
    this.httpRequests = new Counter({
      name: 'previewd_api_requests_total',
      help: 'API requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: 'previewd_api_request_duration_seconds',
      help: 'API request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.registry],
    });
    new Gauge({
      name: 'previewd_sandboxes',
      help: 'Sandboxes by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = new Map<string, number>(sandboxStates.map((s) => [s, 0]));
        for (const row of await store.listSandboxes())
          counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
        counts.delete('deleted');
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }

  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
      this.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
  }
}
