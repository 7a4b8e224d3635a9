/**
 * Request headers that describe one connection, not the request: never passed to the app, by the
 * built-in edge or by the HAProxy front (besides `Connection` and the headers it names, which both
 * handle themselves).
 */
export const HOP_BY_HOP_REQUEST = [
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
] as const;

/**
 * The request target as the app gets it: origin-form (`/path?query`). An absolute-form target
 * (`http://host/path`, which HTTP/1.1 servers must accept) is reduced to its path; anything else
 * (`*`, an authority, garbage) cannot be forwarded: undefined.
 */
export function originFormTarget(url: string): string | undefined {
  if (url.startsWith('/')) return url;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(url);
  if (!absolute) return undefined;
  const rest = url.slice(absolute[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}
