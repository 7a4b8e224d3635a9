import pg from 'pg';
import type { ApiKeyRecord, KeyRole, SessionRecord } from '../domain/credentials.js';
import { PreviewdError } from '../domain/errors.js';
import type { NewEvent, PreviewdEvent } from '../domain/events.js';
import { type Fence, LOCAL_NODE, type NodeRecord } from '../domain/node.js';
import { nowIso, type SandboxPatch, type SandboxRecord } from '../domain/sandbox.js';
import type { SnapshotRecord } from '../domain/snapshot-schemas.js';
import type { SandboxState } from '../domain/state-machine.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  NewDelivery,
  WebhookDelivery,
  WebhookRecord,
} from '../domain/webhook.js';
import { pgMigrations } from './postgres-migrations.js';
import * as nodes from './postgres-nodes.js';
import * as snapshots from './postgres-snapshots.js';
import * as webhooks from './postgres-webhooks.js';
import {
  EVENT_COLUMNS,
  type EventRow,
  FROM_ROW,
  insertEvent,
  jsonText,
  type Queryable,
  toEvent,
  UPDATE_SANDBOX,
  updateParams,
} from './postgres-writes.js';
import type {
  AcquireNodeInput,
  EventFilter,
  RenewNodeInput,
  SandboxFilter,
  SnapshotFilter,
  Store,
  WriteOptions,
} from './store.js';

/** Taken (transaction-scoped) while migrations run: one node migrates, the others wait. */
const MIGRATION_LOCK = 0x70726576; // 'prev'

interface ApiKeyRow {
  id: string;
  hash: string;
  prefix: string;
  role: string;
  owner: string | null;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
}
interface SessionRow {
  hash: string;
  key_id: string;
  created_at: Date;
  expires_at: Date;
}

function toApiKey(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id,
    hash: r.hash,
    prefix: r.prefix,
    role: r.role as KeyRole,
    ...(r.owner !== null ? { owner: r.owner } : {}),
    ...(r.name !== null ? { name: r.name } : {}),
    createdAt: r.created_at.toISOString(),
    ...(r.revoked_at !== null ? { revokedAt: r.revoked_at.toISOString() } : {}),
  };
}

export interface PostgresStoreOptions {
  /** postgres://user:pass@host:port/db */
  url: string;
  /** Pool size (default 10). */
  max?: number;
  /** An idle connection failed (the server restarted, say); the pool drops it and reconnects. */
  onError?: (err: Error) => void;
}

/** The shared engine: several previewd nodes over one PostgreSQL (node-postgres pool). */
export class PostgresStore implements Store {
  readonly engine = 'postgres';
  protected readonly pool: pg.Pool;

