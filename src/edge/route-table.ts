import type { SandboxState } from '../domain/state-machine.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxDirectory, SandboxEntry } from './sandbox-directory.js';

/** What the edge needs to route a request, kept in memory. */
export interface Route {
  id: string;
  state: SandboxState;
  /** The node that manages it (`local` on a single host). */
  node: string;
  ports: ReadonlySet<number>;
  visibility: 'public' | 'private';
  /** Revocation instant of preview tokens (ms since the epoch; 0 when never revoked). */
  tokensValidAfter: number;
  error?: { code: string; message: string };
  /** Upstream address per port, resolved once per run of the sandbox. */
  addresses: Map<number, { host: string; port: number }>;
  /** Ports that answered since the sandbox last changed state (no probe needed before proxying). */
  ready: Set<number>;
}

function toRoute(record: SandboxEntry): Route {
  return {
    id: record.id,
    state: record.state,
    node: record.node,
    ports: new Set(record.ports),
    visibility: record.visibility,
    tokensValidAfter: record.previewTokensValidAfter ? Date.parse(record.previewTokensValidAfter) : 0,
    error: record.error,
    addresses: new Map(),
    ready: new Set(),
  };
}

/**
 * Cache of sandbox id → route. Filled from the sandbox directory on a miss and dropped whenever an event names
 * the sandbox, so the per-request path touches neither the database nor the engine once warm.
 * Unknown ids are cached briefly too, so a flood of requests for a bad host stays in memory.
 */
export class RouteTable {
  private readonly routes = new Map<string, Route>();
  private readonly loading = new Map<string, Promise<Route | undefined>>();
  private readonly missing = new Map<string, number>();
  /** Bumped on every invalidation of an id, so a load that raced with an event is not cached. */
  private readonly generations = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly directory: SandboxDirectory,
    bus: EventBus,
    private readonly missTtlMs = 1000,
    /** Told about each route dropped from the cache (to release its upstream connections). */
    private readonly onDrop: (route: Route) => void = () => undefined,
  ) {
    this.unsubscribe = bus.subscribe((event) => this.invalidate(event.sandboxId));
  }

  invalidate(id: string): void {
    const old = this.routes.get(id);
    this.routes.delete(id);
    if (old) this.onDrop(old);
    this.missing.delete(id);
    this.generations.set(id, (this.generations.get(id) ?? 0) + 1);
  }

  /** The cached route, if any (no I/O). */
  peek(id: string): Route | undefined {
    return this.routes.get(id);
  }

  get(id: string): Route | undefined | Promise<Route | undefined> {
    const cached = this.routes.get(id);
    if (cached) return cached;
    const missAt = this.missing.get(id);
    if (missAt !== undefined && Date.now() - missAt < this.missTtlMs) return undefined;
    return this.load(id);
  }

  private load(id: string): Promise<Route | undefined> {
    let pending = this.loading.get(id);
    if (pending) return pending;
    const generation = this.generations.get(id) ?? 0;
    pending = this.directory
      .lookup(id)
      .then((record) => {
        if ((this.generations.get(id) ?? 0) !== generation) return record ? toRoute(record) : undefined;
        if (!record) {
          this.missing.set(id, Date.now());
          return undefined;
        }
        const route = toRoute(record);
        this.routes.set(id, route);
        return route;
      })
      .finally(() => this.loading.delete(id));
    this.loading.set(id, pending);
    return pending;
  }

  /** A fresh route from the directory (after a wake, for instance). */
  async refresh(id: string): Promise<Route | undefined> {
    this.invalidate(id);
    return this.load(id);
  }

  /** Where `port` of the sandbox answers; cached on the route for the sandbox's current run. */
  async address(route: Route, port: number): Promise<{ host: string; port: number }> {
    const known = route.addresses.get(port);
    if (known) return known;
    const addr = await this.directory.address(route.id, port);
    route.addresses.set(port, addr);
    return addr;
  }

  close(): void {
    this.unsubscribe();
    this.routes.clear();
  }
}
