import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forwardedCaller } from '../cluster/node-credential.js';
import { PreviewdError } from '../domain/errors.js';
import type { Caller, KeyRing } from './key-ring.js';
import type { RateLimits } from './rate-limits.js';
import { type DashboardSessions, SESSION_COOKIE } from './session.js';

/**
 * Who may call a route, declared in the route's own options (`config: { access }`) and decided on
 * the route the router matched — never on the raw URL:
 * - `public`: anyone (health, readiness, the API description, the dashboard's files, sign-in);
 * - `key` (the default, so a route that says nothing needs a key): any live key or session;
 * - `admin`: an admin key;
 * - `metrics`: an admin key, or the metrics token.
 */
export type Access = 'public' | 'key' | 'admin' | 'metrics';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who this request acts as (from the bearer key or the dashboard session); set for every non-public route. */
    caller?: Caller;
  }
  interface FastifyContextConfig {
    access?: Access;
    /** Set on WebSocket routes: only they take an upgrade. */
    upgrade?: boolean;
  }
}

/** The WebSocket subprotocol that carries a key (browsers cannot set headers on a WebSocket). */
export const WS_PROTOCOL = 'previewd';
export const WS_KEY_PROTOCOL_PREFIX = 'previewd.key.';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface CallerRequest {
  headers: IncomingHttpHeaders;
  method?: string;
}

/**
 * Who is calling: a bearer API key (SDKs, CLI, curl; on a WebSocket also the `previewd.key.<key>`
 * subprotocol), or the dashboard's session cookie. A cookie is sent by the browser on its own, so
 * a request that changes something (or opens a WebSocket) with it must come from the dashboard's
 * own origin. A key never travels in a URL: `?access_token=` is not read.
 */
export class ApiAuth {
  constructor(
    private readonly keys: KeyRing,
    private readonly sessions?: DashboardSessions,
    /** In a cluster: the node-to-node credential (a forwarded call names the caller the entry node authenticated). */
    private readonly nodeCredential?: string,
  ) {}

  /** The caller; throws `unauthorized` or `origin_refused`. */
  async authenticate(req: CallerRequest): Promise<Caller> {
    // Another node forwarded this call (src/cluster/api-forwarding.ts); a wrong credential is refused.
    const forwarded = forwardedCaller(req.headers, this.nodeCredential);
    if (forwarded) return forwarded;
    const secret = bearer(req.headers) ?? wsProtocolKey(req.headers);
    if (secret !== undefined) {
      const caller = await this.keys.resolve(secret);
      if (!caller) throw new PreviewdError('unauthorized', 'wrong or revoked API key');
      return caller;
    }
    const token = this.sessionToken(req.headers);
    if (token === undefined) throw new PreviewdError('unauthorized', 'missing API key');
    const caller = await this.sessions?.verify(token);
    if (!caller) {
      throw new PreviewdError(
        'unauthorized',
        'the dashboard session has ended (expired, signed out or revoked)',
        {
          hint: 'Sign in again with an API key.',
        },
      );
    }
    const upgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    if (upgrade || !SAFE_METHODS.has((req.method ?? 'GET').toUpperCase())) checkOrigin(req.headers);
    return caller;
  }

  sessionToken(headers: IncomingHttpHeaders): string | undefined {
    if (!this.sessions || !headers.cookie) return undefined;
    try {
      return fastifyCookie.parse(headers.cookie)[SESSION_COOKIE];
    } catch {
      return undefined;
    }
  }
}

function bearer(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (value === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  // A malformed Authorization header is a wrong key, not a missing one.
  return match?.[1] ?? '';
}

function wsProtocolKey(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['sec-websocket-protocol'];
  if (typeof value !== 'string' || (headers.upgrade ?? '').toLowerCase() !== 'websocket') return undefined;
  for (const part of value.split(',')) {
    const p = part.trim();
    if (p.startsWith(WS_KEY_PROTOCOL_PREFIX)) return p.slice(WS_KEY_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

function checkOrigin(headers: IncomingHttpHeaders): void {
  const origin = headers.origin;
  let host: string | undefined;
  try {
    host = origin && origin !== 'null' ? new URL(origin).host : undefined;
  } catch {
    host = undefined;
  }
  if (!host || host !== headers.host) {
    throw new PreviewdError(
      'origin_refused',
      origin
        ? `cross-origin request from ${origin.slice(0, 200)} refused`
        : 'a cookie-signed request without an Origin header',
    );
  }
}

function tokenMatches(given: string, expected: Buffer | undefined): boolean {
  if (!expected) return false;
  const g = Buffer.from(given);
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/**
 * Deny by default: every route needs a caller unless its own options say `access: 'public'`.
 * Runs on `onRequest`, after routing, so percent-encoded, doubled or absolute-form spellings of a
 * path meet the same rule as the plain one. Paths no route serves fall to the not-found handler
 * (a 404, or the dashboard's page) and grant nothing.
 */
export function installAuth(
  app: FastifyInstance,
  auth: ApiAuth,
  opts: { limits: RateLimits; metricsToken?: string },
): void {
  const metricsToken = opts.metricsToken ? Buffer.from(opts.metricsToken) : undefined;
  // The API description says which routes need no key (the auth-bypass test reads it).
  app.addHook('onRoute', (route) => {
    if (route.config?.access === 'public' && route.schema) route.schema = { ...route.schema, security: [] };
    if (route.websocket) route.config = { ...(route.config as object), upgrade: true };
  });
  // An upgrade answered with an error (not switched) must not leave its socket open.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.ws) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.ws) {
      // Only a WebSocket route takes an upgrade (any other would be upgraded, then closed).
      if (request.is404 || !request.routeOptions.config?.upgrade) {
        throw new PreviewdError('not_found', 'no WebSocket route here');
      }
    }
    if (request.is404) return;
    const access = request.routeOptions.config?.access ?? 'key';
    if (access === 'public') return;
    if (access === 'metrics' && tokenMatches(bearer(request.headers) ?? '', metricsToken)) return;
    await opts.limits.checkAuthFailures(request);
    try {
      request.caller = await auth.authenticate(request);
    } catch (err) {
      if (err instanceof PreviewdError && err.code === 'unauthorized')
        await opts.limits.countAuthFailure(request);
      throw err;
    }
    if ((access === 'admin' || access === 'metrics') && request.caller.role !== 'admin') {
      throw new PreviewdError(
        'forbidden',
        `${request.method} ${request.routeOptions.url} needs an admin key`,
      );
    }
  });
}

/** Marks every route registered in this plugin scope public (for plugins that do not take route options). */
export function publicRoutes(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), access: 'public' };
  });
}
