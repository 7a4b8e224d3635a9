import type { SigningKey } from './preview-tokens.js';
import { TOKEN_COOKIE, TOKEN_HEADER, TOKEN_PARAM } from './preview-tokens.js';
import type { Route } from './route-table.js';

/**
 * Private previews on the HAProxy front. A private route is published like a public one, with
 * what the token check needs in its map entry: `<ip>:<port>|<sandbox>|<port>|<validAfter>`. The
 * front serves a request on it only when it carries, in the one place the built-in edge would
 * read it (preview-access.ts: header, else bearer, else cookie), a token HAProxy itself verifies
 * with the same checks: `pvt1.<kid>.<claims>.<sig>`, the HMAC-SHA256 of the key named by kid
 * (`hmac` converter, the keys in a private map), claims for this sandbox (and this port, when
 * scoped), `exp` after HAProxy's `date` in ms, `iat` after the entry's revocation instant.
 * Everything else — no token, a `?previewd_token=` (the exchange), an ambiguous request (two
 * token headers, two Cookie headers, a cookie named twice) or any failed check — goes to the
 * built-in edge, which answers exactly as it does without a front. The front only ever accepts
 * a subset of what the built-in edge accepts.
 */

/** What the front needs to check tokens on a private route. */
export interface FrontRouteAccess {
  sandboxId: string;
  port: number;
  /** Tokens issued at or before this instant (ms) are revoked. */
  validAfter: number;
}

/** The access of a route on the front: undefined for a public route (no token checked). */
export function frontAccess(
  route: Pick<Route, 'id' | 'visibility' | 'tokensValidAfter'>,
  port: number,
): FrontRouteAccess | undefined {
  if (route.visibility !== 'private') return undefined;
  return { sandboxId: route.id, port, validAfter: route.tokensValidAfter };
}

/** The map value of a route: `ip:port`, plus the token check's fields for a private one. */
export function frontRouteValue(upstream: { host: string; port: number }, access?: FrontRouteAccess): string {
  const addr = `${upstream.host}:${upstream.port}`;
  if (!access) return addr;
  return `${addr}|${access.sandboxId}|${access.port}|${Math.max(0, Math.floor(access.validAfter))}`;
}

/** The keys map (`<kid> <standard base64 secret>` a line): HAProxy's `hmac` wants base64. */
export function frontKeyMap(keys: SigningKey[]): string {
  return keys.map((k) => `${k.kid} ${k.secret.toString('base64')}\n`).join('');
}

/** A well-formed token (kid as loadSigningKeys allows it, a 32-byte signature). */
const TOKEN_SHAPE = String.raw`^pvt1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`;

/**
 * Frontend rules: sets `txn.up` (the upstream `ip:port`) for a request the front may serve
 * itself. `lookup` is the condition under which the Host is looked up at all.
 */
