import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HOP_BY_HOP_REQUEST } from './forwarding.js';

/**
 * Strips hop-by-hop and client-supplied internal headers; sets X-Forwarded-* (the client address
 * given, or the socket's peer). Host is kept. An upgrade keeps Connection and Upgrade.
 */
export function prepareHeaders(
  req: IncomingMessage,
  secure: boolean,
  upgrade: boolean,
  client: string | undefined,
): void {
  const h = req.headers;
  stripHopByHop(h, upgrade);
  for (const name of Object.keys(h)) {
    if (name.startsWith('x-previewd-') || isForwardingHeader(name)) delete h[name];
  }
  if (h.host) h['x-forwarded-host'] = h.host;
  h['x-forwarded-proto'] = secure ? 'https' : 'http';
  const remote = client ?? req.socket.remoteAddress;
  if (remote) h['x-forwarded-for'] = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}

/** X-Forwarded-*, Forwarded and X-Real-IP: set by the edge itself, never taken from a client. */
export function isForwardingHeader(name: string): boolean {
  return name.startsWith('x-forwarded-') || name === 'forwarded' || name === 'x-real-ip';
}

/** Drops the headers that describe one connection (those Connection names among them). */
export function stripHopByHop(h: IncomingHttpHeaders, upgrade: boolean): void {
  const connection = h.connection;
  if (typeof connection === 'string') {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && name !== 'upgrade' && name !== 'host') delete h[name];
    }
  }
  for (const name of HOP_BY_HOP_REQUEST) delete h[name];
  if (!upgrade) {
    delete h.connection;
    delete h.upgrade;
  }
}
