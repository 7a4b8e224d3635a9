import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { EventBus } from '../events/bus.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import { AccessLog } from './access-log.js';
import { ActivityTracker } from './activity.js';
import { failRequest, rejectUpgrade } from './edge-answers.js';
import { type EdgeCluster, peerRequest, type RequestOrigin } from './edge-cluster.js';
import { EdgeForwarder } from './edge-forwarder.js';
import { FrontPublisher } from './edge-front-publisher.js';
import { EdgeListeners } from './edge-listeners.js';
import { EdgeMetrics } from './edge-metrics.js';
import type { EdgeParts } from './edge-parts.js';
import { prepareHeaders } from './edge-request-headers.js';
import { SlowPath } from './edge-slow-path.js';
import { answerStatus } from './edge-status.js';
import { serveUpgrade, upgradeRequestError } from './edge-upgrade.js';
import { originFormTarget } from './forwarding.js';
import type { FrontProxy } from './front-proxy.js';
import { STATUS_PATH, sendError } from './pages.js';
import { PreviewAccess, sameHostLocation } from './preview-access.js';
import { PreviewHostParser, type PreviewTarget } from './preview-host.js';
import { defaultKeyFile, loadSigningKeys, PreviewTokens, stripTokenParam } from './preview-tokens.js';
import { previewOrigin } from './preview-urls.js';
import { UpstreamProxy } from './proxy.js';
import type { Route } from './route-table.js';
import { RouteTable } from './route-table.js';
import type { SandboxDirectory } from './sandbox-directory.js';
import { Waker } from './wake.js';

export interface EdgeDeps {
  config: Config;
  /** Activity is written here (the node's own sandboxes). */
  store: Store;
  /** Everything the edge asks about sandboxes (sandbox-directory.ts). */
  directory: SandboxDirectory;
  bus: EventBus;
  service: SandboxService;
  registry: Registry;
  log: Logger;
  /**
   * The other nodes (edge-cluster.ts): a request for a sandbox whose row names another node goes
   * to that node's edge whole. Absent: every sandbox is served here.
   */
  cluster?: EdgeCluster;
}

export { tokenCookieScope } from './preview-access.js';

/**
 * The preview edge: a plain node:http server (and optionally an https one) that routes
 * `{port}-{id}.{previewDomain}` to the sandbox, checks private-preview tokens, wakes sleeping
 * sandboxes and proxies HTTP, streams and WebSockets. With the HAProxy front (front-proxy.ts) it
 * listens on loopback behind HAProxy and hands it the running public routes it has proven
 * (edge-front-publisher.ts). The slow path (wake, starting and crashed pages) is edge-slow-path.ts,
 * WebSockets edge-upgrade.ts, the starting page's status endpoint edge-status.ts.
 */
export class Edge {
  readonly routes: RouteTable;
  readonly accessLog: AccessLog;
  readonly activity: ActivityTracker;
  readonly metrics: EdgeMetrics;
  readonly tokens: PreviewTokens;
  readonly waker: Waker;
  private readonly parts: EdgeParts;
  private readonly slow: SlowPath;
  private readonly forwarder?: EdgeForwarder;
  private readonly publisher: FrontPublisher;
  private readonly proxy = new UpstreamProxy();
  private readonly hosts: PreviewHostParser;
  private readonly listeners = new EdgeListeners();
  private readonly unsubscribe: () => void;
  /** Base URL of the plain-HTTP listener, once started. */
  url?: string;
  /** Base URL of the built-in edge's own listener (loopback when a front is on; else `url`). */
  builtinUrl?: string;
  /** Base URL of the TLS listener, once started (when configured). */
  tlsUrl?: string;

  constructor(private readonly deps: EdgeDeps) {
    const { config } = deps;
    this.hosts = new PreviewHostParser(config);
    this.routes = new RouteTable(deps.directory, deps.bus, 1000, (old) => {
      // The sandbox changed: a kept connection to its old address is of no more use.
      if (old.state === 'running') for (const addr of old.addresses.values()) this.proxy.forget(addr);
    });
    this.accessLog = new AccessLog(config.edge.accessLogSize);
    this.activity = new ActivityTracker(deps.store, deps.log);
    this.metrics = new EdgeMetrics(deps.registry);
    this.tokens = new PreviewTokens(
      loadSigningKeys(config.edge.tokenSecretFile ?? defaultKeyFile(config.dataDir)),
    );
    this.waker = new Waker({
      service: deps.service,
      routes: this.routes,
      directory: deps.directory,
      metrics: this.metrics,
      log: deps.log,
      timeoutMs: config.edge.wakeTimeoutSec * 1000,
      httpProbe: config.edge.useLoopbackPorts,
    });
    this.publisher = new FrontPublisher({
      config,
      log: deps.log,
      hosts: this.hosts,
      routes: this.routes,
      metrics: this.metrics,
      activity: this.activity,
      accessLog: this.accessLog,
      listeners: this.listeners,
    });
    this.parts = {
      config,
      log: deps.log,
      directory: deps.directory,
      routes: this.routes,
      proxy: this.proxy,
      waker: this.waker,
      metrics: this.metrics,
      accessLog: this.accessLog,
      activity: this.activity,
      access: new PreviewAccess(this.tokens, config),
      front: this.publisher,
      probeOpts: { http: config.edge.useLoopbackPorts },
    };
    this.slow = new SlowPath(this.parts);
    if (deps.cluster) {
      this.forwarder = new EdgeForwarder({
        cluster: deps.cluster,
        log: deps.log,
        timeoutMs: config.cluster.forwardTimeoutSec * 1000,
      });
    }
    this.unsubscribe = deps.bus.subscribe((event) => {
      // Whatever changed, the front stops routing to the sandbox; the route table drops its cached
      // route on the same events, and the next request proves the route again.
      this.publisher.onEvent(event.sandboxId, event.type);
      if (event.type === 'sandbox.deleted') {
        this.accessLog.forget(event.sandboxId);
        this.metrics.forget(event.sandboxId);
      }
    });
  }