export function frontRouteRules(mapFile: string, keysFile: string | undefined, lookup: string): string[] {
  const ck = 'req.fhdr(cookie)';
  const rules = [
    `  http-request set-var(txn.route) var(txn.host),map(${mapFile}) ${lookup}`,
    // The status poll of the starting page is the built-in edge's own answer, never the app's.
    '  acl pv_status path /__previewd/status',
    '  acl pv_route var(txn.route) -m sub |',
    '  http-request set-var(txn.up) var(txn.route) if { var(txn.route) -m found } !pv_route !pv_status',
  ];
  if (!keysFile) return rules;
  return [
    ...rules,
    // Which token the built-in edge would read, when that is unambiguous.
    `  acl pv_query query -m sub ${TOKEN_PARAM}=`,
    `  acl pv_hdr req.fhdr_cnt(${TOKEN_HEADER}) gt 0`,
    `  acl pv_hdr_one req.fhdr_cnt(${TOKEN_HEADER}) eq 1`,
    '  acl pv_bearer req.fhdr(authorization) -m beg "Bearer pvt1."',
    '  acl pv_auth_many req.fhdr_cnt(authorization) gt 1',
    '  acl pv_ck_many req.fhdr_cnt(cookie) gt 1',
    `  acl pv_ck_has ${ck} -m sub ${TOKEN_COOKIE}`,
    `  acl pv_ck_twice ${ck} -m reg ${TOKEN_COOKIE}.*${TOKEN_COOKIE}`,
    `  acl pv_ck_part ${ck} -m reg (^|;)[[:space:]]*${TOKEN_COOKIE}[[:space:]]*=[^;]*(;|$)`,
    '  http-request set-var(txn.pv) bool(1) if pv_route !pv_status !pv_query !pv_auth_many !pv_ck_many !pv_ck_twice',
    '  http-request unset-var(txn.pv) if pv_hdr !pv_hdr_one || pv_ck_has !pv_ck_part',
    '  acl pv var(txn.pv) -m found',
    `  http-request set-var(txn.pvt) req.fhdr(${TOKEN_HEADER}) if pv pv_hdr_one`,
    '  http-request set-var(txn.pvt) req.fhdr(authorization),bytes(7) if pv !pv_hdr pv_bearer',
    `  http-request set-var(txn.pvt) ${ck},regsub('^.*${TOKEN_COOKIE}[[:space:]]*=[[:space:]]*',''),regsub(';.*$',''),regsub('[[:space:]]+$','') if pv !pv_hdr !pv_bearer pv_ck_has`,
    // The signature: HMAC-SHA256 over `pvt1.<kid>.<claims>` with the key of that kid.
    `  http-request set-var(txn.pvk) var(txn.pvt),field(2,.),map(${keysFile}) if { var(txn.pvt) -m reg ${TOKEN_SHAPE} }`,
    `  http-request set-var(txn.pvm) var(txn.pvt),regsub('\\.[^.]*$',''),hmac(sha256,txn.pvk),hex if { var(txn.pvk) -m found }`,
    '  http-request set-var(txn.pvs) var(txn.pvt),field(4,.),ub64dec,hex if { var(txn.pvm) -m found }',
    '  acl pv_signed var(txn.pvs),strcmp(txn.pvm) eq 0',
    // The claims, once signed: this sandbox, this port (when scoped), not expired, not revoked.
    '  http-request set-var(txn.pvc) var(txn.pvt),field(3,.),ub64dec if pv_signed',
    '  http-request set-var(txn.pvn) date(0,ms) if pv_signed',
    '  http-request set-var(txn.pvsid) var(txn.route),field(2,|) if pv_signed',
    '  http-request set-var(txn.pvport) var(txn.route),field(3,|) if pv_signed',
    '  http-request set-var(txn.pvva) var(txn.route),field(4,|) if pv_signed',
    `  acl pv_sid var(txn.pvc),json_query('$.sid'),strcmp(txn.pvsid) eq 0`,
    '  acl pv_scoped var(txn.pvc) -m sub "port"',
    `  acl pv_port var(txn.pvc),json_query('$.port','int'),sub(txn.pvport) eq 0`,
    `  acl pv_live var(txn.pvc),json_query('$.exp','int'),sub(txn.pvn) gt 0`,
    `  acl pv_fresh var(txn.pvc),json_query('$.iat','int'),sub(txn.pvva) gt 0`,
    '  http-request set-var(txn.up) var(txn.route),field(1,|) if pv_signed pv_sid !pv_scoped pv_live pv_fresh || pv_signed pv_sid pv_port pv_live pv_fresh',
  ];
}

/**
 * Fast-backend rules for a private route: the token is previewd's, never the app's (as the
 * built-in edge does: a `Bearer pvt1.` Authorization goes, the token cookie leaves the Cookie
 * header, which goes when nothing else is left).
 */
export function frontPrivateBackendRules(): string[] {
  const ck = 'req.fhdr(cookie)';
  return [
    '  acl pv_route var(txn.route) -m sub |',
    `  acl pv_ck_has ${ck} -m sub ${TOKEN_COOKIE}`,
    '  http-request del-header authorization if pv_route { req.fhdr(authorization) -m beg "Bearer pvt1." }',
    `  http-request set-var(txn.pvck) ${ck},regsub('^[^;]*${TOKEN_COOKIE}[^;]*;?|;[^;]*${TOKEN_COOKIE}[^;]*',''),regsub('^[[:space:]]+',''),regsub('[[:space:]]+$','') if pv_route pv_ck_has`,
    '  http-request del-header cookie if pv_route pv_ck_has !{ var(txn.pvck) -m len gt 0 }',
    '  http-request set-header cookie %[var(txn.pvck)] if pv_route pv_ck_has { var(txn.pvck) -m len gt 0 }',
  ];
}
