import type Database from 'better-sqlite3';
import { PreviewdError } from '../domain/errors.js';
import type { Fence, NodeRecord } from '../domain/node.js';
import { checkAcquire, checkLabels, checkNodeId, checkRenew, isoTime, leaseEnd } from './node-input.js';
import type { AcquireNodeInput, RenewNodeInput } from './store.js';

/** The SQLite engine's node table: leases, epochs and the fence check of every fenced write. */

interface NodeRow {
  id: string;
  epoch: number;
  api_url: string;
  edge_url: string;
  labels: string;
  capacity: string;
  usage: string;
  status: string;
  started_at: string;
  heartbeat_at: string;
  lease_until: string;
}

function toNode(r: NodeRow): NodeRecord {
  return {
    id: r.id,
    epoch: r.epoch,
    apiUrl: r.api_url,
    edgeUrl: r.edge_url,
    labels: JSON.parse(r.labels),
    capacity: JSON.parse(r.capacity),
    usage: JSON.parse(r.usage),
    status: r.status === 'down' ? 'down' : 'up',
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    leaseUntil: r.lease_until,
  };
}

/** Throws `node_fenced` unless the node exists, is up and holds this epoch. Call inside the write's transaction. */
export function assertFence(db: Database.Database, fence: Fence | undefined): void {
  if (!fence) return;
  const row = db.prepare('SELECT epoch, status FROM nodes WHERE id = ?').get(fence.node) as
    | { epoch: number; status: string }
    | undefined;
  if (row?.status !== 'up' || row.epoch !== fence.epoch) {
    throw new PreviewdError(
      'node_fenced',
      `node ${String(fence.node).slice(0, 63)} epoch ${fence.epoch} may not write (${
        !row ? 'unknown node' : row.status !== 'up' ? 'node is down' : `current epoch is ${row.epoch}`
      })`,
    );
  }
}

export function getNode(db: Database.Database, id: string): NodeRecord | undefined {
  const row = db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
  return row && toNode(row);
}

export function listNodes(db: Database.Database): NodeRecord[] {
  return (db.prepare('SELECT * FROM nodes ORDER BY id').all() as NodeRow[]).map(toNode);
}

export function acquireNode(db: Database.Database, input: AcquireNodeInput): NodeRecord {
  checkAcquire(input);
  const now = isoTime(input.now);
  const until = leaseEnd(now, input.leaseMs);
  return db
    .transaction(() => {
      db.prepare(
        `INSERT INTO nodes (id, epoch, api_url, edge_url, labels, capacity, usage, status, started_at, heartbeat_at, lease_until)
         VALUES (?, 1, ?, ?, ?, ?, ?, 'up', ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET epoch = nodes.epoch + 1, api_url = excluded.api_url,
           edge_url = excluded.edge_url, labels = excluded.labels, capacity = excluded.capacity,
           usage = excluded.usage, status = 'up', started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until`,
      ).run(
        input.id,
        input.apiUrl,
        input.edgeUrl,
        JSON.stringify(input.labels),
        JSON.stringify({ memoryMb: input.capacity.memoryMb, maxRunning: input.capacity.maxRunning }),
        JSON.stringify({ memoryMb: input.usage.memoryMb, running: input.usage.running }),
        now,
        now,
        until,
      );
      return getNode(db, input.id)!;
    })
    .immediate();
}

export function renewNode(
  db: Database.Database,
  fence: Fence,
  input: RenewNodeInput,
): NodeRecord | undefined {
  checkRenew(input);
  const now = isoTime(input.now);
  const until = leaseEnd(now, input.leaseMs);
  return db
    .transaction(() => {
      const changed = db
        .prepare(
          `UPDATE nodes SET usage = ?, labels = coalesce(?, labels), heartbeat_at = ?, lease_until = ?
           WHERE id = ? AND epoch = ? AND status = 'up'`,
        )
        .run(
          JSON.stringify({ memoryMb: input.usage.memoryMb, running: input.usage.running }),
          input.labels ? JSON.stringify(input.labels) : null,
          now,
          until,
          fence.node,
          fence.epoch,
        ).changes;
      return changed === 1 ? getNode(db, fence.node) : undefined;
    })
    .immediate();
}

export function fenceNode(db: Database.Database, id: string, epoch: number, now: string): boolean {
  const at = isoTime(now);
  // One statement: the compare and the set are atomic, so exactly one caller sees a change.
  return (
    db
      .prepare(
        `UPDATE nodes SET status = 'down', epoch = epoch + 1
         WHERE id = ? AND epoch = ? AND status = 'up' AND lease_until < ?`,
      )
      .run(id, epoch, at).changes === 1
  );
}

export function setNodeLabels(db: Database.Database, id: string, labels: Record<string, string>): void {
  checkNodeId(id);
  checkLabels(labels);
  db.prepare('UPDATE nodes SET labels = ? WHERE id = ?').run(JSON.stringify(labels), id);
}
