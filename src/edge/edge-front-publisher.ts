import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AccessLog } from './access-log.js';
import type { ActivityTracker } from './activity.js';
import type { EdgeListeners } from './edge-listeners.js';
import type { EdgeMetrics } from './edge-metrics.js';
import { frontAccess } from './front-access.js';
import { appUnreachable, type FrontLogEntry } from './front-log.js';
import { FrontProxy, haproxyAvailable } from './front-proxy.js';
import { formatPreviewHost, type PreviewHostParser } from './preview-host.js';
import type { Route, RouteTable } from './route-table.js';

export interface FrontPublisherDeps {
  config: Config;
  log: Logger;
  hosts: PreviewHostParser;
  routes: RouteTable;
  metrics: EdgeMetrics;
  activity: ActivityTracker;
  accessLog: AccessLog;
  listeners: EdgeListeners;
}

/** What the built-in edge serves on its loopback listener behind the front. */
export interface EdgeHandlers {
  onRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void;
}

/**
 * The HAProxy front as the edge sees it (edge.front): starts it before the built-in edge's
 * loopback listener, publishes the running public routes the built-in edge proved, withdraws them
 * on any event naming the sandbox or before it sleeps, and turns the front's log lines and
 * counters into the edge's access log, metrics and activity.
 */
export class FrontPublisher {
  /** HAProxy in front, once started. */
  front?: FrontProxy;
  /** Base URL of the built-in edge's loopback listener behind the front. */
  builtinUrl?: string;
  private timer?: NodeJS.Timeout;
  /** HAProxy's request count per host at the last poll. */
  private readonly counts = new Map<string, number>();
  /** Sandboxes about to sleep: not published again until their state changes. */
  private readonly goingToSleep = new Set<string>();
  /** Client addresses of requests handed on by the front. */
  private readonly clients = new WeakMap<IncomingMessage, string>();

  constructor(private readonly deps: FrontPublisherDeps) {}

  /**
   * With a front (edge.front "haproxy", or "auto" and HAProxy is installed): the built-in edge
   * listens on loopback and HAProxy takes the configured addresses. In "auto", a front that does
   * not start leaves the built-in edge on the configured addresses, with an error logged.
   */
  async start(handlers: EdgeHandlers): Promise<boolean> {
    const { config, log, listeners } = this.deps;
    const mode = config.edge.front;
    if (config.edgeMode !== 'builtin' || mode === 'off') return false;
    if (mode === 'auto' && !haproxyAvailable(config.edge.haproxyBin)) {
      log.info('edge: HAProxy not found, serving previews from the built-in edge alone');
      return false;
    }
    const internal = createHttpServer((req, res) => handlers.onRequest(req, res, this.fromFront(req)));
    internal.on('upgrade', (req, socket, head) => handlers.onUpgrade(req, socket, head, this.fromFront(req)));
    const builtinUrl = await listeners.listen(internal, '127.0.0.1:0', 'http');
    const front = new FrontProxy({
      config,
      log,
      builtin: { host: '127.0.0.1', port: Number(new URL(builtinUrl).port) },
      onEntry: (entry) => this.onEntry(entry),
    });
    try {
      await front.start();
    } catch (err) {
      await front.stop();
      await listeners.close();
      if (mode === 'haproxy') throw err;
      log.error(
        { err: (err as Error).message },
        'edge: the HAProxy front did not start; built-in edge alone',
      );
      return false;
    }
    this.front = front;
    this.builtinUrl = builtinUrl;
    this.timer = setInterval(() => void this.poll(front), 5000);
    this.timer.unref();
    log.info({ url: front.url, builtin: builtinUrl }, 'edge: HAProxy front started');
    return true;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.front?.stop();
  }

  /** The client address the front named for a request it handed on (undefined: not from the front). */
  client(req: IncomingMessage): string | undefined {
    return this.clients.get(req);
  }

  /** An event named the sandbox: the front stops routing to it until the edge proves it again. */
  onEvent(sandboxId: string, type: string): void {
    void this.front?.withdraw(sandboxId);
    if (type === 'sandbox.state') this.goingToSleep.delete(sandboxId);
  }

  /**
   * Lets the front serve a running preview whose port answers (the built-in edge proved it); a
   * private one with what the front's token check needs (front-access.ts), published once the
   * built-in edge let a token through.
   */
  offer(route: Route, port: number, addr: { host: string; port: number }): void {
    if (!this.front) return;
    if (this.deps.routes.peek(route.id) !== route) return;
    if (this.goingToSleep.has(route.id)) return;
    this.front.publish(
      route.id,
      formatPreviewHost(this.deps.config, route.id, port),
      addr,
      frontAccess(route, port),
    );
  }

  /** The port stopped answering: the front sends its requests to the built-in edge again. */
  withdrawPort(sandboxId: string, port: number): void {
    if (this.front)
      void this.front.withdrawHost(formatPreviewHost(this.deps.config, sandboxId, port).toLowerCase());
  }

  /**
   * Stops the front routing to a sandbox before it sleeps, and keeps it from being published
   * again until its state changes (a request meanwhile goes through the built-in edge).
   */
  async beforeSleep(sandboxId: string): Promise<void> {
    if (!this.front) return;
    this.goingToSleep.add(sandboxId);
    await this.front.withdraw(sandboxId);
  }

  /**
   * A request handed on by the front: who sent it and whether it came over TLS. The front drops
   * the client's X-Forwarded-* and sets its own, and only the front reaches this loopback listener.
   */
  private fromFront(req: IncomingMessage): boolean {
    const client = req.headers['x-forwarded-for'];
    if (typeof client === 'string') this.clients.set(req, client);
    return req.headers['x-forwarded-proto'] === 'https';
  }

  /**
   * HAProxy's per-host counters, every 5 s: requests it served (logged or not) become activity and
   * the front's request metric; a stream still open is activity while it lasts (its log line
   * comes at its end).
   */
  private async poll(front: FrontProxy): Promise<void> {
    const seen = new Set<string>();
    for (const { key, inUse, requests } of await front.hostCounters()) {
      const target = this.deps.hosts.parse(key);
      if (!target) continue;
      seen.add(key);
      const last = this.counts.get(key) ?? 0;
      const added = requests >= last ? requests - last : requests;
      this.counts.set(key, requests);
      if (added > 0) {
        this.deps.metrics.frontRequests.inc({ sandbox: target.sandboxId, port: String(target.port) }, added);
      }
      if (added > 0 || inUse > 0) this.deps.activity.touch(target.sandboxId);
    }
    for (const key of this.counts.keys()) if (!seen.has(key)) this.counts.delete(key);
  }

  /** One request the front sent straight to a sandbox: the same records as the edge's own. */
  private onEntry(entry: FrontLogEntry): void {
    const target = this.deps.hosts.parse(entry.host);
    if (!target) return;
    if (appUnreachable(entry)) {
      void this.front?.withdrawHost(entry.host);
      this.deps.routes.invalidate(target.sandboxId);
      return;
    }
    this.deps.activity.touch(target.sandboxId);
    this.deps.metrics.observe(target.sandboxId, target.port, entry.status, entry.durationMs / 1000);
    this.deps.accessLog.record(target.sandboxId, {
      timeMs: entry.timeMs,
      method: entry.method,
      path: entry.path,
      port: target.port,
      status: entry.status,
      bytes: entry.bytes,
      durationMs: entry.durationMs,
      websocket: false,
    });
  }
}
