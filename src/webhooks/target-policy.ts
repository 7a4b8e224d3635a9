import { PreviewdError } from '../domain/errors.js';
import { isNonInternetAddress, type Resolve, resolveInternetHost } from '../net/internet-address.js';

export { isNonInternetAddress, type Resolve };

/**
 * Where a webhook may point: http(s) URLs whose host resolves only to internet addresses. The
 * address checked is the address connected to (webhook-http.ts pins it), so a name that resolves
 * to a public address at the check and to a private one at connect time (DNS rebinding) cannot
 * switch the target.
 */

export interface ResolvedTarget {
  url: URL;
  /** The host name for SNI and the Host header (without brackets). */
  hostname: string;
  address: string;
  family: 4 | 6;
}

const refuse = (message: string) => new PreviewdError('webhook_target_not_allowed', message);

/** Parses and checks the URL's form: http or https, a host, no credentials. */
export function parseTargetUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('the webhook URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refuse(`webhook URLs are http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username || url.password) throw refuse('webhook URLs carry no user name or password');
  if (!url.hostname) throw refuse('the webhook URL names no host');
  return url;
}

/**
 * Resolves the URL's host and picks the address to connect to. Unless private targets are
 * allowed, refuses when any address the name resolves to is not an internet address.
 */
export async function resolveTarget(
  raw: string,
  opts: { allowPrivate: boolean; resolve?: Resolve },
): Promise<ResolvedTarget> {
  const url = parseTargetUrl(raw);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = await resolveInternetHost(hostname, {
    allowPrivate: opts.allowPrivate,
    resolve: opts.resolve,
    what: 'the webhook host',
    refuse,
  });
  const first = addresses[0]!;
  return { url, hostname, address: first.address, family: first.family === 6 ? 6 : 4 };
}
