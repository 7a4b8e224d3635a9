import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { formatPreviewHost } from './preview-host.js';

type UrlConfig = Pick<Config, 'previewDomain' | 'edgeAddr' | 'edge'>;

/** The host of a preview: `{port}-{id}.{previewDomain}` by default, one DNS label under the domain. */
export function previewHost(config: UrlConfig, sandboxId: string, port: number): string {
  return formatPreviewHost(config, sandboxId, port);
}

/** Scheme and port that preview URLs carry: configured public values first, then the listeners'. */
export function previewOrigin(config: UrlConfig): { scheme: 'http' | 'https'; port: number } {
  const scheme = config.edge.publicScheme ?? (config.edge.tls ? 'https' : 'http');
  let port = config.edge.publicPort;
  if (port === undefined) {
    port =
      scheme === 'https' && config.edge.tls
        ? splitHostPort(config.edge.tls.addr).port
        : splitHostPort(config.edgeAddr).port;
  }
  return { scheme, port };
}

/** The URL the server reports for a preview; clients never build it themselves. */
export function previewUrl(config: UrlConfig, sandboxId: string, port: number): string {
  const { scheme, port: publicPort } = previewOrigin(config);
  const isDefault = (scheme === 'http' && publicPort === 80) || (scheme === 'https' && publicPort === 443);
  return `${scheme}://${previewHost(config, sandboxId, port)}${isDefault ? '' : `:${publicPort}`}`;
}
