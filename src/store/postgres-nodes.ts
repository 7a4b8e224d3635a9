import type pg from 'pg';
import { PreviewdError } from '../domain/errors.js';
import type { Fence, NodeRecord } from '../domain/node.js';
import { checkAcquire, checkLabels, checkNodeId, checkRenew, isoTime, leaseEnd } from './node-input.js';
import { jsonText, type Queryable } from './postgres-writes.js';
import type { AcquireNodeInput, RenewNodeInput } from './store.js';

/** The PostgreSQL engine's node table: leases, epochs and the fence check of every fenced write. */

interface NodeRow {
  id: string;
  epoch: string;
  api_url: string;
  edge_url: string;
  labels: Record<string, string>;
  capacity: NodeRecord['capacity'];
  usage: NodeRecord['usage'];
  status: string;
  started_at: Date;
  heartbeat_at: Date;
  lease_until: Date;
}

function toNode(r: NodeRow): NodeRecord {
  return {
    id: r.id,
    epoch: Number(r.epoch),
    apiUrl: r.api_url,
    edgeUrl: r.edge_url,
    labels: r.labels,
    capacity: r.capacity,
    usage: r.usage,
    status: r.status === 'down' ? 'down' : 'up',
    startedAt: r.started_at.toISOString(),
    heartbeatAt: r.heartbeat_at.toISOString(),
    leaseUntil: r.lease_until.toISOString(),
  };
}

const isEpoch = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * Throws `node_fenced` unless the node exists, is up and holds this epoch. Call inside the
 * write's transaction: the row is read FOR SHARE, so a `fenceNode` (which updates it) waits
 * until this write has committed or rolled back.
 */
export async function assertFence(c: pg.PoolClient, fence: Fence | undefined): Promise<void> {
  if (!fence) return;
  const node = String(fence.node).slice(0, 63); // for messages only
  if (typeof fence.node !== 'string' || !isEpoch(fence.epoch)) {
    throw new PreviewdError('node_fenced', `node ${node}: not a valid fence`);
  }
  const { rows } = await c.query<{ epoch: string; status: string }>(
    'SELECT epoch, status FROM nodes WHERE id = $1 FOR SHARE',
    [fence.node],
  );
  const row = rows[0];
  if (row?.status !== 'up' || Number(row.epoch) !== fence.epoch) {
    throw new PreviewdError(
      'node_fenced',
      `node ${node} epoch ${fence.epoch} may not write (${
        !row ? 'unknown node' : row.status !== 'up' ? 'node is down' : `current epoch is ${row.epoch}`
      })`,
    );
  }
}

export async function getNode(q: Queryable, id: string): Promise<NodeRecord | undefined> {
  const { rows } = await q.query<NodeRow>('SELECT * FROM nodes WHERE id = $1', [id]);
  return rows[0] && toNode(rows[0]);
}

export async function listNodes(q: Queryable): Promise<NodeRecord[]> {
  const { rows } = await q.query<NodeRow>('SELECT * FROM nodes ORDER BY id');
  return rows.map(toNode);
}

export async function acquireNode(q: Queryable, input: AcquireNodeInput): Promise<NodeRecord> {
  checkAcquire(input);
  const now = isoTime(input.now);
  const until = leaseEnd(now, input.leaseMs);
  // One upsert: the row lock orders two acquires of one id, each bumps the epoch once.
  const { rows } = await q.query<NodeRow>(
    `INSERT INTO nodes (id, epoch, api_url, edge_url, labels, capacity, usage, status, started_at, heartbeat_at, lease_until)
     VALUES ($1, 1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, 'up', $7, $7, $8)
     ON CONFLICT (id) DO UPDATE SET epoch = nodes.epoch + 1, api_url = excluded.api_url,
       edge_url = excluded.edge_url, labels = excluded.labels, capacity = excluded.capacity,
       usage = excluded.usage, status = 'up', started_at = excluded.started_at,
       heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until
     RETURNING *`,
    [
      input.id,
      input.apiUrl,
      input.edgeUrl,
      jsonText(input.labels),
      jsonText({ memoryMb: input.capacity.memoryMb, maxRunning: input.capacity.maxRunning }),
      jsonText({ memoryMb: input.usage.memoryMb, running: input.usage.running }),
      now,
      until,
    ],
  );
  return toNode(rows[0]!);
}

export async function renewNode(
  q: Queryable,
  fence: Fence,
  input: RenewNodeInput,
): Promise<NodeRecord | undefined> {
  checkRenew(input);
  const now = isoTime(input.now);
  const until = leaseEnd(now, input.leaseMs);
  if (!isEpoch(fence.epoch) || typeof fence.node !== 'string') return undefined;
  const { rows } = await q.query<NodeRow>(
    `UPDATE nodes SET usage = $1::jsonb, labels = coalesce($2::jsonb, labels), heartbeat_at = $3, lease_until = $4
     WHERE id = $5 AND epoch = $6 AND status = 'up'
     RETURNING *`,
    [
      jsonText({ memoryMb: input.usage.memoryMb, running: input.usage.running }),
      input.labels ? jsonText(input.labels) : null,
      now,
      until,
      fence.node,
      fence.epoch,
    ],
  );
  return rows[0] && toNode(rows[0]);
}

export async function fenceNode(q: Queryable, id: string, epoch: number, now: string): Promise<boolean> {
  const at = isoTime(now);
  if (!isEpoch(epoch) || typeof id !== 'string') return false;
  // One conditional statement: a second caller waits on the row, then finds the epoch moved.
  const result = await q.query(
    `UPDATE nodes SET status = 'down', epoch = epoch + 1
     WHERE id = $1 AND epoch = $2 AND status = 'up' AND lease_until < $3`,
    [id, epoch, at],
  );
  return result.rowCount === 1;
}

export async function setNodeLabels(q: Queryable, id: string, labels: Record<string, string>): Promise<void> {
  checkNodeId(id);
  checkLabels(labels);
  await q.query('UPDATE nodes SET labels = $1::jsonb WHERE id = $2', [jsonText(labels), id]);
}
