import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/**
 * The store the configuration names: PostgreSQL when `databaseUrl` is set
 * (PREVIEWD_DATABASE_URL), which several nodes may share; otherwise SQLite under dataDir.
 * Connects (PostgreSQL) before returning, so a wrong URL fails at start-up; `migrate()` is the
 * caller's.
 */
export async function openStore(
  config: Pick<Config, 'dataDir' | 'databaseUrl'>,
  opts: { onError?: (err: Error) => void } = {},
): Promise<Store> {
  if (!config.databaseUrl) return new SqliteStore(join(config.dataDir, 'previewd.db'));
  const store = new PostgresStore({
    url: config.databaseUrl,
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
  try {
    await store.ping();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new Error(`cannot reach PostgreSQL at ${redacted(config.databaseUrl)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return store;
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'databaseUrl (unparsable)';
  }
}
