import { networkInterfaces } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { PreviewdError } from '../domain/errors.js';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '']);

/** The host name of a Host header without its port, lowercased, brackets dropped; undefined if malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header || header.length > 260) return undefined;
  const h = header.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (bracketed) return bracketed[1];
  const plain = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return plain ? plain[1]!.replace(/\.$/, '') : undefined;
}

/**
 * The names the API answers to: the loopback names, the address it listens on (every local
 * interface address when that is a wildcard) and the configured extra names. Anything else is a
 * DNS-rebinding attempt or a misrouted request.
 */
export function allowedApiHosts(listenHost: string, extra: readonly string[]): Set<string> | 'any' {
  if (extra.includes('*')) return 'any';
  const names = new Set([...LOOPBACK_NAMES, ...extra.map((e) => hostName(e) ?? e.toLowerCase())]);
  const listen = listenHost.replace(/^\[|\]$/g, '').toLowerCase();
  if (WILDCARD_ADDRESSES.has(listen)) {
    for (const list of Object.values(networkInterfaces())) {
      for (const addr of list ?? []) names.add(addr.address.toLowerCase());
    }
  } else {
    names.add(listen);
  }
  return names;
}

/** 421 host_not_allowed for a Host the API does not answer to, before anything else runs. */
export function installHostCheck(app: FastifyInstance, allowed: Set<string> | 'any'): void {
  if (allowed === 'any') return;
  app.addHook('onRequest', async (request) => {
    const name = hostName(request.headers.host);
    if (name === undefined || !allowed.has(name)) {
      throw new PreviewdError(
        'host_not_allowed',
        `this API does not answer to host ${JSON.stringify((request.headers.host ?? '').slice(0, 100))}`,
      );
    }
  });
}
