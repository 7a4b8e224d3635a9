/**
 * Who may call the API. An **admin** key (the operator's, or a backend it trusts) sees every
 * sandbox and may act for an end user (`X-Previewd-Owner`); a **tenant** key belongs to one owner
 * and sees only that owner's sandboxes.
 */
export type KeyRole = 'admin' | 'tenant';

/**
 * What an owner may be called, wherever one is named: a `key:owner` configuration entry, the
 * `owner` of a key made through the API, the X-Previewd-Owner header. No `:` (it separates the
 * owner in a configured entry).
 */
export const OWNER_CHARS = 'A-Za-z0-9_.@+-';
export const OWNER_RE = new RegExp(`^[${OWNER_CHARS}]{1,128}$`);
export const OWNER_RULE = 'an owner is 1–128 of A-Z a-z 0-9 _ . @ + -';

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
