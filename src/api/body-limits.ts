import type { FastifyInstance } from 'fastify';
import { PreviewdError } from '../domain/errors.js';

/** The body limit of control routes (JSON commands): everything that is not an upload. */
export const CONTROL_BODY_BYTES = 1024 * 1024;

/** How deep objects and arrays may nest in a JSON body. */
export const MAX_JSON_DEPTH = 64;

/**
 * Routes whose bodies carry user data (files, archives, exec stdin): they keep `maxBodyMb`.
 * Raw streams (file PUT, tar) are limited by their handlers; JSON bodies here by Fastify.
 */
const UPLOAD_ROUTES = new Set([
  'POST /v1/sandboxes',
  'PUT /v1/sandboxes/:id/files',
  'POST /v1/sandboxes/:id/files/batch',
  'POST /v1/sandboxes/:id/exec',
]);

/**
 * Routes whose body is file content whatever its type: a JSON-typed body reaches the handler as the
 * bytes sent (parsed, a file upload of `application/json` would be written empty).
 */
const RAW_BODY_ROUTES = new Set(['PUT /v1/sandboxes/:id/files']);

/** Whether `json` nests objects/arrays deeper than `max`: one pass over the text, no recursion. */
export function jsonNestsDeeperThan(json: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * Per-route body limits (uploads `maxBytes`, control routes at most CONTROL_BODY_BYTES; a route
 * that sets its own `bodyLimit` keeps it) and the JSON parser: Fastify's own (prototype-poisoning
 * checks included) behind a nesting-depth check, so a deep document is refused with `json_too_deep`
 * before anything recursive (validation, serialisation) sees it. Install before the routes.
 */
export function installBodyLimits(app: FastifyInstance, maxBytes: number): void {
  app.addHook('onRoute', (route) => {
    if (route.bodyLimit !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const upload = methods.some((m) => UPLOAD_ROUTES.has(`${m} ${route.url}`));
    route.bodyLimit = upload ? maxBytes : Math.min(CONTROL_BODY_BYTES, maxBytes);
  });
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
    if (RAW_BODY_ROUTES.has(`${request.method} ${request.routeOptions.url}`)) {
      done(null, bytes);
      return;
    }
    const body = (bytes as Buffer).toString('utf8');
    if (jsonNestsDeeperThan(body, MAX_JSON_DEPTH)) {
      done(
        new PreviewdError('json_too_deep', `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`),
        undefined,
      );
      return;
    }
    parseJson(request, body, done);
  });
}
