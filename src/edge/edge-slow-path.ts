import type { IncomingMessage, ServerResponse } from 'node:http';
import { PreviewdError } from '../domain/errors.js';
import { failRequest } from './edge-answers.js';
import type { EdgeParts } from './edge-parts.js';
import { isNavigation, sendStartingPage } from './pages.js';
import { probePort } from './port-probe.js';
import type { PreviewTarget } from './preview-host.js';
import type { Route } from './route-table.js';
import { appDown, crashedError, PAGE_LOG_LINES, sandboxError } from './wake.js';

const SLEEPING = new Set(['stopped', 'paused', 'stopping']);

/**
 * Requests the fast path cannot proxy at once: the sandbox sleeps, starts, or its port has not
 * answered yet (wake, starting page, held request), and upstream failures (crashed page, a dev
 * server restarting itself, upstream_error).
 */
export class SlowPath {
  constructor(private readonly parts: EdgeParts) {}

  /** Proxies to a known address; a failure comes back to `upstreamFailed`. */
  proxyTo(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    target: PreviewTarget,
    addr: { host: string; port: number },
    retried = false,
  ): void {
    this.parts.proxy.web(req, res, addr, (err) => this.upstreamFailed(req, res, route, target, err, retried));
  }

  /** The sandbox sleeps, starts, or its port has not answered yet. */
  async serve(req: IncomingMessage, res: ServerResponse, route: Route, target: PreviewTarget): Promise<void> {
    const { routes, waker, directory } = this.parts;
    try {
      if (route.state === 'error') throw sandboxError(route);
      if (isNavigation(req)) {
        if (SLEEPING.has(route.state)) {
          waker.wake(route.id).catch(() => undefined);
        } else if (route.state === 'running') {
          const addr = await routes.address(route, target.port).catch(() => undefined);
          if (addr && (await probePort(addr.host, addr.port, 250, this.parts.probeOpts))) {
            route.ready.add(target.port);
            this.proxyTo(req, res, route, target, addr);
            return;
          }
          // The container is up but its supervisor reports the app down: the crashed page.
          const down = await appDown(directory, { sandboxId: route.id, status: 'running' });
          if (down) throw await crashedError(directory, route.id, down.exitCode);
        }
        sendStartingPage(res, {
          sandboxId: route.id,
          port: target.port,
          logs: await directory.lastLogLines(route.id, PAGE_LOG_LINES),
        });
        return;
      }
      const addr = await waker.ready(route.id, target.port);
      if (req.destroyed) return;
      this.proxyTo(req, res, routes.peek(route.id) ?? route, target, addr);
    } catch (err) {
      failRequest(this.parts.log, req, res, err);
    }
  }

  private upstreamFailed(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    target: PreviewTarget,
    err: Error & { code?: string },
    retried: boolean,
  ): void {
    const { routes, waker, directory, front, proxy, log } = this.parts;
    route.ready.delete(target.port);
    front.withdrawPort(route.id, target.port);
    const addr = route.addresses.get(target.port);
    if (addr && (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH')) proxy.forget(addr);
    // The socket may be gone already (null once the request finished and let go of it).
    if (res.headersSent || res.destroyed || !req.socket || req.socket.destroyed) {
      res.destroy();
      return;
    }
    void (async () => {
      const info = await directory.instance(route.id).catch(() => undefined);
      const down = info ? await appDown(directory, info) : undefined;
      if (down) {
        routes.invalidate(route.id);
        failRequest(log, req, res, await crashedError(directory, route.id, down.exitCode));
        return;
      }
      if (err.code === 'ECONNREFUSED' && info?.status === 'running') {
        // The app closed its port (a dev server restarting itself): same as "still starting".
        if (isNavigation(req)) {
          sendStartingPage(res, {
            sandboxId: route.id,
            port: target.port,
            logs: await directory.lastLogLines(route.id, PAGE_LOG_LINES),
          });
          return;
        }
        const bodiless =
          (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') &&
          req.headers['content-length'] === undefined &&
          req.headers['transfer-encoding'] === undefined;
        if (bodiless && !retried) {
          try {
            const next = await waker.ready(route.id, target.port);
            this.proxyTo(req, res, routes.peek(route.id) ?? route, target, next, true);
          } catch (e) {
            failRequest(log, req, res, e);
          }
          return;
        }
      }
      failRequest(
        log,
        req,
        res,
        new PreviewdError(
          'upstream_error',
          `port ${target.port} of sandbox ${route.id}: ${err.code ?? err.message}`,
        ),
      );
    })();
  }
}