  /** HAProxy in front, when on (edge.front): it serves running public previews itself. */
  get front(): FrontProxy | undefined {
    return this.publisher.front;
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    const handlers = {
      onRequest: (req: IncomingMessage, res: ServerResponse, secure: boolean) =>
        this.onRequest(req, res, secure),
      onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean) =>
        this.onUpgrade(req, socket, head, secure),
    };
    if (await this.publisher.start(handlers)) {
      const front = this.publisher.front as FrontProxy;
      this.url = front.url;
      this.tlsUrl = front.tlsUrl;
      this.builtinUrl = this.publisher.builtinUrl;
      this.activity.start();
      return;
    }
    const plain = createHttpServer((req, res) => this.onRequest(req, res, false));
    plain.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, false));
    this.url = await this.listeners.listen(plain, config.edgeAddr, 'http');
    this.builtinUrl = this.url;
    if (config.edge.tls) {
      const secure = createHttpsServer(
        { cert: readFileSync(config.edge.tls.certFile), key: readFileSync(config.edge.tls.keyFile) },
        (req, res) => this.onRequest(req, res, true),
      );
      secure.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, true));
      this.tlsUrl = await this.listeners.listen(secure, config.edge.tls.addr, 'https');
    }
    this.activity.start();
  }

  /**
   * Stops the front routing to a sandbox before it sleeps, and keeps it from being published
   * again until its state changes (a request meanwhile goes through the built-in edge).
   */
  withdrawFront(sandboxId: string): Promise<void> {
    return this.publisher.beforeSleep(sandboxId);
  }

  /** The port the plain-HTTP listener is bound to. */
  get port(): number | undefined {
    return this.url ? Number(new URL(this.url).port) : undefined;
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    this.waker.close();
    await this.publisher.stop();
    await this.listeners.close();
    this.proxy.close();
    this.forwarder?.close();
    this.routes.close();
    await this.activity.stop();
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
    const origin = this.origin(req, secure);
    const tls = this.deps.config.edge.tls;
    if (!origin.secure && tls && this.deps.config.edge.httpsRedirect) {
      this.redirectToHttps(req, res);
      return;
    }
    const route = this.routes.get(target.sandboxId);
    if (route instanceof Promise) {
      route.then(
        (r) => this.serve(req, res, target, r, origin, started),
        (err) => failRequest(this.deps.log, req, res, err),
      );
    } else {
      this.serve(req, res, target, route, origin, started);
    }
  }

  /** A peer edge's word on the client counts only with the node credential; else the front's. */
  private origin(req: IncomingMessage, secure: boolean): RequestOrigin {
    const peer = peerRequest(this.deps.cluster, req);
    if (peer) return { secure: peer.secure, client: peer.client, peer: true };
    return { secure, client: this.publisher.client(req), peer: false };
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
    origin: RequestOrigin,
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
    // Another node's sandbox: that node's edge answers everything about it.
    if (this.forwarder?.web(req, res, route, origin)) return;
    const { secure } = origin;
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
      void answerStatus(this.parts, req, res, route, target);
      return;
    }
    prepareHeaders(req, secure, false, origin.client);
    if (route.state === 'running' && route.ready.has(target.port)) {
      const addr = route.addresses.get(target.port);
      if (addr) {
        this.publisher.offer(route, target.port, addr);
        this.slow.proxyTo(req, res, route, target, addr);
        return;
      }
    }
    void this.slow.serve(req, res, route, target);
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
    return this.parts.access.authorize(req, res, route, target, secure);
  }

  // ---- WebSockets -------------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    socket.on('error', () => undefined);
    const started = performance.now();
    const refused = upgradeRequestError(req, originFormTarget(req.url ?? ''));
    if (refused) {
      rejectUpgrade(socket, refused);
      return;
    }
    const target = this.hosts.parse(req.headers.host);
    if (!target) {
      rejectUpgrade(
        socket,
        new PreviewdError('not_a_preview_host', `"${req.headers.host ?? ''}" is not a preview host`),
      );
      return;
    }
    const origin = this.origin(req, secure);
    void Promise.resolve(this.routes.get(target.sandboxId)).then(
      (route) => {
        if (!route) {
          rejectUpgrade(
            socket,
            new PreviewdError('sandbox_not_found', `sandbox ${target.sandboxId} does not exist`),
          );
          return;
        }
        if (this.forwarder?.ws(req, socket, head, route, origin)) return;
        return serveUpgrade(
          this.parts,
          req,
          socket,
          head,
          route,
          target,
          origin.secure,
          origin.client,
          started,
        );
      },
      (err) => rejectUpgrade(socket, new PreviewdError('internal', (err as Error)?.message ?? String(err))),
    );
  }
}
