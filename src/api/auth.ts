import type { FastifyInstance, FastifyRequest } from 'fastify';
import { keyMatches } from '../config/api-keys.js';
import { PreviewdError } from '../domain/errors.js';

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return match?.[1]?.trim();
}

/**
 * Called by Traefik's forwardAuth middleware, which cannot carry a key: it decides from the
 * preview token alone and grants nothing but access to one preview.
 */
const keyFreePaths = new Set(['/v1/traefik/forward-auth']);

/** Every /v1 route (but the key-free ones above) needs a bearer API key. */
export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/') && request.url !== '/v1') return;
    if (keyFreePaths.has(request.url.split('?', 1)[0]!)) return;
    const key = bearer(request);
    if (!key) throw new PreviewdError('unauthorized', 'missing API key');
    if (!keyMatches(key, keys)) throw new PreviewdError('unauthorized', 'wrong API key');
  });
}
