/**
 * Who may call the API. An **admin** key (the operator's, or a backend it trusts) sees every
 * sandbox and may act for an end user (`X-Previewd-Owner`); a **tenant** key belongs to one owner
 * and sees only that owner's sandboxes.
 */
export type KeyRole = 'admin' | 'tenant';

/** An API key made through the API or the CLI. Only a hash of the secret is kept. */
export interface ApiKeyRecord {
  id: string;
  /** sha256 of the secret, hex. */
  hash: string;
  /** The first characters of the secret, to tell keys apart in a listing. */
  prefix: string;
  role: KeyRole;
  /** The owner a tenant key acts for (absent for admin keys). */
  owner?: string;
  name?: string;
  createdAt: string;
  revokedAt?: string;
}

/** A dashboard sign-in. The cookie holds a random token; only its hash is kept. */
export interface SessionRecord {
  /** sha256 of the cookie's token, hex. */
  hash: string;
  keyId: string;
  createdAt: string;
  expiresAt: string;
}
