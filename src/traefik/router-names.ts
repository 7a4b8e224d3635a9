import type { Config } from '../config/schema.js';

/** Name of the middleware (defined by the HTTP provider) that sends private previews to forward-auth. */
export const AUTH_MIDDLEWARE = 'previewd-auth';
/** Where Docker labels find it: Traefik names a middleware of another provider `<name>@<provider>`. */
export const AUTH_MIDDLEWARE_REF = `${AUTH_MIDDLEWARE}@http`;
/** Priority of sandbox routers: above the wake catch-all (1) and above rule-length defaults. */
export const SANDBOX_PRIORITY = 100;
export const WAKE_PRIORITY = 1;
export const WAKE_SERVICE = 'previewd-wake';

/** The router (and service) name of one port of a sandbox, from `traefik.routerTemplate`. */
export function routerName(config: Pick<Config, 'traefik'>, sandboxId: string, port: number): string {
  return config.traefik.routerTemplate.replaceAll('{id}', sandboxId).replaceAll('{port}', String(port));
}

/** Entrypoints of sandbox routers: the TLS ones when Traefik terminates TLS for previews. */
export function sandboxEntrypoints(config: Pick<Config, 'traefik'>): string[] {
  return config.traefik.tls ? config.traefik.tlsEntrypoints : config.traefik.entrypoints;
}

/**
 * Request headers that forward-auth answers with and Traefik then copies onto the forwarded
 * request (`authResponseHeaders`): Traefik deletes each one and copies it back only when the
 * answer carries it. That is how the token cookie, a `Bearer pvt1.` Authorization and the
 * X-Previewd-Token header are kept from the app, exactly as the built-in edge strips them.
 */
export const FORWARDED_AUTH_HEADERS = ['X-Previewd-Sandbox', 'X-Previewd-Token', 'Authorization', 'Cookie'];
