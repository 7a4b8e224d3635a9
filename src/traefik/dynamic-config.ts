import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { formatPreviewHost } from '../edge/preview-host.js';
import {
  AUTH_MIDDLEWARE,
  FORWARDED_AUTH_HEADERS,
  routerName,
  SANDBOX_PRIORITY,
  sandboxEntrypoints,
  WAKE_PRIORITY,
  WAKE_SERVICE,
} from './router-names.js';

export type DynamicConfigSettings = Pick<Config, 'traefik' | 'previewDomain' | 'edge'>;

/** A sandbox Traefik should route to: running, with the upstream address of each exposed port. */
export interface RoutableSandbox {
  id: string;
  visibility: 'public' | 'private';
  ports: ReadonlyArray<{ port: number; url: string }>;
}

/** The subset of Traefik's dynamic configuration (HTTP provider / file provider JSON) previewd emits. */
export interface TraefikRouterTls {
  certResolver?: string;
  domains?: Array<{ main: string; sans?: string[] }>;
}
export interface TraefikRouter {
  entryPoints: string[];
  rule: string;
  priority: number;
  service: string;
  middlewares?: string[];
  tls?: TraefikRouterTls;
}
export interface TraefikService {
  loadBalancer: { servers: Array<{ url: string }>; passHostHeader: boolean };
}
export interface TraefikMiddleware {
  forwardAuth: { address: string; trustForwardHeader: boolean; authResponseHeaders: string[] };
}
export interface TraefikDynamicConfig {
  http: {
    routers: Record<string, TraefikRouter>;
    services: Record<string, TraefikService>;
    middlewares: Record<string, TraefikMiddleware>;
  };
}

function escapeGoRegexp(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Matches every preview host (one DNS label under the preview domain), case-insensitively. */
export function wakeRule(config: Pick<Config, 'previewDomain'>): string {
  return `HostRegexp(\`(?i)^[^.]+\\.${escapeGoRegexp(config.previewDomain)}$\`)`;
}

/** TLS section of a router: the wildcard certificate of the preview domain when a resolver issues it. */
function routerTls(config: DynamicConfigSettings): TraefikRouterTls {
  if (!config.traefik.certResolver) return {};
  return {
    certResolver: config.traefik.certResolver,
    domains: [{ main: config.previewDomain, sans: [`*.${config.previewDomain}`] }],
  };
}

function byName<T>(entries: Array<[string, T]>): Record<string, T> {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Traefik's dynamic configuration for every routable sandbox: per port a router (`Host` rule,
 * priority 100, forward-auth for private sandboxes) and a service; plus the priority-1
 * `HostRegexp` wake catch-all on every configured entrypoint, plain and TLS, that sends requests
 * for stopped (or not yet known) sandboxes to previewd's edge. Deterministic: same input, same
 * bytes (Traefik's HTTP provider hashes the body to skip unchanged configurations).
 */
export function buildDynamicConfig(
  config: DynamicConfigSettings,
  sandboxes: readonly RoutableSandbox[],
): TraefikDynamicConfig {
  const routers: Array<[string, TraefikRouter]> = [];
  const services: Array<[string, TraefikService]> = [];
  const entryPoints = sandboxEntrypoints(config);

  for (const sandbox of sandboxes) {
    for (const { port, url } of sandbox.ports) {
      const name = routerName(config, sandbox.id, port);
      const router: TraefikRouter = {
        entryPoints: [...entryPoints],
        rule: `Host(\`${formatPreviewHost(config, sandbox.id, port)}\`)`,
        priority: SANDBOX_PRIORITY,
        service: name,
      };
      if (sandbox.visibility === 'private') router.middlewares = [AUTH_MIDDLEWARE];
      if (config.traefik.tls) router.tls = routerTls(config);
      routers.push([name, router]);
      services.push([name, { loadBalancer: { servers: [{ url }], passHostHeader: true } }]);
    }
  }

  const rule = wakeRule(config);
  routers.push([
    WAKE_SERVICE,
    { entryPoints: [...config.traefik.entrypoints], rule, priority: WAKE_PRIORITY, service: WAKE_SERVICE },
  ]);
  if (config.traefik.tlsEntrypoints.length > 0) {
    routers.push([
      `${WAKE_SERVICE}-tls`,
      {
        entryPoints: [...config.traefik.tlsEntrypoints],
        rule,
        priority: WAKE_PRIORITY,
        service: WAKE_SERVICE,
        tls: routerTls(config),
      },
    ]);
  }
  services.push([
    WAKE_SERVICE,
    { loadBalancer: { servers: [{ url: config.traefik.wakeUrl }], passHostHeader: true } },
  ]);

  return {
    http: {
      routers: byName(routers),
      services: byName(services),
      middlewares: {
        [AUTH_MIDDLEWARE]: {
          forwardAuth: {
            address: config.traefik.forwardAuthUrl,
            trustForwardHeader: true,
            authResponseHeaders: [...FORWARDED_AUTH_HEADERS],
          },
        },
      },
    },
  };
}

/** A strong ETag of the serialised configuration. */
export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** Whether an If-None-Match header matches `etag` (weak comparison, lists and `*` accepted). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || strip(tag) === strip(etag));
}
