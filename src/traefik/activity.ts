import type { PreviewTarget } from '../edge/preview-host.js';
import type { AccessLogEntry } from './access-log-tailer.js';

/**
 * Turns Traefik access-log entries into preview activity. Hosts go through the edge's own host
 * parser, so an id typed (or logged) in upper case counts for the lowercase sandbox.
 */
export function accessLogActivity(
  hosts: { parse(host: string | undefined): PreviewTarget | undefined },
  touch: (sandboxId: string, port: number) => void,
): (entry: AccessLogEntry) => void {
  return (entry) => {
    const target = hosts.parse(entry.host);
    if (target) touch(target.sandboxId, target.port);
  };
}
