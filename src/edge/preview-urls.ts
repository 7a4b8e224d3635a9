import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** The host of a preview: `{port}-{id}.{previewDomain}`, one DNS label under the domain. */
export function previewHost(config: Pick<Config, 'previewDomain'>, sandboxId: string, port: number): string {
  return `${port}-${sandboxId}.${config.previewDomain}`;
}

/** The URL the server reports for a preview; clients never build it themselves. */
export function previewUrl(
  config: Pick<Config, 'previewDomain' | 'edgeAddr'>,
  sandboxId: string,
  port: number,
): string {
  const edgePort = splitHostPort(config.edgeAddr).port;
  const suffix = edgePort === 80 ? '' : `:${edgePort}`;
  return `http://${previewHost(config, sandboxId, port)}${suffix}`;
}
