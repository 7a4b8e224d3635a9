import type Database from 'better-sqlite3';
import { snapshotQuotaError as quotaError, type SnapshotRecord } from '../domain/snapshot-schemas.js';
import type { SnapshotFilter } from './store.js';

/** The SQLite engine's snapshot rows (docs/snapshots.md); the record is kept whole in `doc`. */

const immediate = <T>(db: Database.Database, fn: () => T): T => db.transaction(fn).immediate();

export function insertSnapshot(db: Database.Database, record: SnapshotRecord, maxPerOwner: number): void {
  immediate(db, () => {
    if (record.owner !== undefined) {
      const { n } = db.prepare('SELECT count(*) AS n FROM snapshots WHERE owner = ?').get(record.owner) as {
        n: number;
      };
      if (n >= maxPerOwner) throw quotaError(record.owner, n, maxPerOwner);
    }
    db.prepare(
      'INSERT INTO snapshots (id, owner, node, sandbox_id, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(
      record.id,
      record.owner ?? null,
      record.node,
      record.sandboxId,
      record.createdAt,
      JSON.stringify(record),
    );
  });
}

export function getSnapshot(db: Database.Database, id: string): SnapshotRecord | undefined {
  const row = db.prepare('SELECT doc FROM snapshots WHERE id = ?').get(id) as { doc: string } | undefined;
  return row ? (JSON.parse(row.doc) as SnapshotRecord) : undefined;
}

export function listSnapshots(db: Database.Database, filter: SnapshotFilter = {}): SnapshotRecord[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.owner !== undefined) {
    where.push('owner = ?');
    params.push(filter.owner);
  }
  if (filter.node !== undefined) {
    where.push('node = ?');
    params.push(filter.node);
  }
  if (filter.sandboxId !== undefined) {
    where.push('sandbox_id = ?');
    params.push(filter.sandboxId);
  }
  if (filter.cursor !== undefined) {
    where.push('id < ?');
    params.push(filter.cursor);
  }
  const sql = `SELECT doc FROM snapshots ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC${
    filter.limit !== undefined ? ' LIMIT ?' : ''
  }`;
  if (filter.limit !== undefined) params.push(filter.limit);
  return (db.prepare(sql).all(...params) as { doc: string }[]).map(
    (r) => JSON.parse(r.doc) as SnapshotRecord,
  );
}

export function deleteSnapshot(db: Database.Database, id: string): boolean {
  return db.prepare('DELETE FROM snapshots WHERE id = ?').run(id).changes > 0;
}