  constructor(opts: PostgresStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      application_name: 'previewd',
    });
    this.pool.on('error', (err) => opts.onError?.(err));
  }

  /** Runs `fn` in one transaction on one connection; rolled back when it throws. */
  protected async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // A connection that cannot even roll back is dropped from the pool, not handed out again.
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)',
      );
      const { rows } = await c.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const m of pgMigrations) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          nowIso(),
        ]);
      }
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async insertSandbox(record: SandboxRecord, opts: WriteOptions = {}): Promise<void> {
    const stored: SandboxRecord = { ...record, node: record.node ?? LOCAL_NODE };
    await this.write(opts, async (q) => {
      await q.query(
        'INSERT INTO sandboxes (id, state, owner, node, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)',
        [
          stored.id,
          stored.state,
          stored.owner ?? null,
          stored.node,
          stored.createdAt,
          stored.updatedAt,
          jsonText(stored),
        ],
      );
      if (opts.event) await insertEvent(q, opts.event, stored.owner, opts.fence?.node ?? stored.node);
    });
  }

  async getSandbox(id: string, opts: { includeDeleted?: boolean } = {}): Promise<SandboxRecord | undefined> {
    const { rows } = await this.pool.query<{ doc: SandboxRecord }>(
      'SELECT doc FROM sandboxes WHERE id = $1',
      [id],
    );
    const record = rows[0]?.doc;
    if (!record || (record.state === 'deleted' && !opts.includeDeleted)) return undefined;
    return record;
  }

  async listSandboxes(filter: SandboxFilter = {}): Promise<SandboxRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    const states = filter.state ? [filter.state] : filter.states;
    if (states) where.push(`state = ANY(${param(states)}::text[])`);
    else if (!filter.includeDeleted) where.push("state <> 'deleted'");
    if (filter.owner !== undefined) where.push(`owner = ${param(filter.owner)}`);
    if (filter.node !== undefined) where.push(`node = ${param(filter.node)}`);
    if (filter.labels && Object.keys(filter.labels).length > 0) {
      where.push(`doc -> 'labels' @> ${param(jsonText(filter.labels))}::jsonb`);
    }
    if (filter.cursor) where.push(`id < ${param(filter.cursor)}`);
    let sql = 'SELECT doc FROM sandboxes';
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY id DESC';
    if (filter.limit) sql += ` LIMIT ${param(filter.limit)}`;
    const { rows } = await this.pool.query<{ doc: SandboxRecord }>(sql, params);
    return rows.map((r) => r.doc);
  }

  async updateSandbox(
    id: string,
    patch: SandboxPatch,
    expectState?: readonly SandboxState[],
    opts: WriteOptions = {},
  ): Promise<SandboxRecord | undefined> {
    return this.write(opts, async (q) => {
      const { rows } = await q.query<{ doc: SandboxRecord }>(
        `${UPDATE_SANDBOX} RETURNING doc`,
        updateParams(id, patch, expectState),
      );
      const next = rows[0]?.doc;
      // A missed compare-and-set (or no row) writes no event either.
      if (next && opts.event) await insertEvent(q, opts.event, next.owner, opts.fence?.node ?? next.node);
      return next;
    });
  }

  async purgeSandbox(id: string, opts: WriteOptions = {}): Promise<void> {
    await this.tx(async (c) => {
      await nodes.assertFence(c, opts.fence);
      const { rows } = await c.query<{ owner: string | null; node: string }>(
        'DELETE FROM sandboxes WHERE id = $1 RETURNING owner, node',
        [id],
      );
      await c.query('DELETE FROM sandbox_uids WHERE sandbox_id = $1', [id]);
      if (opts.event)
        await insertEvent(c, opts.event, rows[0]?.owner ?? undefined, opts.fence?.node ?? rows[0]?.node);
    });
  }

  async allocateUid(sandboxId: string, range: { start: number; size: number }): Promise<number> {
    return this.tx(async (c) => {
      // The cursor row lock makes concurrent allocations (from any node) take turns.
      const cursor = await c.query<{ next_offset: number }>(
        'SELECT next_offset FROM uid_cursor WHERE id = 1 FOR UPDATE',
      );
      const held = await c.query<{ uid: number }>('SELECT uid FROM sandbox_uids WHERE sandbox_id = $1', [
        sandboxId,
      ]);
      if (held.rows[0]) return held.rows[0].uid;
      const taken = await c.query<{ uid: number }>(
        'SELECT uid FROM sandbox_uids WHERE uid >= $1 AND uid < $2',
        [range.start, range.start + range.size],
      );
      const takenSet = new Set(taken.rows.map((r) => r.uid));
      const from = (cursor.rows[0]?.next_offset ?? 0) % range.size;
      for (let i = 0; i < range.size; i++) {
        const offset = (from + i) % range.size;
        const uid = range.start + offset;
        if (takenSet.has(uid)) continue;
        await c.query('INSERT INTO sandbox_uids (uid, sandbox_id, allocated_at) VALUES ($1, $2, $3)', [
          uid,
          sandboxId,
          nowIso(),
        ]);
        await c.query('UPDATE uid_cursor SET next_offset = $1 WHERE id = 1', [(offset + 1) % range.size]);
        return uid;
      }
      throw new PreviewdError(
        'uid_range_exhausted',
        `all ${range.size} uids from ${range.start} are held by sandboxes`,
      );
    });
  }

  async releaseUid(sandboxId: string): Promise<void> {
    await this.pool.query('DELETE FROM sandbox_uids WHERE sandbox_id = $1', [sandboxId]);
  }

  async appendEvent(event: NewEvent, opts: { fence?: Fence } = {}): Promise<PreviewdEvent> {
    return this.write(opts, (q) => insertEvent(q, event, FROM_ROW, opts.fence?.node));
  }

  async lastEventId(): Promise<number> {
    const { rows } = await this.pool.query<{ id: string | null }>('SELECT max(id) AS id FROM events');
    return Number(rows[0]?.id ?? 0);
  }

  async listEvents(opts: EventFilter): Promise<PreviewdEvent[]> {
    const params: unknown[] = [opts.afterId ?? 0];
    let sql = `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1`;
    if (opts.sandboxId) {
      params.push(opts.sandboxId);
      sql += ` AND sandbox_id = $${params.length}`;
    }
    if (opts.owner !== undefined) {
      params.push(opts.owner);
      sql += ` AND owner = $${params.length}`;
    }
    params.push(opts.limit ?? 1000);
    sql += ` ORDER BY id ASC LIMIT $${params.length}`;
    const { rows } = await this.pool.query<EventRow>(sql, params);
    return rows.map(toEvent);
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO api_keys (id, hash, prefix, role, owner, name, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [k.id, k.hash, k.prefix, k.role, k.owner ?? null, k.name ?? null, k.createdAt, k.revokedAt ?? null],
    );
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.pool.query<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
    return rows[0] && toApiKey(rows[0]);
  }

  async getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.pool.query<ApiKeyRow>('SELECT * FROM api_keys WHERE hash = $1', [hash]);
    return rows[0] && toApiKey(rows[0]);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const { rows } = await this.pool.query<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id');
    return rows.map(toApiKey);
  }

  async revokeApiKey(id: string, at: string): Promise<ApiKeyRecord | undefined> {
    return this.tx(async (c) => {
      const { rows } = await c.query<ApiKeyRow>(
        'UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING *',
        [at, id],
      );
      await c.query('DELETE FROM sessions WHERE key_id = $1', [id]);
      return rows[0] && toApiKey(rows[0]);
    });
  }

  async insertSession(r: SessionRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO sessions (hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
      [r.hash, r.keyId, r.createdAt, r.expiresAt],
    );
  }

  async getSession(hash: string): Promise<SessionRecord | undefined> {
    const { rows } = await this.pool.query<SessionRow>('SELECT * FROM sessions WHERE hash = $1', [hash]);
    const row = rows[0];
    return (
      row && {
        hash: row.hash,
        keyId: row.key_id,
        createdAt: row.created_at.toISOString(),
        expiresAt: row.expires_at.toISOString(),
      }
    );
  }

  async deleteSession(hash: string): Promise<void> {
    await this.pool.query('DELETE FROM sessions WHERE hash = $1', [hash]);
  }

  async deleteExpiredSessions(now: string): Promise<number> {
    const result = await this.pool.query('DELETE FROM sessions WHERE expires_at <= $1', [now]);
    return result.rowCount ?? 0;
  }

  async acquireNode(input: AcquireNodeInput): Promise<NodeRecord> {
    return nodes.acquireNode(this.pool, input);
  }

  async renewNode(fence: Fence, input: RenewNodeInput): Promise<NodeRecord | undefined> {
    return nodes.renewNode(this.pool, fence, input);
  }

  async getNode(id: string): Promise<NodeRecord | undefined> {
    return nodes.getNode(this.pool, id);
  }

  async listNodes(): Promise<NodeRecord[]> {
    return nodes.listNodes(this.pool);
  }

  async fenceNode(id: string, epoch: number, now: string): Promise<boolean> {
    return nodes.fenceNode(this.pool, id, epoch, now);
  }

  async setNodeLabels(id: string, labels: Record<string, string>): Promise<void> {
    await nodes.setNodeLabels(this.pool, id, labels);
  }

  async insertWebhook(
    record: Omit<WebhookRecord, 'afterEventId'>,
    maxPerScope: number,
  ): Promise<WebhookRecord> {
    return webhooks.insertWebhook((fn) => this.tx(fn), record, maxPerScope);
  }

  async getWebhook(id: string): Promise<WebhookRecord | undefined> {
    return webhooks.getWebhook(this.pool, id);
  }

  async listWebhooks(scope: string): Promise<WebhookRecord[]> {
    return webhooks.listWebhooks(this.pool, scope);
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return webhooks.deleteWebhook(this.pool, id);
  }

  async dispatchWebhookEvents(input: {
    limit: number;
    now: string;
    giveUpAt: string;
    newId: () => string;
  }): Promise<{ events: number; deliveries: number }> {
    return webhooks.dispatchWebhookEvents((fn) => this.tx(fn), input);
  }

  async webhookCursor(): Promise<number> {
    return webhooks.webhookCursor(this.pool);
  }

  async insertWebhookDelivery(delivery: NewDelivery): Promise<WebhookDelivery> {
    return webhooks.insertWebhookDelivery(this.pool, delivery);
  }

  async getWebhookDelivery(webhookId: string, id: string): Promise<WebhookDelivery | undefined> {
    return webhooks.getWebhookDelivery(this.pool, webhookId, id);
  }

  async listWebhookDeliveries(
    webhookId: string,
    opts: { limit: number; cursor?: string; status?: WebhookDelivery['status'] },
  ): Promise<WebhookDelivery[]> {
    return webhooks.listWebhookDeliveries(this.pool, webhookId, opts);
  }

  async claimWebhookDeliveries(input: {
    now: string;
    leaseMs: number;
    limit: number;
    holder: string;
  }): Promise<ClaimedDelivery[]> {
    return webhooks.claimWebhookDeliveries((fn) => this.tx(fn), input);
  }

  async completeWebhookAttempt(outcome: AttemptOutcome): Promise<boolean> {
    return webhooks.completeWebhookAttempt(this.pool, outcome);
  }

  async redeliverWebhookDelivery(
    webhookId: string,
    id: string,
    now: string,
    giveUpAt: string,
  ): Promise<WebhookDelivery | undefined> {
    return webhooks.redeliverWebhookDelivery(this.pool, webhookId, id, now, giveUpAt);
  }

  async insertSnapshot(record: SnapshotRecord, maxPerOwner: number): Promise<void> {
    return snapshots.insertSnapshot((fn) => this.tx(fn), record, maxPerOwner);
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    return snapshots.getSnapshot(this.pool, id);
  }

  async listSnapshots(filter?: SnapshotFilter): Promise<SnapshotRecord[]> {
    return snapshots.listSnapshots(this.pool, filter);
  }

  async deleteSnapshot(id: string): Promise<boolean> {
    return snapshots.deleteSnapshot(this.pool, id);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /**
   * A write that may carry a fence and an event: one transaction with the fence checked first;
   * without either, the single statement runs on the pool (its own transaction).
   */
  private async write<T>(opts: WriteOptions, fn: (q: Queryable) => Promise<T>): Promise<T> {
    if (!opts.fence && !opts.event) return fn(this.pool);
    return this.tx(async (c) => {
      await nodes.assertFence(c, opts.fence);
      return fn(c);
    });
  }
}
