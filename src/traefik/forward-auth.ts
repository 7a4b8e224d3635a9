import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PreviewdError } from '../domain/errors.js';
import type { Edge } from '../edge/edge-server.js';
import { sendError } from '../edge/pages.js';
import type { PreviewHostParser } from '../edge/preview-host.js';

/** Set on an allowed request (through `authResponseHeaders`), overwriting any copy a client sent. */
export const SANDBOX_HEADER = 'x-previewd-sandbox';

/**
 * Traefik resolves a relative Location of the auth answer against the auth server's address
 * (Go's Response.Location), which would send the browser to previewd's API port: redirects the
 * edge writes as paths are made absolute on the preview origin.
 */
function absoluteRedirects(res: ServerResponse, origin: string): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    const headers = args.find((a, i) => i > 0 && typeof a === 'object' && a !== null) as
      | Record<string, unknown>
      | undefined;
    const location = headers?.location;
    if (typeof location === 'string' && location.startsWith('/') && !location.startsWith('//')) {
      headers!.location = `${origin}${location}`;
    }
    return writeHead(...args);
  }) as ServerResponse['writeHead'];
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Traefik's forwardAuth call for a private preview, decided by the built-in edge's own
 * `authorize` (same token sources, cookie exchange, revocation and login redirect). The original
 * request is rebuilt from X-Forwarded-Host/Uri/Proto/Method; a 2xx answer lets Traefik forward
 * it, anything else (303 with the token cookie, 302 to the login page, 401) goes to the client
 * as is.
 */
export async function forwardAuth(
  edge: Edge,
  hosts: PreviewHostParser,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const h = req.headers;
  const host = single(h['x-forwarded-host']);
  const headers: IncomingHttpHeaders = { ...h };
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-forwarded-')) delete headers[name];
  }
  if (host) headers.host = host;
  const original = {
    method: (single(h['x-forwarded-method']) ?? 'GET').toUpperCase(),
    url: single(h['x-forwarded-uri']) ?? '/',
    headers,
  } as IncomingMessage;
  const secure = single(h['x-forwarded-proto'])?.toLowerCase() === 'https';

  if (!host) {
    sendError(
      original,
      res,
      new PreviewdError(
        'invalid_request',
        'X-Forwarded-Host is missing: call this through Traefik forwardAuth',
      ),
    );
    return;
  }
  const target = hosts.parse(host);
  if (!target) {
    sendError(original, res, new PreviewdError('not_a_preview_host', `"${host}" is not a preview host`));
    return;
  }
  const route = await edge.routes.get(target.sandboxId);
  if (!route) {
    sendError(
      original,
      res,
      new PreviewdError('sandbox_not_found', `sandbox ${target.sandboxId} does not exist`),
    );
    return;
  }
  // A private preview tells nothing (its ports included) before the token is checked.
  if (route.visibility === 'private') {
    absoluteRedirects(res, `${secure ? 'https' : 'http'}://${host}`);
    if (!edge.authorize(original, res, route, target, secure)) return;
  }
  if (!route.ports.has(target.port)) {
    sendError(
      original,
      res,
      new PreviewdError('port_not_exposed', `port ${target.port} of sandbox ${route.id} is not exposed`),
    );
    return;
  }

  edge.activity.touch(route.id);
  const allow: Record<string, string> = { [SANDBOX_HEADER]: route.id, 'cache-control': 'no-store' };
  // What the edge left of the credentials is what the app may see.
  const cookie = single(original.headers.cookie);
  if (cookie) allow.cookie = cookie;
  const authorization = single(original.headers.authorization);
  if (authorization) allow.authorization = authorization;
  res.writeHead(200, allow);
  res.end();
}
