import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isPreviewdError, PreviewdError } from '../domain/errors.js';
import type { EventBus } from '../events/bus.js';
import { answerClientError } from '../http/client-errors.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import { AccessLog } from './access-log.js';
import { ActivityTracker } from './activity.js';
import { lastLogLines } from './app-logs.js';
import { EdgeMetrics } from './edge-metrics.js';
import { HOP_BY_HOP_REQUEST, originFormTarget } from './forwarding.js';
import { appUnreachable, type FrontLogEntry } from './front-log.js';
import { FrontProxy, haproxyAvailable } from './front-proxy.js';
import { isNavigation, STATUS_PATH, sendError, sendJson, sendStartingPage } from './pages.js';
import { probePort } from './port-probe.js';
import { PreviewAccess, sameHostLocation } from './preview-access.js';
import { formatPreviewHost, PreviewHostParser, type PreviewTarget } from './preview-host.js';
import { defaultKeyFile, loadSigningKeys, PreviewTokens, stripTokenParam } from './preview-tokens.js';
import { previewOrigin } from './preview-urls.js';
import { UpstreamProxy } from './proxy.js';
import type { Route } from './route-table.js';
import { RouteTable } from './route-table.js';
import { appDown, crashedError, sandboxError, Waker } from './wake.js';

export interface EdgeDeps {
  config: Config;
  store: Store;
  provider: SandboxProvider;
  bus: EventBus;
  service: SandboxService;
  registry: Registry;
  log: Logger;
}

const SLEEPING = new Set(['stopped', 'paused', 'stopping']);

export { tokenCookieScope } from './preview-access.js';

/**
 * The preview edge: a plain node:http server (and optionally an https one) that routes
 * `{port}-{id}.{previewDomain}` to the sandbox, checks private-preview tokens, wakes sleeping
 * sandboxes and proxies HTTP, streams and WebSockets. With the HAProxy front (front-proxy.ts) it
 * listens on loopback behind HAProxy and hands it the running public routes it has proven.
 */
export class Edge {
  readonly routes: RouteTable;
  readonly accessLog: AccessLog;
  readonly activity: ActivityTracker;
  readonly metrics: EdgeMetrics;
  readonly tokens: PreviewTokens;
  readonly waker: Waker;
  private readonly access: PreviewAccess;
  private readonly proxy = new UpstreamProxy();
  private readonly probeOpts: { http: boolean };
  private readonly hosts: PreviewHostParser;
  private readonly servers: Server[] = [];
  /** Every socket accepted by the listeners, until it closes. */
  private readonly sockets = new Set<Duplex>();
  private readonly unsubscribe: () => void;
  /** HAProxy in front, when on (edge.front): it serves running public previews itself. */
  front?: FrontProxy;
  private frontTimer?: NodeJS.Timeout;
  /** HAProxy's request count per host at the last poll. */
  private readonly frontCounts = new Map<string, number>();
  /** Sandboxes about to sleep: not published again until their state changes. */
  private readonly goingToSleep = new Set<string>();
  /** Client addresses of requests handed on by the front. */
  private readonly frontClients = new WeakMap<IncomingMessage, string>();
  /** Base URL of the plain-HTTP listener, once started. */
  url?: string;
  /** Base URL of the built-in edge's own listener (loopback when a front is on; else `url`). */
  builtinUrl?: string;
  /** Base URL of the TLS listener, once started (when configured). */
  tlsUrl?: string;

