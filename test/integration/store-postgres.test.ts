import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSandboxId } from '../../src/domain/ids.js';
import { openStore } from '../../src/store/open-store.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { pgMigrations } from '../../src/store/postgres-migrations.js';
import { storeContract } from '../contract/store.contract.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';

let server: PostgresServer;
let n = 0;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

// Every case gets a fresh database of one private server; `openAnother` is a second pool on it.
storeContract('postgres (15, private server)', async () => {
  const url = await server.createDatabase(`contract_${++n}`);
  return { store: new PostgresStore({ url }), openAnother: async () => new PostgresStore({ url }) };
});

describe('PostgreSQL store: several nodes on one database', () => {
  it('two nodes migrating a fresh database at once apply each migration once', async () => {
    const url = await server.createDatabase(`race_${++n}`);
    const stores = [new PostgresStore({ url }), new PostgresStore({ url }), new PostgresStore({ url })];
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY 1',
      );
      await client.end();
      expect(rows.map((r) => r.version)).toEqual(pgMigrations.map((m) => m.version));
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('two nodes allocating uids at once never hand out one twice, and exhaust the range once', async () => {
    const url = await server.createDatabase(`uids_${++n}`);
    const a = new PostgresStore({ url });
    const b = new PostgresStore({ url });
    try {
      await a.migrate();
      const range = { start: 100_000, size: 40 };
      const ids = Array.from({ length: 40 }, () => newSandboxId());
      const uids = await Promise.all(ids.map((id, i) => (i % 2 ? a : b).allocateUid(id, range)));
      expect(new Set(uids).size).toBe(40);
      for (const uid of uids) expect(uid >= 100_000 && uid < 100_040).toBe(true);
      // The same sandbox asking again (on either node) keeps its uid.
      expect(await b.allocateUid(ids[0]!, range)).toBe(uids[0]);
      const late = await Promise.allSettled([
        a.allocateUid(newSandboxId(), range),
        b.allocateUid(newSandboxId(), range),
      ]);
      expect(late.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect((late[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'uid_range_exhausted' });
      await a.releaseUid(ids[3]!);
      expect(await b.allocateUid(newSandboxId(), range)).toBe(uids[3]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('openStore', () => {
  it('opens PostgreSQL when databaseUrl is set, SQLite under dataDir otherwise', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'previewd-open-store-'));
    const pgStore = await openStore({ dataDir, databaseUrl: await server.createDatabase(`open_${++n}`) });
    expect(pgStore.engine).toBe('postgres');
    await pgStore.migrate();
    await pgStore.close();
    const sqlite = await openStore({ dataDir });
    expect(sqlite.engine).toBe('sqlite');
    await sqlite.close();
    expect(existsSync(join(dataDir, 'previewd.db'))).toBe(true);
  });

  it('fails at start-up with the address (never the password) when PostgreSQL is not there', async () => {
    const stopped = await startPostgres();
    const url = stopped.urlFor('previewd').replace('postgres@', 'postgres:s3cret@');
    await stopped.stop();
    const err = await openStore({ dataDir: tmpdir(), databaseUrl: url }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`127.0.0.1:${stopped.port}`);
    expect((err as Error).message).not.toContain('s3cret');
  });
});

describe('test helper: startPostgres', () => {
  it('listens on every address asked for, with extra databases, and removes its folder at stop', async () => {
    const t0 = performance.now();
    const other = await startPostgres({ listen: ['127.0.0.1', '127.0.0.2'], databases: ['second'] });
    const startMs = performance.now() - t0;
    try {
      for (const host of ['127.0.0.1', '127.0.0.2']) {
        const client = new pg.Client({ connectionString: other.urlFor('second', host) });
        await client.connect();
        const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
        await client.end();
        expect(rows[0]!.db).toBe('second');
      }
      expect(startMs).toBeLessThan(10_000);
    } finally {
      await other.stop();
    }
    await other.stop();
    expect(existsSync(other.dir)).toBe(false);
    const client = new pg.Client({ connectionString: other.url, connectionTimeoutMillis: 2_000 });
    await expect(client.connect()).rejects.toThrow();
  });
});
