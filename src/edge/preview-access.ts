import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import { isNavigation, sendError } from './pages.js';
import type { PreviewTarget } from './preview-host.js';
import {
  type PreviewTokens,
  stripTokenParam,
  TOKEN_COOKIE,
  TOKEN_HEADER,
  TOKEN_PARAM,
} from './preview-tokens.js';
import type { Route } from './route-table.js';

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function withoutCookie(header: string, name: string): string {
  return header
    .split(';')
    .filter((part) => part.slice(0, part.indexOf('=')).trim() !== name)
    .join(';')
    .trim();
}

/**
 * SameSite attributes of the preview-token cookie. It must reach the preview inside a cross-site
 * iframe (the dashboard on the API address), where Chromium sends only `SameSite=None; Secure`
 * cookies, and, with third-party cookies blocked, only partitioned ones (CHIPS). Over TLS:
 * `None; Secure`. Over plain http, `Secure` is accepted only on potentially trustworthy origins:
 * `localhost` and `*.localhost` are, so there `None; Secure; Partitioned` (measured in Chromium
 * 156: Lax and None; Secure are not sent in the iframe, Partitioned is, and in a top-level tab
 * too). Any other http host keeps `Lax` (a Secure cookie would be refused there).
 */
export function tokenCookieScope(secure: boolean, host: string | undefined): string {
  if (secure) return 'SameSite=None; Secure';
  const name = (host ?? '').replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return 'SameSite=None; Secure; Partitioned';
  return 'SameSite=Lax';
}

const hex = (byte: number) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;

/** The text without C0 control characters and DEL (browsers drop tabs and newlines from URLs). */
function withoutControls(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (code > 0x1f && code !== 0x7f) out += c;
  }
  return out;
}

/** Percent-encodes what is not printable ASCII (request targets arrive as latin1: one char a byte). */
function encodeOutsideAscii(text: string): string {
  return text.replace(/[^\u0021-\u007e]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? hex(code) : [...Buffer.from(c, 'utf8')].map(hex).join('');
  });
}

/**
 * A Location that can only name the host the request came to: the request target reduced to
 * `/` + path (+ query). An absolute-form target (`http://other/x`) loses its scheme and authority;
 * in the path, characters a browser drops (tabs, newlines, other controls) are removed and
 * backslashes, which browsers read as slashes, become slashes; then a run of leading slashes
 * becomes one, so the result never starts with `//` (a host to a browser). Bytes outside printable
 * ASCII are percent-encoded.
 */
export function sameHostLocation(requestUrl: string): string {
  let url = withoutControls(requestUrl);
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  if (absolute) url = url.slice(absolute[0].length);
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQuery = q === -1 ? '' : url.slice(q);
  const path = rawPath.replaceAll('\\', '/').replace(/^\/*/, '/');
  return encodeOutsideAscii(path) + encodeOutsideAscii(rawQuery);
}

/**
 * Who may see a private preview: the preview token (query parameter, header, bearer or cookie)
 * checked before anything else about the sandbox is told, the token exchange (a `?previewd_token=`
 * on a GET/HEAD becomes an HttpOnly cookie and a redirect to the same host), and the answer to a
 * request without a valid token (the login URL for browsers when configured, else 401).
 */
export class PreviewAccess {
  constructor(
    private readonly tokens: PreviewTokens,
    private readonly config: Config,
  ) {}

  /**
   * Checks the preview token of a private sandbox. Returns true when the request may go on; when
   * it has answered (redirect or 401) returns false. The token never reaches the app.
   */
  authorize(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    route: Route,
    target: PreviewTarget,
    secure: boolean,
  ): boolean {
    const url = req.url ?? '/';
    let fromParam: string | undefined;
    const q = url.indexOf('?');
    if (q !== -1 && url.includes(`${TOKEN_PARAM}=`, q)) {
      fromParam = new URLSearchParams(url.slice(q + 1)).get(TOKEN_PARAM) ?? undefined;
    }
    const header = req.headers[TOKEN_HEADER];
    const fromHeader = typeof header === 'string' ? header : undefined;
    const auth = req.headers.authorization;
    const fromBearer = auth?.startsWith('Bearer pvt1.') ? auth.slice(7).trim() : undefined;
    const fromCookie = readCookie(req.headers.cookie, TOKEN_COOKIE);
    const token = fromParam ?? fromHeader ?? fromBearer ?? fromCookie;

    // The token is ours, never the app's.
    if (fromBearer) delete req.headers.authorization;
    if (fromCookie && req.headers.cookie) {
      const rest = withoutCookie(req.headers.cookie, TOKEN_COOKIE);
      if (rest) req.headers.cookie = rest;
      else delete req.headers.cookie;
    }
    if (fromParam) req.url = stripTokenParam(url);

    const check = token
      ? this.tokens.verify(token, route.id, target.port, route.tokensValidAfter)
      : undefined;
    if (check?.ok) {
      if (fromParam && res && (req.method === 'GET' || req.method === 'HEAD')) {
        const useSecure = secure || this.config.edge.publicScheme === 'https';
        const maxAge = Math.max(1, Math.floor((check.claims.exp - Date.now()) / 1000));
        const cookie = `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; Max-Age=${maxAge}; ${tokenCookieScope(useSecure, req.headers.host)}`;
        res.writeHead(303, {
          location: sameHostLocation(req.url ?? '/'),
          'set-cookie': cookie,
          'cache-control': 'no-store',
        });
        res.end();
        return false;
      }
      return true;
    }
    if (!res) return false;
    const loginUrl = this.config.edge.loginUrl;
    if (loginUrl && isNavigation(req)) {
      const back = `${secure ? 'https' : 'http'}://${req.headers.host}${sameHostLocation(req.url ?? '/')}`;
      const location = new URL(loginUrl);
      location.searchParams.set('return_to', back);
      location.searchParams.set('sandbox', route.id);
      location.searchParams.set('port', String(target.port));
      res.writeHead(302, { location: location.toString(), 'cache-control': 'no-store' });
      res.end();
      return false;
    }
    sendError(req, res, this.tokenError(route, target, check));
    return false;
  }

  /** The refusal of a WebSocket upgrade without a valid token (no redirect, no page). */
  upgradeRefusal(req: IncomingMessage, route: Route): PreviewdError {
    const token = req.headers[TOKEN_HEADER] ?? req.headers.cookie;
    return token
      ? new PreviewdError('preview_token_invalid', 'the preview token is not valid for this preview')
      : new PreviewdError('preview_token_required', `the preview of sandbox ${route.id} is private`);
  }

  private tokenError(
    route: Route,
    target: PreviewTarget,
    check: ReturnType<PreviewTokens['verify']> | undefined,
  ): PreviewdError {
    if (!check) {
      return new PreviewdError('preview_token_required', `the preview of sandbox ${route.id} is private`);
    }
    const reason = check.ok ? 'ok' : check.reason;
    const words: Record<string, string> = {
      expired: 'has expired',
      revoked: 'was revoked',
      wrong_port: `is not valid for port ${target.port}`,
      wrong_sandbox: `is for another sandbox`,
    };
    return new PreviewdError(
      'preview_token_invalid',
      `the preview token ${words[reason] ?? 'is not valid'}`,
      { details: { reason } },
    );
  }
}
