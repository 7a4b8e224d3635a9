import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { PreviewdError } from '../domain/errors.js';
import { asPreviewdError, rejectUpgrade } from './edge-answers.js';
import type { EdgeParts } from './edge-parts.js';
import { prepareHeaders } from './edge-request-headers.js';
import type { PreviewTarget } from './preview-host.js';
import { stripTokenParam } from './preview-tokens.js';
import type { Route } from './route-table.js';
import { sandboxError } from './wake.js';

/**
 * A WebSocket upgrade for a route (HMR and the like): token check, port check, wake if needed,
 * then the socket is proxied; activity, the open-socket metric and one access-log line follow it.
 */
export async function serveUpgrade(
  parts: EdgeParts,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  route: Route,
  target: PreviewTarget,
  secure: boolean,
  client: string | undefined,
  started: number,
): Promise<void> {
  const { access, waker, activity, metrics, accessLog, proxy } = parts;
  try {
    if (route.visibility === 'private' && !access.authorize(req, undefined, route, target, secure)) {
      throw access.upgradeRefusal(req, route);
    }
    if (!route.ports.has(target.port)) {
      throw new PreviewdError(
        'port_not_exposed',
        `port ${target.port} of sandbox ${route.id} is not exposed`,
      );
    }
    prepareHeaders(req, secure, true, client);
    let addr =
      route.state === 'running' && route.ready.has(target.port)
        ? route.addresses.get(target.port)
        : undefined;
    if (!addr) {
      if (route.state === 'error') throw sandboxError(route);
      addr = await waker.ready(route.id, target.port);
    }
    if (socket.destroyed) return;
    activity.socketOpened(route.id);
    metrics.websockets.inc();
    const bytesBefore = (socket as { bytesWritten?: number }).bytesWritten ?? 0;
    socket.once('close', () => {
      activity.socketClosed(route.id);
      metrics.websockets.dec();
      accessLog.record(route.id, {
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
    proxy.ws(req, socket, head, addr, (err) => {
      route.ready.delete(target.port);
      if (!socket.destroyed) {
        rejectUpgrade(
          socket,
          new PreviewdError('upstream_error', `WebSocket to port ${target.port}: ${err.code ?? err.message}`),
        );
      }
    });
  } catch (err) {
    rejectUpgrade(socket, asPreviewdError(err));
  }
}

/**
 * The checks before any route is looked up: an origin-form target, a WebSocket opening handshake
 * (GET with `Upgrade: websocket`; anything else was dropped unanswered). Sets `req.url`.
 */
export function upgradeRequestError(
  req: IncomingMessage,
  path: string | undefined,
): PreviewdError | undefined {
  if (path === undefined) return new PreviewdError('bad_request', 'the request target is not a path');
  if (req.method !== 'GET' || req.headers.upgrade?.trim().toLowerCase() !== 'websocket') {
    return new PreviewdError('bad_request', 'only WebSocket upgrades (GET) are proxied');
  }
  req.url = path;
  return undefined;
}
