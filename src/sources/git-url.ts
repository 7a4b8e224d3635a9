import { isIP } from 'node:net';
import { PreviewdError } from '../domain/errors.js';
import { type Resolve, resolveInternetHost } from '../net/internet-address.js';

export type { Resolve };

/** A git URL previewd will fetch, with the address git is made to connect to (no re-resolving). */
export interface GitTarget {
  url: URL;
  hostname: string;
  port: number;
  address: string;
  family: 4 | 6;
}

const DEFAULT_PORTS: Record<string, number> = { 'https:': 443, 'http:': 80, 'git:': 9418 };

const refuse = (message: string) => new PreviewdError('git_source_refused', message);

/**
 * Checks a git URL before git sees it: https, http or git only (no file://, ext::, ssh, scp-like
 * `host:path` or any other transport git knows), no credentials in it, and — unless
 * `allowPrivate` — a host that resolves only to internet addresses. The address returned is the
 * one git connects to (the clone pins it), so a name that resolves elsewhere later cannot move it.
 */
export async function checkGitUrl(
  raw: string,
  opts: { allowPrivate: boolean; resolve?: Resolve },
): Promise<GitTarget> {
  if (/^\s|\s$/.test(raw) || raw.startsWith('-') || /[\0\r\n]/.test(raw)) {
    throw refuse('the git URL has spaces, control characters or a leading "-"');
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(raw))
    throw refuse('git remote helpers ("<transport>::…") are refused');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('the git URL is not a URL (https://, http:// or git://)');
  }
  const port = DEFAULT_PORTS[url.protocol];
  if (port === undefined) {
    throw refuse(`git URLs are https, http or git, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username || url.password) {
    throw refuse('the git URL carries a user name or password; send the token in source.git.token');
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  if (!hostname) throw refuse('the git URL names no host');
  const addresses = await resolveInternetHost(hostname, {
    allowPrivate: opts.allowPrivate,
    resolve: opts.resolve,
    what: 'the git host',
    setting: 'sources.allowPrivateGit',
    refuse,
  });
  const first = addresses[0]!;
  return {
    url,
    hostname,
    port: url.port ? Number(url.port) : port,
    address: first.address,
    family: first.family === 6 ? 6 : 4,
  };
}

/**
 * The URL git is given and the configuration that pins its connection to the checked address:
 * git:// gets the address in place of the name; http(s) keeps the name (TLS checks it) with
 * curl's resolve entry.
 */
export function pinnedUrl(target: GitTarget): { url: string; config: Record<string, string> } {
  const host = target.family === 6 ? `[${target.address}]` : target.address;
  if (target.url.protocol === 'git:') {
    const url = new URL(target.url.href);
    url.hostname = host;
    return { url: url.href, config: {} };
  }
  if (isIP(target.hostname)) return { url: target.url.href, config: {} };
  return {
    url: target.url.href,
    config: { 'http.curloptResolve': `${target.hostname}:${target.port}:${host}` },
  };
}
