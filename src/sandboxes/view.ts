import type { Config } from '../config/schema.js';
import { effectivePolicy } from '../domain/egress.js';
import { LOCAL_NODE } from '../domain/node.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { SandboxView } from '../domain/schemas.js';
import { previewUrl } from '../edge/preview-urls.js';

/** A sandbox as the API shows it: no env values, no container id; its node, policy and preview URLs. */
export function sandboxView(config: Config, record: SandboxRecord): SandboxView {
  const { env: _env, containerId: _c, deletedAt: _d, ...rest } = record;
  return {
    ...rest,
    node: record.node ?? LOCAL_NODE,
    isolation: record.isolation ?? 'container',
    network: effectivePolicy(record.network, record.owner, config.network),
    previews: record.ports.map((port) => ({ port, url: previewUrl(config, record.id, port) })),
  };
}
