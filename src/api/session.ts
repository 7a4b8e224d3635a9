import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The dashboard's sign-in cookie: HttpOnly, SameSite=Strict, never readable by page scripts. */
export const SESSION_COOKIE = 'previewd_session';

const PREFIX = 's1';

function keyId(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/**
 * Dashboard sessions, stateless: `s1.<expires>.<key id>.<mac>` signed with a secret kept under the
 * data dir. The key id is a hash of the API key the user signed in with, so a session acts with
 * exactly that key's rights (its owner included) and ends when the key is removed from the
 * configuration. Nothing of the key itself is in the cookie.
 */
export class DashboardSessions {
  private readonly byId: Map<string, string>;

  constructor(
    private readonly secret: Buffer,
    keys: readonly string[],
    readonly ttlSec: number,
  ) {
    this.byId = new Map(keys.map((key) => [keyId(key), key]));
  }

  issue(key: string, now = Date.now()): { token: string; expiresAt: Date } {
    const expiresAt = new Date(now + this.ttlSec * 1000);
    const signed = `${PREFIX}.${Math.floor(expiresAt.getTime() / 1000)}.${keyId(key)}`;
    return { token: `${signed}.${this.mac(signed)}`, expiresAt };
  }

  /** The API key a session token stands for, or undefined when it is forged, expired or revoked. */
  verify(token: string | undefined, now = Date.now()): string | undefined {
    if (!token) return undefined;
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== PREFIX) return undefined;
    const [, exp, id, mac] = parts as [string, string, string, string];
    const expected = Buffer.from(this.mac(`${PREFIX}.${exp}.${id}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (!/^\d+$/.test(exp) || Number(exp) * 1000 <= now) return undefined;
    return this.byId.get(id);
  }

  private mac(signed: string): string {
    return createHmac('sha256', this.secret).update(signed).digest('base64url');
  }
}

/** The secret that signs dashboard sessions: `<dataDir>/session-secret`, made on first start (0600). */
export function loadSessionSecret(dataDir: string): Buffer {
  const file = join(dataDir, 'session-secret');
  if (existsSync(file)) {
    const bytes = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    if (bytes.length >= 32) return bytes;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32);
  writeFileSync(file, `${secret.toString('base64url')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}
