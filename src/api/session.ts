import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import { type Caller, hashSecret, type KeyRing } from './key-ring.js';

/** The dashboard's sign-in cookie: HttpOnly, SameSite=Strict, never readable by page scripts. */
export const SESSION_COOKIE = 'previewd_session';

/**
 * Dashboard sessions, kept in the store: the cookie holds a random token, the store its hash, the
 * key it was signed in with and when it ends. A session acts with exactly that key's rights and
 * ends for good when the user signs out, when it expires, or when its key is revoked (or removed
 * from the configuration). Nothing of the key itself is in the cookie.
 */
export class DashboardSessions {
  constructor(
    private readonly store: Store,
    private readonly keys: KeyRing,
    readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(caller: Caller): Promise<{ token: string; expiresAt: Date }> {
    const now = this.now();
    await this.store.deleteExpiredSessions(new Date(now).toISOString());
    const token = `s2_${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(now + this.ttlSec * 1000);
    await this.store.insertSession({
      hash: hashSecret(token),
      keyId: caller.keyId,
      createdAt: new Date(now).toISOString(),
      expiresAt: expiresAt.toISOString(),
    });
    return { token, expiresAt };
  }

  /** Who a session token stands for, or undefined when it is unknown, ended, or its key is gone. */
  async verify(token: string | undefined): Promise<Caller | undefined> {
    if (!token || token.length > 128) return undefined;
    const session = await this.store.getSession(hashSecret(token));
    if (!session || Date.parse(session.expiresAt) <= this.now()) return undefined;
    return this.keys.byId(session.keyId, 'session');
  }

  /** Signs out: the token is worthless from now on, even if a copy of the cookie survives. */
  async end(token: string | undefined): Promise<void> {
    if (token && token.length <= 128) await this.store.deleteSession(hashSecret(token));
  }
}
