import type Database from 'better-sqlite3';
import type { ApiKeyRecord, KeyRole, SessionRecord } from '../domain/credentials.js';

/** The SQLite engine's API keys and dashboard sessions. */

interface ApiKeyRow {
  id: string;
  hash: string;
  prefix: string;
  role: string;
  owner: string | null;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}
interface SessionRow {
  hash: string;
  key_id: string;
  created_at: string;
  expires_at: string;
}

function toApiKey(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id,
    hash: r.hash,
    prefix: r.prefix,
    role: r.role as KeyRole,
    ...(r.owner !== null ? { owner: r.owner } : {}),
    ...(r.name !== null ? { name: r.name } : {}),
    createdAt: r.created_at,
    ...(r.revoked_at !== null ? { revokedAt: r.revoked_at } : {}),
  };
}

export function insertApiKey(db: Database.Database, k: ApiKeyRecord): void {
  db.prepare(
    'INSERT INTO api_keys (id, hash, prefix, role, owner, name, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(k.id, k.hash, k.prefix, k.role, k.owner ?? null, k.name ?? null, k.createdAt, k.revokedAt ?? null);
}

export function getApiKey(db: Database.Database, id: string): ApiKeyRecord | undefined {
  const row = db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as ApiKeyRow | undefined;
  return row && toApiKey(row);
}

export function getApiKeyByHash(db: Database.Database, hash: string): ApiKeyRecord | undefined {
  const row = db.prepare('SELECT * FROM api_keys WHERE hash = ?').get(hash) as ApiKeyRow | undefined;
  return row && toApiKey(row);
}

export function listApiKeys(db: Database.Database): ApiKeyRecord[] {
  return (db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all() as ApiKeyRow[]).map(toApiKey);
}

export function revokeApiKey(db: Database.Database, id: string, at: string): ApiKeyRecord | undefined {
  return db
    .transaction(() => {
      db.prepare('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(at, id);
      db.prepare('DELETE FROM sessions WHERE key_id = ?').run(id);
      const row = db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as ApiKeyRow | undefined;
      return row && toApiKey(row);
    })
    .immediate();
}

export function insertSession(db: Database.Database, r: SessionRecord): void {
  db.prepare('INSERT INTO sessions (hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(
    r.hash,
    r.keyId,
    r.createdAt,
    r.expiresAt,
  );
}

export function getSession(db: Database.Database, hash: string): SessionRecord | undefined {
  const row = db.prepare('SELECT * FROM sessions WHERE hash = ?').get(hash) as SessionRow | undefined;
  return row && { hash: row.hash, keyId: row.key_id, createdAt: row.created_at, expiresAt: row.expires_at };
}

export function deleteSession(db: Database.Database, hash: string): void {
  db.prepare('DELETE FROM sessions WHERE hash = ?').run(hash);
}

export function deleteExpiredSessions(db: Database.Database, now: string): number {
  return db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
}
