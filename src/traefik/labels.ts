import type { Config } from '../config/schema.js';
import { formatPreviewHost } from '../edge/preview-host.js';
import { LABEL_MANAGED } from '../providers/docker/labels.js';
import { AUTH_MIDDLEWARE_REF, routerName, SANDBOX_PRIORITY, sandboxEntrypoints } from './router-names.js';

export type LabelConfig = Pick<Config, 'traefik' | 'previewDomain' | 'edge' | 'docker'>;

export interface LabelledSandbox {
  id: string;
  visibility: 'public' | 'private';
  ports: readonly number[];
}

/**
 * The Docker labels that let Traefik's Docker provider route to a sandbox container: per exposed
 * port one router and one service named by the router template. Labels are fixed when the
 * container is created; ports exposed later reach Traefik through the HTTP provider
 * (dynamic-config.ts), which is the single source of truth.
 */
export function traefikLabels(config: LabelConfig, sandbox: LabelledSandbox): Record<string, string> {
  const labels: Record<string, string> = {
    'traefik.enable': 'true',
    [LABEL_MANAGED]: 'true',
    'traefik.docker.network': config.docker.network,
  };
  const entrypoints = sandboxEntrypoints(config).join(',');
  for (const port of [...new Set(sandbox.ports)].sort((a, b) => a - b)) {
    const name = routerName(config, sandbox.id, port);
    const router = `traefik.http.routers.${name}`;
    labels[`${router}.rule`] = `Host(\`${formatPreviewHost(config, sandbox.id, port)}\`)`;
    labels[`${router}.entrypoints`] = entrypoints;
    labels[`${router}.priority`] = String(SANDBOX_PRIORITY);
    labels[`${router}.service`] = name;
    if (config.traefik.tls) {
      labels[`${router}.tls`] = 'true';
      if (config.traefik.certResolver) {
        // One wildcard certificate for the preview domain instead of one certificate per preview host.
        labels[`${router}.tls.certresolver`] = config.traefik.certResolver;
        labels[`${router}.tls.domains[0].main`] = config.previewDomain;
        labels[`${router}.tls.domains[0].sans`] = `*.${config.previewDomain}`;
      }
    }
    if (sandbox.visibility === 'private') labels[`${router}.middlewares`] = AUTH_MIDDLEWARE_REF;
    labels[`traefik.http.services.${name}.loadbalancer.server.port`] = String(port);
  }
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
