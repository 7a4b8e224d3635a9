import type pg from 'pg';
import { snapshotQuotaError as quotaError, type SnapshotRecord } from '../domain/snapshot-schemas.js';
import { jsonText, type Queryable } from './postgres-writes.js';
import type { SnapshotFilter } from './store.js';

/**
 * The PostgreSQL engine's snapshot rows (docs/snapshots.md). Per owner, inserts take turns under
 * an advisory lock, so the quota's count and the insert cannot interleave across nodes.
 */

type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

export async function insertSnapshot(tx: Tx, record: SnapshotRecord, maxPerOwner: number): Promise<void> {
  await tx(async (c) => {
    if (record.owner !== undefined) {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`snapshots:${record.owner}`]);
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM snapshots WHERE owner = $1', [
        record.owner,
      ]);
      const n = Number(rows[0]?.n ?? 0);
      if (n >= maxPerOwner) throw quotaError(record.owner, n, maxPerOwner);
    }
    await c.query(
      'INSERT INTO snapshots (id, owner, node, sandbox_id, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6::jsonb)',
      [record.id, record.owner ?? null, record.node, record.sandboxId, record.createdAt, jsonText(record)],
    );
  });
}

export async function getSnapshot(q: Queryable, id: string): Promise<SnapshotRecord | undefined> {
  const { rows } = await q.query<{ doc: SnapshotRecord }>('SELECT doc FROM snapshots WHERE id = $1', [id]);
  return rows[0]?.doc;
}

export async function listSnapshots(q: Queryable, filter: SnapshotFilter = {}): Promise<SnapshotRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.owner !== undefined) add('owner = ?', filter.owner);
  if (filter.node !== undefined) add('node = ?', filter.node);
  if (filter.sandboxId !== undefined) add('sandbox_id = ?', filter.sandboxId);
  if (filter.cursor !== undefined) add('id < ?', filter.cursor);
  let sql = `SELECT doc FROM snapshots ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC`;
  if (filter.limit !== undefined) {
    params.push(filter.limit);
    sql += ` LIMIT $${params.length}`;
  }
  const { rows } = await q.query<{ doc: SnapshotRecord }>(sql, params);
  return rows.map((r) => r.doc);
}

export async function deleteSnapshot(q: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await q.query('DELETE FROM snapshots WHERE id = $1', [id]);
  return (rowCount ?? 0) > 0;
}
