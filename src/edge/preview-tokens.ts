import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** What a preview token grants: one sandbox, optionally one port, until `exp`. */
export interface PreviewTokenClaims {
  /** Sandbox id. */
  sid: string;
  port?: number;
  /** Issued at, milliseconds since the epoch (compared with the sandbox's revocation instant). */
  iat: number;
  /** Expiry, milliseconds since the epoch. */
  exp: number;
}

export interface SigningKey {
  kid: string;
  secret: Buffer;
}

export type TokenCheck =
  | { ok: true; claims: PreviewTokenClaims }
  | {
      ok: false;
      reason:
        | 'malformed'
        | 'unknown_key'
        | 'bad_signature'
        | 'expired'
        | 'wrong_sandbox'
        | 'wrong_port'
        | 'revoked';
    };

const PREFIX = 'pvt1';

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

/**
 * Reads the key file (one `kid secret` a line; the first signs, all verify, so a new key can be
 * put first and the old one kept until its tokens expire). Creates it with one random key, mode
 * 0600, when it does not exist.
 */
export function loadSigningKeys(file: string): SigningKey[] {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const kid = randomBytes(4).toString('hex');
    writeFileSync(file, `${kid} ${b64url(randomBytes(32))}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  }
  const keys: SigningKey[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const [kid, secret] = trimmed.split(/\s+/);
    if (!kid || !secret || !/^[A-Za-z0-9_-]{1,32}$/.test(kid)) {
      throw new Error(`${file}: each line must be "<kid> <secret>" (kid of [A-Za-z0-9_-])`);
    }
    const bytes = Buffer.from(secret, 'base64url');
    if (bytes.length < 16) throw new Error(`${file}: the secret of key ${kid} is shorter than 16 bytes`);
    keys.push({ kid, secret: bytes });
  }
  if (keys.length === 0) throw new Error(`${file} holds no preview-token key`);
  return keys;
}

export function defaultKeyFile(dataDir: string): string {
  return join(dataDir, 'preview-token-keys');
}

/** HMAC-SHA256 signed preview tokens: `pvt1.<kid>.<claims>.<signature>`, all base64url. */
export class PreviewTokens {
  private readonly byKid: Map<string, Buffer>;
  private readonly signing: SigningKey;

  constructor(keys: SigningKey[]) {
    if (keys.length === 0) throw new Error('at least one signing key is needed');
    this.signing = keys[0]!;
    this.byKid = new Map(keys.map((k) => [k.kid, k.secret]));
  }

  private mac(secret: Buffer, signed: string): Buffer {
    return createHmac('sha256', secret).update(signed).digest();
  }

  issue(claims: PreviewTokenClaims): string {
    const body = b64url(Buffer.from(JSON.stringify(claims)));
    const signed = `${PREFIX}.${this.signing.kid}.${body}`;
    return `${signed}.${b64url(this.mac(this.signing.secret, signed))}`;
  }

  /**
   * Checks a presented token for `sandboxId`/`port`. `validAfter` (ms) is the sandbox's revocation
   * instant: tokens issued at or before it are revoked.
   */
  verify(token: string, sandboxId: string, port: number, validAfter = 0, now = Date.now()): TokenCheck {
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== PREFIX) return { ok: false, reason: 'malformed' };
    const [, kid, body, sig] = parts as [string, string, string, string];
    const secret = this.byKid.get(kid);
    if (!secret) return { ok: false, reason: 'unknown_key' };
    const expected = this.mac(secret, `${PREFIX}.${kid}.${body}`);
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: 'bad_signature' };
    }
    let claims: PreviewTokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as PreviewTokenClaims;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (typeof claims.sid !== 'string' || typeof claims.exp !== 'number' || typeof claims.iat !== 'number') {
      return { ok: false, reason: 'malformed' };
    }
    if (claims.sid !== sandboxId) return { ok: false, reason: 'wrong_sandbox' };
    if (claims.port !== undefined && claims.port !== port) return { ok: false, reason: 'wrong_port' };
    if (claims.exp <= now) return { ok: false, reason: 'expired' };
    if (claims.iat <= validAfter) return { ok: false, reason: 'revoked' };
    return { ok: true, claims };
  }
}

export const TOKEN_PARAM = 'previewd_token';
export const TOKEN_COOKIE = 'previewd_token';
export const TOKEN_HEADER = 'x-previewd-token';

/** The request URL without the token parameter (for redirects, the app and the access log). */
export function stripTokenParam(url: string): string {
  const q = url.indexOf('?');
  if (q === -1 || !url.includes(`${TOKEN_PARAM}=`, q)) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  params.delete(TOKEN_PARAM);
  const rest = params.toString();
  return `${url.slice(0, q)}${rest ? `?${rest}` : ''}`;
}
