import { createHash, randomBytes, scryptSync } from 'node:crypto';
import type { ApiKeyRecord, KeyRole } from '../domain/credentials.js';
import { PreviewdError } from '../domain/errors.js';
import { newSandboxId } from '../domain/ids.js';
import { nowIso } from '../domain/sandbox.js';
import type { Store } from '../store/store.js';

/** Who a request acts as: decided once per request from its key or dashboard session. */
export interface Caller {
  keyId: string;
  role: KeyRole;
  /** A tenant key's owner. */
  owner?: string;
  via: 'key' | 'session';
}

/** What a listing shows of a key: never the secret, never its hash. */
export interface KeyView {
  id: string;
  role: KeyRole;
  owner: string | null;
  name: string | null;
  /** The first characters of the secret. */
  prefix: string;
  /** `config`: from PREVIEWD_API_KEYS or <dataDir>/api-key (revoked by editing that); `api`: made through the API. */
  source: 'config' | 'api';
  createdAt: string | null;
  revokedAt: string | null;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

const PREFIX_LENGTH = 10;

/**
 * Every API key the server accepts: the configured ones (held in memory by hash) and the ones made
 * through the API (in the store, hashed). A key is looked up by the hash of what the client sent,
 * so no comparison runs over secrets. The secrets are high-entropy random strings, so a plain
 * SHA-256 is enough: there is nothing to brute-force.
 */
export class KeyRing {
  private readonly configured = new Map<string, ApiKeyRecord>();

  constructor(
    private readonly store: Store,
    entries: readonly { key: string; owner?: string }[],
  ) {
    for (const { key, owner } of entries) {
      const hash = hashSecret(key);
      this.configured.set(hash, {
        // Stable across restarts (sessions name their key by id), and slow to derive, so the id an
        // admin listing shows is no cheap way to guess a short key a person chose.
        id: `cfg_${scryptSync(key, 'previewd configured key id', 8).toString('hex')}`,
        hash,
        // A configured key may be a short one a person chose: show less of it.
        prefix: key.slice(0, 4),
        role: owner ? 'tenant' : 'admin',
        ...(owner ? { owner } : {}),
        createdAt: '',
      });
    }
  }

  /** The caller a secret stands for, or undefined when no live key has it. */
  async resolve(secret: string): Promise<Caller | undefined> {
    if (secret.length === 0 || secret.length > 512) return undefined;
    const hash = hashSecret(secret);
    const record = this.configured.get(hash) ?? (await this.store.getApiKeyByHash(hash));
    return record && !record.revokedAt ? toCaller(record, 'key') : undefined;
  }

  /** The caller a key id stands for while the key lives (dashboard sessions name their key by id). */
  async byId(id: string, via: Caller['via']): Promise<Caller | undefined> {
    const record = this.findConfigured(id) ?? (await this.store.getApiKey(id));
    return record && !record.revokedAt ? toCaller(record, via) : undefined;
  }

  /** Makes a key; the secret is in the answer and nowhere else. */
  async create(opts: { owner?: string; name?: string }): Promise<{ key: KeyView; secret: string }> {
    const secret = `pvd_${randomBytes(24).toString('base64url')}`;
    const record: ApiKeyRecord = {
      id: `key_${newSandboxId()}`,
      hash: hashSecret(secret),
      prefix: secret.slice(0, PREFIX_LENGTH),
      role: opts.owner ? 'tenant' : 'admin',
      ...(opts.owner ? { owner: opts.owner } : {}),
      ...(opts.name ? { name: opts.name } : {}),
      createdAt: nowIso(),
    };
    await this.store.insertApiKey(record);
    return { key: view(record, 'api'), secret };
  }

  async list(): Promise<KeyView[]> {
    const stored = await this.store.listApiKeys();
    return [
      ...[...this.configured.values()].map((r) => view(r, 'config')),
      ...stored.map((r) => view(r, 'api')),
    ];
  }

  /** Revokes a key made through the API; its dashboard sessions end with it. Idempotent. */
  async revoke(id: string): Promise<KeyView> {
    if (this.findConfigured(id)) {
      throw new PreviewdError('key_not_revocable', `key ${id} comes from the configuration`);
    }
    const record = (await this.store.getApiKey(id)) && (await this.store.revokeApiKey(id, nowIso()));
    if (!record) throw new PreviewdError('key_not_found', `no key ${id.slice(0, 64)}`);
    return view(record, 'api');
  }

  private findConfigured(id: string): ApiKeyRecord | undefined {
    for (const record of this.configured.values()) if (record.id === id) return record;
    return undefined;
  }
}

function toCaller(record: ApiKeyRecord, via: Caller['via']): Caller {
  return { keyId: record.id, role: record.role, ...(record.owner ? { owner: record.owner } : {}), via };
}

function view(record: ApiKeyRecord, source: KeyView['source']): KeyView {
  return {
    id: record.id,
    role: record.role,
    owner: record.owner ?? null,
    name: record.name ?? null,
    prefix: record.prefix,
    source,
    createdAt: record.createdAt || null,
    revokedAt: record.revokedAt ?? null,
  };
}
