import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import { keyMatches } from '../config/api-keys.js';
import { PreviewdError } from '../domain/errors.js';
import { type DashboardSessions, SESSION_COOKIE } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key this request acts with (from the bearer header or the dashboard session). */
    callerKey?: string;
  }
}

/**
 * Paths that need no key: Traefik's forwardAuth cannot carry one (it decides from the preview
 * token alone and grants nothing but access to one preview); signing in and out of the dashboard.
 */
const keyFreePaths = new Set(['POST /v1/session', 'DELETE /v1/session', '* /v1/traefik/forward-auth']);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface CallerRequest {
  headers: IncomingHttpHeaders;
  method?: string;
}

/**
 * Who is calling: a bearer API key (SDKs, CLI, curl), or the dashboard's session cookie. A
 * cookie is sent by the browser on its own, so a request that changes something (or opens a
 * WebSocket) with it must come from the dashboard's own origin.
 */
export class ApiAuth {
  constructor(
    private readonly keys: readonly string[],
    private readonly sessions?: DashboardSessions,
  ) {}

  /** The caller's key; throws `unauthorized` or `origin_refused`. */
  authenticate(req: CallerRequest, queryKey?: string | null): string {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() || queryKey;
    if (bearer) {
      if (!keyMatches(bearer, this.keys)) throw new PreviewdError('unauthorized', 'wrong API key');
      return bearer;
    }
    const token = this.sessionToken(req.headers);
    if (token === undefined) throw new PreviewdError('unauthorized', 'missing API key');
    const key = this.sessions?.verify(token);
    if (!key) {
      throw new PreviewdError('unauthorized', 'the dashboard session has expired or was signed out', {
        hint: 'Sign in again with an API key.',
      });
    }
    const upgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    if (upgrade || !SAFE_METHODS.has((req.method ?? 'GET').toUpperCase())) this.checkOrigin(req.headers);
    return key;
  }

  private sessionToken(headers: IncomingHttpHeaders): string | undefined {
    if (!this.sessions || !headers.cookie) return undefined;
    return fastifyCookie.parse(headers.cookie)[SESSION_COOKIE];
  }

  private checkOrigin(headers: IncomingHttpHeaders): void {
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
          ? `cross-origin request from ${origin} refused`
          : 'a cookie-signed request without an Origin header',
      );
    }
  }
}

/** Every /v1 route (but the key-free ones above) needs an API key or a dashboard session. */
export function installAuth(app: FastifyInstance, auth: ApiAuth): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/') && request.url !== '/v1') return;
    const path = request.url.split('?', 1)[0];
    if (keyFreePaths.has(`${request.method} ${path}`) || keyFreePaths.has(`* ${path}`)) return;
    request.callerKey = auth.authenticate(request);
  });
}
