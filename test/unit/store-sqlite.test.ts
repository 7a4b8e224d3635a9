import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from '../contract/store.contract.js';
import { sandboxRecord } from '../contract/store-fixtures.js';

const freshFile = () => join(mkdtempSync(join(tmpdir(), 'previewd-store-')), 'previewd.db');

storeContract('sqlite (file, WAL)', async () => {
  const file = freshFile();
  return { store: new SqliteStore(file), openAnother: async () => new SqliteStore(file) };
});

describe('SQLite migrations', () => {
  it('gives rows written before nodes existed the node `local`', async () => {
    const file = freshFile();
    const old = new Database(file);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)');
    for (const m of migrations.filter((m) => m.version <= 3)) {
      old.exec(m.sqlite);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 'then');
    }
    const rec = sandboxRecord({ owner: 'acme' });
    old
      .prepare(
        'INSERT INTO sandboxes (id, state, owner, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(rec.id, rec.state, rec.owner, rec.createdAt, rec.updatedAt, JSON.stringify(rec));
    old
      .prepare(
        "INSERT INTO events (sandbox_id, owner, type, at, data) VALUES (?, 'acme', 'sandbox.deleted', 'then', '{}')",
      )
      .run(rec.id);
    old.close();

    const store = new SqliteStore(file);
    await store.migrate();
    expect(await store.getSandbox(rec.id)).toEqual({ ...rec, node: 'local' });
    expect((await store.listSandboxes({ node: 'local' })).map((r) => r.id)).toEqual([rec.id]);
    const [event] = await store.listEvents({});
    expect(event).toMatchObject({ sandboxId: rec.id, owner: 'acme' });
    expect(event?.node).toBeUndefined();
    await store.close();
  });
});
