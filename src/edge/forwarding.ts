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
