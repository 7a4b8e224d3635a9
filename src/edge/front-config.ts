import { HOP_BY_HOP_REQUEST } from './forwarding.js';
import { frontPrivateBackendRules, frontRouteRules } from './front-access.js';
import { longHostBody } from './front-errors.js';

/**
 * The HAProxy configuration of the edge's front (see front-proxy.ts). Static for the life of the
 * process: routes change through the runtime API's map commands, never through a reload, so open
 * WebSockets and long streams are never cut by a route change.
 *
 * Requests whose Host is in the fast-route map (a running sandbox whose port has answered; a
 * private one only with a token HAProxy verified itself, front-access.ts) go straight to the
 * sandbox; everything else (unknown hosts, sleeping, starting or crashed sandboxes, private
 * previews without a valid token, WebSocket upgrades) goes to the built-in edge on loopback,
 * which wakes, authorises and explains exactly as without a front.
 */

export interface FrontBind {
  host: string;
  port: number;
}

export interface FrontConfigInput {
  plain: FrontBind;
  /** TLS listener: the certificate and key in one PEM file (HAProxy's `crt`). */
  tls?: FrontBind & { pemFile: string };
  /** Plain-HTTP requests stay on the built-in edge, which redirects them to https. */
  httpsRedirect: boolean;
  /** The built-in edge's loopback listener. */
  builtin: FrontBind;
  /** Runtime API socket (admin level, mode 600). */
  socketPath: string;
  /** The fast-route map: `<host> <ip>:<port>` per line (front-access.ts: private routes). */
  mapFile: string;
  /**
   * The preview-token keys (`<kid> <base64 secret>`, mode 600): private routes are served by the
   * front with a token it verified. Without it, private routes are never published.
   */
  keysFile?: string;
  /** HAProxy threads; undefined: HAProxy's default (one per core). */
  threads?: number;
  /** Log lines per second and preview host at most (requests beyond are counted, not logged). */
  logRate: number;
  /** HAProxy's own error answers (status → file holding the whole response; front-errors.ts). */
  errorFiles?: Record<number, string>;
}

/** The stick table that counts requests per fast host, in flight and in all (activity, metrics). */
export const FRONT_INFLIGHT_TABLE = 'fast';

function bindLine(bind: FrontBind): string {
  const host = bind.host.includes(':') ? `[${bind.host}]` : bind.host;
  return `${host}:${bind.port}`;
}

/** Tab-separated fields of one fast-path request (parsed by front-log.ts, in this order). */
export const FRONT_LOG_FORMAT = '%[var(txn.host)]\\t%HM\\t%HU\\t%ST\\t%B\\t%Ta\\t%Ts%ms\\t%s';

/** The fast backend's second server: the built-in edge, for requests the app refused. */
export const FRONT_FALLBACK_SERVER = 'builtin';

export function renderFrontConfig(input: FrontConfigInput): string {
  const scheme = '%[ssl_fc,iif(https,http)]';
  const fastWhen =
    input.tls && input.httpsRedirect ? '{ var(txn.up) -m found } { ssl_fc }' : '{ var(txn.up) -m found }';
  const builtin = bindLine(input.builtin);
  const lines = [
    '# Written by previewd at start-up; routes live in the map, changed through the runtime API.',
    'global',
    `  stats socket ${input.socketPath} mode 600 level admin`,
    '  log stdout format raw local0',
    ...(input.threads ? [`  nbthread ${input.threads}`] : []),
    '',
    'defaults',
    '  mode http',
    '  log global',
    '  option http-keep-alive',
    '  http-reuse always',
    '  timeout connect 5s',
    // Idle keep-alive connections close after 65 s and request headers must arrive within 60 s;
    // once a request is under way, streams (SSE, long downloads, slow uploads) and WebSockets may
    // stay quiet as long as the app likes, on both sides.
    '  timeout http-keep-alive 65s',
    '  timeout http-request 60s',
    '  timeout client 1d',
    '  timeout server 1d',
    '  timeout tunnel 1d',
    '  timeout client-fin 5s',
    '  timeout server-fin 5s',
    ...Object.entries(input.errorFiles ?? {}).map(([status, file]) => `  errorfile ${status} ${file}`),
    '',
    'frontend previews',
    `  bind ${bindLine(input.plain)}`,
    ...(input.tls ? [`  bind ${bindLine(input.tls)} ssl crt ${input.tls.pemFile} alpn h2,http/1.1`] : []),
    `  log-format "${FRONT_LOG_FORMAT}"`,
    // Forwarding headers are ours: what the client sent is dropped, then set from the connection.
    // The built-in edge trusts them on its loopback listener (only the front connects there).
    // No preview host is longer than a DNS name; a longer one is refused before it is copied into
    // X-Forwarded-Host (a rewrite past the buffer's reserve would be HAProxy's 500).
    `  http-request return status 404 content-type "application/json; charset=utf-8" hdr x-previewd-error not_a_preview_host string '${longHostBody()}' if { req.hdr(host),length gt 253 }`,
    '  http-request del-header ^x-forwarded- -m reg',
    '  http-request del-header forwarded',
    '  http-request del-header x-real-ip',
    '  http-request set-header x-forwarded-host %[req.hdr(host)]',
    `  http-request set-header x-forwarded-proto ${scheme}`,
    '  http-request set-header x-forwarded-for %[src]',
    '  http-request set-var(txn.host) req.hdr(host),field(1,:),lower',
    // Requests HAProxy would pass on in a way the app must not see stay with the built-in edge:
    // upgrades (WebSockets), and a Connection header naming other headers (they are hop-by-hop
    // and the built-in edge drops them; HAProxy only knows keep-alive and close).
    '  acl conn_plain req.fhdr(connection) -m reg -i ^[[:space:]]*(keep-alive|close)?[[:space:]]*$',
    '  acl conn_many req.fhdr_cnt(connection) gt 1',
    ...frontRouteRules(
      input.mapFile,
      input.keysFile,
      'unless { req.hdr(upgrade) -m found } || conn_many || { req.fhdr(connection) -m found } !conn_plain',
    ),
    `  http-request track-sc0 var(txn.host) table ${FRONT_INFLIGHT_TABLE} if ${fastWhen}`,
    // A log line costs previewd a few microseconds: past the rate, requests are only counted.
    `  http-request set-log-level silent if { sc_http_req_rate(0) gt ${input.logRate} }`,
    `  use_backend fast if ${fastWhen}`,
    '  default_backend builtin',
    '',
    'backend fast',
    '  stick-table type string len 255 size 200k expire 10m store http_req_cnt,http_req_rate(1s)',
    '  http-request del-header ^x-previewd- -m reg',
    ...HOP_BY_HOP_REQUEST.map((name) => `  http-request del-header ${name}`),
    ...(input.keysFile ? frontPrivateBackendRules() : []),
    '  http-request set-dst var(txn.up),field(1,:)',
    '  http-request set-dst-port var(txn.up),field(2,:)',
    // The app refused the connection (its port closed between two route updates): the retry goes
    // to the built-in edge, which explains (starting or crashed page) or holds the request, as for
    // any request it gets; the log line names that server and previewd withdraws the route.
    '  balance first',
    '  retries 1',
    '  option redispatch 1',
    '  timeout connect 2s',
    '  server app 0.0.0.0:0',
    `  server ${FRONT_FALLBACK_SERVER} ${builtin}`,
    '',
    'backend builtin',
    '  http-request set-log-level silent',
    `  server edge ${builtin}`,
    '',
  ];
  return lines.join('\n');
}
