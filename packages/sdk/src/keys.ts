import type { ApiKey, ApiKeyList, CreatedKey, CreateKeyRequest } from './generated/api-types.js';
import type { Http } from './http.js';

/**
 * API keys (an admin key only; a tenant key gets ForbiddenError): make one for an end user or
 * another backend, list them, revoke them. A created key's secret (`key`) is in the answer to
 * `create` and nowhere else: listings show its `prefix` only.
 */
export class Keys {
  constructor(private readonly http: Http) {}

  /** With `owner`, a tenant key that sees only that owner's sandboxes; without, an admin key. */
  create(opts: CreateKeyRequest = {}): Promise<CreatedKey> {
    return this.http.json('POST', '/v1/keys', { body: opts });
  }

  /** Every key: the configured ones (`source: 'config'`) and the ones made here (`'api'`), revoked ones too. */
  async list(): Promise<ApiKey[]> {
    return (await this.http.json<ApiKeyList>('GET', '/v1/keys')).keys;
  }

  /** Revokes a key made through the API (KeyNotRevocableError for a configured one); its dashboard sessions end with it. */
  revoke(id: string): Promise<ApiKey> {
    return this.http.json('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  }
}
