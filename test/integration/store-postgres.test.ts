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
import { sandboxRecord } from '../contract/store-fixtures.js';
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

  it('rows written before migration 2 read as node local', async () => {
    const url = await server.createDatabase(`upgrade_${++n}`);
    const old = sandboxRecord();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)',
      );
      await client.query(pgMigrations[0]!.sql);
      await client.query("INSERT INTO schema_migrations VALUES (1, 'v1', now())");
      await client.query(
        'INSERT INTO sandboxes (id, state, owner, created_at, updated_at, doc) VALUES ($1, $2, NULL, $3, $3, $4::jsonb)',
        [old.id, old.state, old.createdAt, JSON.stringify(old)],
      );
    } finally {
      await client.end();
    }
    const store = new PostgresStore({ url });
    try {
      await store.migrate();
      expect(await store.getSandbox(old.id)).toEqual({ ...old, node: 'local' });
      expect((await store.listSandboxes({ node: 'local' })).map((r) => r.id)).toEqual([old.id]);
    } finally {
      await store.close();
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

/** Resolves once a session of this database waits on a lock (polled from its own connection). */
async function someoneWaitsOnALock(url: string): Promise<void> {
  const watcher = new pg.Client({ connectionString: url });
  await watcher.connect();
  try {
    for (let i = 0; i < 500; i++) {
      const { rows } = await watcher.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (rows.length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('no session waited on a lock within 5 s');
  } finally {
    await watcher.end();
  }
}

describe('PostgreSQL store: what the engine itself must hold', () => {
  it('an event append waits for the writer holding the counter, so ids become visible in order', async () => {
    const url = await server.createDatabase(`order_${++n}`);
    const store = new PostgresStore({ url });
    const writer = new pg.Client({ connectionString: url });
    try {
      await store.migrate();
      await writer.connect();
      // A writer in flight: it took id 1 and has not committed.
      await writer.query('BEGIN');
      const { rows } = await writer.query<{ last: string }>(
        'UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last',
      );
      expect(Number(rows[0]!.last)).toBe(1);
      let settled = false;
      const pending = store
        .appendEvent({ type: 'sandbox.deleted', sandboxId: newSandboxId(), data: {} })
        .finally(() => {
          settled = true;
        });
      await someoneWaitsOnALock(url);
      expect(settled).toBe(false);
      expect(await store.listEvents({})).toEqual([]);
      await writer.query('ROLLBACK');
      // Rolled back: its id was never used, and the append takes it.
      expect((await pending).id).toBe(1);
      expect(await store.lastEventId()).toBe(1);
    } finally {
      await writer.end().catch(() => undefined);
      await store.close();
    }
  });

  it('a fenced write waits for a fence in flight and is then refused (the node row is read FOR SHARE)', async () => {
    const url = await server.createDatabase(`fence_${++n}`);
    const store = new PostgresStore({ url });
    const fencer = new pg.Client({ connectionString: url });
    try {
      await store.migrate();
      const node = await store.acquireNode({
        id: 'n-1',
        apiUrl: 'http://198.51.100.11:7070',
        edgeUrl: 'http://198.51.100.11:8081',
        labels: {},
        capacity: { memoryMb: 1024, maxRunning: 4 },
        usage: { memoryMb: 0, running: 0 },
        leaseMs: 1_000,
        now: '2030-01-01T00:00:00.000Z',
      });
      const fence = { node: 'n-1', epoch: node.epoch };
      const rec = sandboxRecord({ node: 'n-1' });
      await store.insertSandbox(rec, { fence });
      await fencer.connect();
      await fencer.query('BEGIN');
      await fencer.query("UPDATE nodes SET status = 'down', epoch = epoch + 1 WHERE id = 'n-1'");
      const write = store.updateSandbox(rec.id, { state: 'starting' }, ['creating'], {
        fence,
        event: { type: 'sandbox.state', sandboxId: rec.id, data: { from: 'creating', to: 'starting' } },
      });
      const outcome = write.then(
        () => 'written',
        (err: { code?: string }) => err.code,
      );
      await someoneWaitsOnALock(url);
      await fencer.query('COMMIT');
      expect(await outcome).toBe('node_fenced');
      expect((await store.getSandbox(rec.id))?.state).toBe('creating');
      expect(await store.lastEventId()).toBe(0);
    } finally {
      await fencer.end().catch(() => undefined);
      await store.close();
    }
  });

  it('a NUL character is a stable invalid_request (JSONB cannot hold it); an escaped backslash is kept', async () => {
    const url = await server.createDatabase(`nul_${++n}`);
    const store = new PostgresStore({ url });
    try {
      await store.migrate();
      const bad = sandboxRecord({ metadata: { note: 'a\u0000b' } });
      await expect(store.insertSandbox(bad)).rejects.toMatchObject({ code: 'invalid_request' });
      const rec = sandboxRecord({ node: 'local', metadata: { note: 'literally \\u0000' } });
      await store.insertSandbox(rec);
      expect(await store.getSandbox(rec.id)).toEqual(rec);
      await expect(store.updateSandbox(rec.id, { metadata: { x: '\u0000' } })).rejects.toMatchObject({
        code: 'invalid_request',
      });
      await expect(
        store.appendEvent({
          type: 'files.changed',
          sandboxId: rec.id,
          data: { paths: ['\u0000'], truncated: false },
        }),
      ).rejects.toMatchObject({ code: 'invalid_request' });
      expect(await store.getSandbox(rec.id)).toEqual(rec);
    } finally {
      await store.close();
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