  constructor(private readonly deps: EdgeDeps) {
    const { config } = deps;
    this.hosts = new PreviewHostParser(config);
    this.probeOpts = { http: config.edge.useLoopbackPorts };
    this.routes = new RouteTable(deps.store, deps.provider, deps.bus, 1000, (old) => {
      // The sandbox changed: a kept connection to its old address is of no more use.
      if (old.state === 'running') for (const addr of old.addresses.values()) this.proxy.forget(addr);
    });
    this.accessLog = new AccessLog(config.edge.accessLogSize);
    this.activity = new ActivityTracker(deps.store, deps.log);
    this.metrics = new EdgeMetrics(deps.registry);
    this.tokens = new PreviewTokens(
      loadSigningKeys(config.edge.tokenSecretFile ?? defaultKeyFile(config.dataDir)),
    );
    this.access = new PreviewAccess(this.tokens, config);
    this.waker = new Waker({
      service: deps.service,
      routes: this.routes,
      provider: deps.provider,
      metrics: this.metrics,
      log: deps.log,
      timeoutMs: config.edge.wakeTimeoutSec * 1000,
      httpProbe: config.edge.useLoopbackPorts,
    });
    this.unsubscribe = deps.bus.subscribe((event) => {
      // Whatever changed, the front stops routing to the sandbox; the route table drops its cached
      // route on the same events, and the next request proves the route again.
      void this.front?.withdraw(event.sandboxId);
      if (event.type === 'sandbox.state') this.goingToSleep.delete(event.sandboxId);
      if (event.type === 'sandbox.deleted') {
        this.accessLog.forget(event.sandboxId);
        this.metrics.forget(event.sandboxId);
      }
    });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    if (await this.startFront()) {
      this.activity.start();
      return;
    }
    const plain = createHttpServer((req, res) => this.onRequest(req, res, false));
    plain.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, false));
    this.url = await this.listen(plain, config.edgeAddr, 'http');
    this.builtinUrl = this.url;
    if (config.edge.tls) {
      const secure = createHttpsServer(
        { cert: readFileSync(config.edge.tls.certFile), key: readFileSync(config.edge.tls.keyFile) },
        (req, res) => this.onRequest(req, res, true),
      );
      secure.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, true));
      this.tlsUrl = await this.listen(secure, config.edge.tls.addr, 'https');
    }
    this.activity.start();
  }

  /**
   * With a front (edge.front "haproxy", or "auto" and HAProxy is installed): the built-in edge
   * listens on loopback and HAProxy takes the configured addresses. In "auto", a front that does
   * not start leaves the built-in edge on the configured addresses, with an error logged.
   */
  private async startFront(): Promise<boolean> {
    const { config, log } = this.deps;
    const mode = config.edge.front;
    if (config.edgeMode !== 'builtin' || mode === 'off') return false;
    if (mode === 'auto' && !haproxyAvailable(config.edge.haproxyBin)) {
      log.info('edge: HAProxy not found, serving previews from the built-in edge alone');
      return false;
    }
    const internal = createHttpServer((req, res) => this.onRequest(req, res, this.fromFront(req)));
    internal.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, this.fromFront(req)));
    this.builtinUrl = await this.listen(internal, '127.0.0.1:0', 'http');
    const front = new FrontProxy({
      config,
      log,
      builtin: { host: '127.0.0.1', port: Number(new URL(this.builtinUrl).port) },
      onEntry: (entry) => this.onFrontEntry(entry),
    });
    try {
      await front.start();
    } catch (err) {
      await front.stop();
      await this.closeServers();
      if (mode === 'haproxy') throw err;
      log.error(
        { err: (err as Error).message },
        'edge: the HAProxy front did not start; built-in edge alone',
      );
      return false;
    }
    this.front = front;
    this.url = front.url;
    this.tlsUrl = front.tlsUrl;
    this.frontTimer = setInterval(() => void this.pollFront(front), 5000);
    this.frontTimer.unref();
    log.info({ url: front.url, builtin: this.builtinUrl }, 'edge: HAProxy front started');
    return true;
  }

  /**
   * HAProxy's per-host counters, every 5 s: requests it served (logged or not) become activity and
   * the front's request metric; a stream still open is activity while it lasts (its log line
   * comes at its end).
   */
  private async pollFront(front: FrontProxy): Promise<void> {
    const seen = new Set<string>();
    for (const { key, inUse, requests } of await front.hostCounters()) {
      const target = this.hosts.parse(key);
      if (!target) continue;
      seen.add(key);
      const last = this.frontCounts.get(key) ?? 0;
      const added = requests >= last ? requests - last : requests;
      this.frontCounts.set(key, requests);
      if (added > 0) {
        this.metrics.frontRequests.inc({ sandbox: target.sandboxId, port: String(target.port) }, added);
      }
      if (added > 0 || inUse > 0) this.activity.touch(target.sandboxId);
    }
    for (const key of this.frontCounts.keys()) if (!seen.has(key)) this.frontCounts.delete(key);
  }

  /**
   * A request handed on by the front: who sent it and whether it came over TLS. The front drops
   * the client's X-Forwarded-* and sets its own, and only the front reaches this loopback listener.
   */
  private fromFront(req: IncomingMessage): boolean {
    const client = req.headers['x-forwarded-for'];
    if (typeof client === 'string') this.frontClients.set(req, client);
    return req.headers['x-forwarded-proto'] === 'https';
  }

  /** One request the front sent straight to a sandbox: the same records as the edge's own. */
  private onFrontEntry(entry: FrontLogEntry): void {
    const target = this.hosts.parse(entry.host);
    if (!target) return;
    if (appUnreachable(entry)) {
      void this.front?.withdrawHost(entry.host);
      this.routes.invalidate(target.sandboxId);
      return;
    }
    this.activity.touch(target.sandboxId);
    this.metrics.observe(target.sandboxId, target.port, entry.status, entry.durationMs / 1000);
    this.accessLog.record(target.sandboxId, {
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

  /** Lets the front serve a running public preview whose port answers (the built-in edge proved it). */
  private offerFront(route: Route, port: number, addr: { host: string; port: number }): void {
    if (route.visibility !== 'public' || this.routes.peek(route.id) !== route) return;
    if (this.goingToSleep.has(route.id)) return;
    this.front?.publish(route.id, formatPreviewHost(this.deps.config, route.id, port), addr);
  }

  /**
   * Stops the front routing to a sandbox before it sleeps, and keeps it from being published
   * again until its state changes (a request meanwhile goes through the built-in edge).
   */
  async withdrawFront(sandboxId: string): Promise<void> {
    if (!this.front) return;
    this.goingToSleep.add(sandboxId);
    await this.front.withdraw(sandboxId);
  }

  private async listen(server: Server, addr: string, scheme: string): Promise<string> {
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0; // long uploads are fine; the app decides
    server.headersTimeout = 60_000;
    server.on('clientError', answerClientError);
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    const { host, port } = splitHostPort(addr);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push(server);
    const bound = (server.address() as AddressInfo).port;
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  }

  /** The port the plain-HTTP listener is bound to. */
  get port(): number | undefined {
    return this.url ? Number(new URL(this.url).port) : undefined;
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    this.waker.close();
    if (this.frontTimer) clearInterval(this.frontTimer);
    await this.front?.stop();
    await this.closeServers();
    this.proxy.close();
    this.routes.close();
    await this.activity.stop();
  }

  private async closeServers(): Promise<void> {
    const closed = this.servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    // Upgraded sockets (WebSockets) are no HTTP connections any more: closed here, or the
    // listeners would wait for them.
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
    this.servers.length = 0;
  }

  // ---- HTTP -------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    const started = performance.now();
    const path = originFormTarget(req.url ?? '');
    if (path === undefined) {
      sendError(req, res, new PreviewdError('bad_request', 'the request target is not a path'));
      return;
    }
    req.url = path;
    const target = this.hosts.parse(req.headers.host);
    if (!target) {
      sendError(
        req,
        res,
        new PreviewdError('not_a_preview_host', `"${req.headers.host ?? ''}" is not a preview host`),
      );
      return;
    }
    const tls = this.deps.config.edge.tls;
    if (!secure && tls && this.deps.config.edge.httpsRedirect) {
      this.redirectToHttps(req, res);
      return;
    }
    const route = this.routes.get(target.sandboxId);
    if (route instanceof Promise) {
      route.then(
        (r) => this.serve(req, res, target, r, secure, started),
        (err) => this.fail(req, res, err),
      );
    } else {
      this.serve(req, res, target, route, secure, started);
    }
  }

  private redirectToHttps(req: IncomingMessage, res: ServerResponse): void {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const { scheme, port } = previewOrigin(this.deps.config);
    const httpsPort = scheme === 'https' ? port : Number(new URL(this.tlsUrl ?? 'https://x:443').port || 443);
    res.writeHead(308, {
      location: `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${sameHostLocation(req.url ?? '/')}`,
    });
    res.end();
  }

  private serve(
    req: IncomingMessage,
    res: ServerResponse,
    target: PreviewTarget,
    route: Route | undefined,
    secure: boolean,
    started: number,
  ): void {
    if (!route) {
      sendError(
        req,
        res,
        new PreviewdError('sandbox_not_found', `sandbox ${target.sandboxId} does not exist`),
      );
      return;
    }
    // A private preview tells nothing (ports, state, logs) before the token is checked.
    const exposed = route.ports.has(target.port);
    if (exposed) this.observe(req, res, target, started);
    if (route.visibility === 'private' && !this.authorize(req, res, route, target, secure)) return;
    if (!exposed) {
      sendError(
        req,
        res,
        new PreviewdError('port_not_exposed', `port ${target.port} of sandbox ${route.id} is not exposed`, {
          details: { exposed: [...route.ports] },
        }),
      );
      return;
    }
    this.activity.touch(route.id);
    if (req.url === STATUS_PATH || req.url?.startsWith(`${STATUS_PATH}?`)) {
      void this.status(req, res, route, target);
      return;
    }
    this.prepareHeaders(req, secure, false);
    if (route.state === 'running' && route.ready.has(target.port)) {
      const addr = route.addresses.get(target.port);
      if (addr) {
        if (this.front) this.offerFront(route, target.port, addr);
        this.proxy.web(req, res, addr, (err) => this.upstreamFailed(req, res, route, target, err));
        return;
      }
    }
    void this.serveSlow(req, res, route, target);
  }

  /** The sandbox sleeps, starts, or its port has not answered yet. */
  private async serveSlow(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    target: PreviewTarget,
  ): Promise<void> {
    try {
      if (route.state === 'error') throw sandboxError(route);
      if (isNavigation(req)) {
        if (SLEEPING.has(route.state)) {
          this.waker.wake(route.id).catch(() => undefined);
        } else if (route.state === 'running') {
          const addr = await this.routes.address(route, target.port).catch(() => undefined);
          if (addr && (await probePort(addr.host, addr.port, 250, this.probeOpts))) {
            route.ready.add(target.port);
            this.proxy.web(req, res, addr, (err) => this.upstreamFailed(req, res, route, target, err));
            return;
          }
          // The container is up but its supervisor reports the app down: the crashed page.
          const down = await appDown(this.deps.provider, { sandboxId: route.id, status: 'running' });
          if (down) throw await crashedError(this.deps.provider, route.id, down.exitCode);
        }
        sendStartingPage(res, {
          sandboxId: route.id,
          port: target.port,
          logs: await lastLogLines(this.deps.provider, route.id),
        });
        return;
      }
      const addr = await this.waker.ready(route.id, target.port);
      if (req.destroyed) return;
      const fresh = this.routes.peek(route.id) ?? route;
      this.proxy.web(req, res, addr, (err) => this.upstreamFailed(req, res, fresh, target, err));
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private upstreamFailed(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    target: PreviewTarget,
    err: Error & { code?: string },
    retried = false,
  ): void {
    route.ready.delete(target.port);
    if (this.front)
      void this.front.withdrawHost(formatPreviewHost(this.deps.config, route.id, target.port).toLowerCase());
    const addr = route.addresses.get(target.port);
    if (addr && (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH')) this.proxy.forget(addr);
    // The socket may be gone already (null once the request finished and let go of it).
    if (res.headersSent || res.destroyed || !req.socket || req.socket.destroyed) {
      res.destroy();
      return;
    }
    void (async () => {
      const info = await this.deps.provider.inspect(route.id).catch(() => undefined);
      const down = info ? await appDown(this.deps.provider, info) : undefined;
      if (down) {
        this.routes.invalidate(route.id);
        this.fail(req, res, await crashedError(this.deps.provider, route.id, down.exitCode));
        return;
      }
      if (err.code === 'ECONNREFUSED' && info?.status === 'running') {
        // The app closed its port (a dev server restarting itself): same as "still starting".
        if (isNavigation(req)) {
          sendStartingPage(res, {
            sandboxId: route.id,
            port: target.port,
            logs: await lastLogLines(this.deps.provider, route.id),
          });
          return;
        }
        const bodiless =
          (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') &&
          req.headers['content-length'] === undefined &&
          req.headers['transfer-encoding'] === undefined;
        if (bodiless && !retried) {
          try {
            const next = await this.waker.ready(route.id, target.port);
            const fresh = this.routes.peek(route.id) ?? route;
            this.proxy.web(req, res, next, (e) => this.upstreamFailed(req, res, fresh, target, e, true));
          } catch (e) {
            this.fail(req, res, e);
          }
          return;
        }
      }
      this.fail(
        req,
        res,
        new PreviewdError(
          'upstream_error',
          `port ${target.port} of sandbox ${route.id}: ${err.code ?? err.message}`,
        ),
      );
    })();
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (isPreviewdError(err)) {
      sendError(req, res, err);
      return;
    }
    this.deps.log.error({ err }, 'edge request failed');
    sendError(req, res, new PreviewdError('internal', (err as Error)?.message ?? String(err)));
  }

  /** `/__previewd/status` on a preview host: what the starting page polls. */
  private async status(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    target: PreviewTarget,
  ): Promise<void> {
    try {
      const fresh = (await this.routes.get(route.id)) ?? route;
      let ready = false;
      let crashed: { exitCode?: number } | undefined;
      let message = '';
      if (fresh.state === 'running') {
        const addr = await this.routes.address(fresh, target.port).catch(() => undefined);
        ready = addr ? await probePort(addr.host, addr.port, 250, this.probeOpts) : false;
        if (ready) fresh.ready.add(target.port);
      }
      if (!ready && (fresh.state === 'running' || fresh.error?.code === 'app_exited')) {
        const info = await this.deps.provider.inspect(fresh.id);
        const down = await appDown(this.deps.provider, info);
        if (down) {
          crashed = { exitCode: down.exitCode };
          message = `The app exited with code ${down.exitCode}.`;
        }
      }
      if (fresh.state === 'error') message = fresh.error?.message ?? 'The sandbox is in error.';
      const logs = ready ? [] : await lastLogLines(this.deps.provider, fresh.id);
      sendJson(res, 200, {
        sandboxId: fresh.id,
        port: target.port,
        state: fresh.state,
        ready,
        crashed,
        message,
        logs,
      });
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private observe(req: IncomingMessage, res: ServerResponse, target: PreviewTarget, started: number): void {
    const socket = req.socket;
    const bytesBefore = socket.bytesWritten;
    res.once('close', () => {
      const durationMs = performance.now() - started;
      this.metrics.observe(target.sandboxId, target.port, res.statusCode, durationMs / 1000);
      this.accessLog.record(target.sandboxId, {
        timeMs: Date.now() - durationMs,
        method: req.method ?? 'GET',
        path: stripTokenParam(req.url ?? '/'),
        port: target.port,
        status: res.statusCode,
        bytes: Math.max(0, socket.bytesWritten - bytesBefore),
        durationMs: Math.round(durationMs * 1000) / 1000,
        websocket: false,
      });
    });
  }

  /** Strips hop-by-hop and client-supplied internal headers; sets X-Forwarded-*. Host is kept. */
  private prepareHeaders(req: IncomingMessage, secure: boolean, upgrade: boolean): void {
    const h = req.headers;
    const connection = h.connection;
    if (typeof connection === 'string') {
      for (const token of connection.split(',')) {
        const name = token.trim().toLowerCase();
        if (name && name !== 'upgrade' && name !== 'host') delete h[name];
      }
    }
    for (const name of HOP_BY_HOP_REQUEST) delete h[name];
    if (!upgrade) {
      delete h.connection;
      delete h.upgrade;
    }
    for (const name of Object.keys(h)) {
      if (
        name.startsWith('x-forwarded-') ||
        name.startsWith('x-previewd-') ||
        name === 'forwarded' ||
        name === 'x-real-ip'
      ) {
        delete h[name];
      }
    }
    if (h.host) h['x-forwarded-host'] = h.host;
    h['x-forwarded-proto'] = secure ? 'https' : 'http';
    const remote = this.frontClients.get(req) ?? req.socket.remoteAddress;
    if (remote) h['x-forwarded-for'] = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  }

  // ---- private previews -------------------------------------------------------------------

  /**
   * Checks the preview token of a private sandbox (preview-access.ts); false when it has answered.
   * Also Traefik's forward-auth (src/traefik/forward-auth.ts): one set of token and cookie rules.
   */
  authorize(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    route: Route,
    target: PreviewTarget,
    secure: boolean,
  ): boolean {
    return this.access.authorize(req, res, route, target, secure);
  }

  // ---- WebSockets -------------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    socket.on('error', () => undefined);
    const started = performance.now();
    const path = originFormTarget(req.url ?? '');
    if (path === undefined) {
      this.rejectUpgrade(socket, new PreviewdError('bad_request', 'the request target is not a path'));
      return;
    }
    // Only a WebSocket opening handshake can be proxied (anything else was dropped unanswered).
    if (req.method !== 'GET' || req.headers.upgrade?.trim().toLowerCase() !== 'websocket') {
      this.rejectUpgrade(
        socket,
        new PreviewdError('bad_request', 'only WebSocket upgrades (GET) are proxied'),
      );
      return;
    }
    req.url = path;
    const target = this.hosts.parse(req.headers.host);
    if (!target) {
      this.rejectUpgrade(
        socket,
        new PreviewdError('not_a_preview_host', `"${req.headers.host ?? ''}" is not a preview host`),
      );
      return;
    }
    void (async () => {
      try {
        const route = await this.routes.get(target.sandboxId);
        if (!route)
          throw new PreviewdError('sandbox_not_found', `sandbox ${target.sandboxId} does not exist`);
        if (route.visibility === 'private' && !this.authorize(req, undefined, route, target, secure)) {
          throw this.access.upgradeRefusal(req, route);
        }
        if (!route.ports.has(target.port)) {
          throw new PreviewdError(
            'port_not_exposed',
            `port ${target.port} of sandbox ${route.id} is not exposed`,
          );
        }
        this.prepareHeaders(req, secure, true);
        let addr =
          route.state === 'running' && route.ready.has(target.port)
            ? route.addresses.get(target.port)
            : undefined;
        if (!addr) {
          if (route.state === 'error') throw sandboxError(route);
          addr = await this.waker.ready(route.id, target.port);
        }
        if (socket.destroyed) return;
        this.activity.socketOpened(route.id);
        this.metrics.websockets.inc();
        const bytesBefore = (socket as { bytesWritten?: number }).bytesWritten ?? 0;
        socket.once('close', () => {
          this.activity.socketClosed(route.id);
          this.metrics.websockets.dec();
          this.accessLog.record(route.id, {
            timeMs: Date.now() - (performance.now() - started),
            method: req.method ?? 'GET',
            path: stripTokenParam(req.url ?? '/'),
            port: target.port,
            status: 101,
            bytes: Math.max(0, ((socket as { bytesWritten?: number }).bytesWritten ?? 0) - bytesBefore),
            durationMs: Math.round(performance.now() - started),
            websocket: true,
          });
        });
        this.proxy.ws(req, socket, head, addr, (err) => {
          route.ready.delete(target.port);
          if (!socket.destroyed) {
            this.rejectUpgrade(
              socket,
              new PreviewdError(
                'upstream_error',
                `WebSocket to port ${target.port}: ${err.code ?? err.message}`,
              ),
            );
          }
        });
      } catch (err) {
        this.rejectUpgrade(
          socket,
          isPreviewdError(err) ? err : new PreviewdError('internal', (err as Error)?.message ?? String(err)),
        );
      }
    })();
  }

  private rejectUpgrade(socket: Duplex, err: PreviewdError): void {
    if (socket.destroyed) return;
    const body = JSON.stringify(err.toBody());
    const extra = Object.entries(err.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(
      `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-previewd-error: ${err.code}\r\n${extra}connection: close\r\n\r\n${body}`,
    );
  }
}
