import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OWNER_RE, OWNER_RULE } from '../domain/credentials.js';
import { PreviewdError } from '../domain/errors.js';
import { isSandboxId } from '../domain/ids.js';
import type { Store } from '../store/store.js';

/**
 * Whose sandboxes a request may see and act on:
 * - a tenant key: its own owner's, always (an X-Previewd-Owner naming anyone else is refused);
 * - an admin key with X-Previewd-Owner: that end user's (so a backend acting for one user cannot
 *   slip into another's sandbox by a wrong id);
 * - an admin key without it: every sandbox (undefined).
 */
export function scopeOwner(request: FastifyRequest): string | undefined {
  const caller = request.caller;
  const header = request.headers['x-previewd-owner'];
  const named = typeof header === 'string' && header !== '' ? header : undefined;
  if (named !== undefined && !OWNER_RE.test(named)) {
    throw new PreviewdError('invalid_request', `X-Previewd-Owner: ${OWNER_RULE}`);
  }
  if (caller?.role === 'tenant') {
    if (named !== undefined && named !== caller.owner) {
      throw new PreviewdError('forbidden', 'a tenant key acts for its own owner only', {
        hint: 'Drop the X-Previewd-Owner header, or use an admin key to act for an end user.',
      });
    }
    return caller.owner;
  }
  return named;
}

/**
 * One check for every route under /v1/sandboxes/:id, whatever it does (files, exec and its
 * WebSocket, processes, logs, events, tokens, ports, app control, delete): a sandbox outside the
 * caller's scope answers 404 sandbox_not_found, exactly as one that does not exist. Routes added
 * later under that path are covered without a line of their own. Runs on `onRequest`, right after
 * authentication and before the body is read or validated, so neither a body nor activity of a
 * sandbox the caller may not see is ever looked at.
 */
export function installTenancy(app: FastifyInstance, store: Store): void {
  app.addHook('onRequest', async (request) => {
    if (!request.caller || !request.routeOptions.url?.startsWith('/v1/sandboxes/:id')) return;
    const owner = scopeOwner(request);
    if (owner === undefined) return;
    const id = (request.params as { id?: unknown } | undefined)?.id;
    // Not an id at all: validation answers invalid_id, the same for every caller.
    if (typeof id !== 'string' || !isSandboxId(id.toLowerCase())) return;
    const record = await store.getSandbox(id.toLowerCase(), { includeDeleted: true });
    // A missing one answers the same, here and before validation, so no answer tells the two apart.
    if (!record || record.owner !== owner) {
      throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    }
  });
}
