import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OWNER_CHARS } from '../domain/credentials.js';
import type { Config } from './schema.js';

export function apiKeyFile(dataDir: string): string {
  return join(dataDir, 'api-key');
}

/**
 * The keys the API accepts. With none configured, one is generated on first start and kept in
 * <dataDir>/api-key (mode 0600); `generated` is set only on that first start so it is printed once.
 */
export function ensureApiKeys(config: Pick<Config, 'apiKeys' | 'dataDir'>): {
  keys: string[];
  generated?: string;
} {
  if (config.apiKeys.length > 0) return { keys: config.apiKeys };
  const file = apiKeyFile(config.dataDir);
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (key) return { keys: [key] };
  }
  mkdirSync(config.dataDir, { recursive: true });
  const key = `pvd_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { keys: [key], generated: key };
}

/** Reads the local key for CLI use; undefined when there is none. */
export function readLocalApiKey(dataDir: string): string | undefined {
  const file = apiKeyFile(dataDir);
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

const OWNER_SUFFIX = new RegExp(`^(.{16,}):([${OWNER_CHARS}]{1,128})$`);

/**
 * A configured key is an admin key, or a tenant key when it names its owner as `key:owner`.
 * Returns what clients send (the bare key) and the owner of each tenant key.
 */
export function parseKeyEntries(entries: readonly string[]): { key: string; owner?: string }[] {
  return entries.map((entry) => {
    const match = OWNER_SUFFIX.exec(entry);
    return match ? { key: match[1]!, owner: match[2]! } : { key: entry };
  });
}
