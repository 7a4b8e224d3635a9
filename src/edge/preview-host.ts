import type { Config } from '../config/schema.js';

export interface PreviewTarget {
  port: number;
  sandboxId: string;
}

type HostConfig = Pick<Config, 'previewDomain'> & { edge: Pick<Config['edge'], 'hostTemplate'> };

const ID_PATTERN = '([0-9a-z]{26})';
const PORT_PATTERN = '([1-9][0-9]{0,4})';

/**
 * Parses Host headers into (port, sandbox id) for one host template under one preview domain.
 * Matching is case-insensitive and ignores a `:port` suffix. Built once; `parse` is on the hot path.
 */
export class PreviewHostParser {
  private readonly suffix: string;
  private readonly label: RegExp;
  private readonly portFirst: boolean;

  constructor(config: HostConfig) {
    this.suffix = `.${config.previewDomain.toLowerCase()}`;
    const template = config.edge.hostTemplate;
    const escaped = template.replace(/[-]/g, '\\-');
    this.portFirst = template.indexOf('{port}') < template.indexOf('{id}');
    this.label = new RegExp(`^${escaped.replace('{port}', PORT_PATTERN).replace('{id}', ID_PATTERN)}$`);
  }

  parse(hostHeader: string | undefined): PreviewTarget | undefined {
    if (!hostHeader) return undefined;
    let host = hostHeader.toLowerCase();
    const colon = host.lastIndexOf(':');
    if (colon !== -1) {
      if (host.includes(']')) return undefined; // an IPv6 literal is never a preview host
      host = host.slice(0, colon);
    }
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!host.endsWith(this.suffix)) return undefined;
    const label = host.slice(0, host.length - this.suffix.length);
    if (label.includes('.')) return undefined;
    const m = this.label.exec(label);
    if (!m) return undefined;
    const port = Number(this.portFirst ? m[1] : m[2]);
    const sandboxId = (this.portFirst ? m[2] : m[1])!;
    if (port > 65535) return undefined;
    return { port, sandboxId };
  }
}

/** The host of a preview: the template's one DNS label under the preview domain. */
export function formatPreviewHost(config: HostConfig, sandboxId: string, port: number): string {
  const label = config.edge.hostTemplate.replace('{port}', String(port)).replace('{id}', sandboxId);
  return `${label}.${config.previewDomain}`;
}
