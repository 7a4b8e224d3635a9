import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ApiKeyRecord, SessionRecord } from '../domain/credentials.js';
import { PreviewdError } from '../domain/errors.js';
import type { EventType, NewEvent, PreviewdEvent } from '../domain/events.js';
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
import { migrations } from './migrations.js';
import * as credentials from './sqlite-credentials.js';
import * as nodes from './sqlite-nodes.js';
import * as snapshots from './sqlite-snapshots.js';
import * as webhooks from './sqlite-webhooks.js';
import type {
  AcquireNodeInput,
  EventFilter,
  RenewNodeInput,
  SandboxFilter,
  SnapshotFilter,
  Store,
  WriteOptions,
} from './store.js';

interface SandboxRow {
  doc: string;
}
interface EventRow {
  id: number;
  sandbox_id: string;
  owner: string | null;
  node: string | null;
  type: string;
  at: string;
  data: string;
}
function toEvent(r: EventRow): PreviewdEvent {
  return {
    id: r.id,
    type: r.type as EventType,
    sandboxId: r.sandbox_id,
    ...(r.owner !== null ? { owner: r.owner } : {}),
    ...(r.node !== null ? { node: r.node } : {}),
    at: r.at,
    data: JSON.parse(r.data),
  };
}

const EVENT_COLUMNS = 'id, sandbox_id, owner, node, type, at, data';

/**
 * The embedded default engine: one SQLite file in WAL mode. Every write transaction is
 * `BEGIN IMMEDIATE` (it takes the write lock first), so two connections on one file serialize
 * their compare-and-sets instead of failing on a stale read snapshot, and event ids commit in
 * order (see the rule in store.ts).
 */
export class SqliteStore implements Store {
  readonly engine = 'sqlite';
  private readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
  }

  async migrate(): Promise<void> {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sqlite);
        this.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, nowIso());
      })();
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async insertSandbox(record: SandboxRecord, opts: WriteOptions = {}): Promise<void> {
    const stored: SandboxRecord = { ...record, node: record.node ?? LOCAL_NODE };
    this.write(() => {
      nodes.assertFence(this.db, opts.fence);
      this.db
        .prepare(
          'INSERT INTO sandboxes (id, state, owner, node, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          stored.id,
          stored.state,
          stored.owner ?? null,
          stored.node,
          stored.createdAt,
          stored.updatedAt,
          JSON.stringify(stored),
        );
      if (opts.event) this.insertEvent(opts.event, stored.owner, opts.fence?.node ?? stored.node);
    });
  }

  async getSandbox(id: string, opts: { includeDeleted?: boolean } = {}): Promise<SandboxRecord | undefined> {
    const row = this.db.prepare('SELECT doc FROM sandboxes WHERE id = ?').get(id) as SandboxRow | undefined;
    if (!row) return undefined;
    const record = JSON.parse(row.doc) as SandboxRecord;
    if (record.state === 'deleted' && !opts.includeDeleted) return undefined;
    return record;
  }

  async listSandboxes(filter: SandboxFilter = {}): Promise<SandboxRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const states = filter.state ? [filter.state] : filter.states;
    if (states) {
      where.push(`state IN (${states.map(() => '?').join(',')})`);
      params.push(...states);
    } else if (!filter.includeDeleted) {
      where.push("state <> 'deleted'");
    }
    if (filter.owner !== undefined) {
      where.push('owner = ?');
      params.push(filter.owner);
    }
    if (filter.node !== undefined) {
      where.push('node = ?');
      params.push(filter.node);
    }
    for (const [key, value] of Object.entries(filter.labels ?? {})) {
      where.push('json_extract(doc, ?) = ?');
      params.push(`$.labels."${key.replaceAll('"', '')}"`, value);
    }
    if (filter.cursor) {
      where.push('id < ?');
      params.push(filter.cursor);
    }
    let sql = 'SELECT doc FROM sandboxes';
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY id DESC';
    if (filter.limit) {
      sql += ' LIMIT ?';
      params.push(filter.limit);
    }
    return (this.db.prepare(sql).all(...params) as SandboxRow[]).map(
      (r) => JSON.parse(r.doc) as SandboxRecord,
    );
  }

  async updateSandbox(
    id: string,
    patch: SandboxPatch,
    expectState?: readonly SandboxState[],
    opts: WriteOptions = {},
  ): Promise<SandboxRecord | undefined> {
    return this.write(() => {
      nodes.assertFence(this.db, opts.fence);
      const row = this.db.prepare('SELECT doc FROM sandboxes WHERE id = ?').get(id) as SandboxRow | undefined;
      if (!row) return undefined;
      const current = JSON.parse(row.doc) as SandboxRecord;
      if (expectState && !expectState.includes(current.state)) return undefined;
      const next: SandboxRecord = {
        ...current,
        ...patch,
        id,
        createdAt: current.createdAt,
        updatedAt: nowIso(),
      };
      for (const key of Object.keys(next) as (keyof SandboxRecord)[]) {
        if (next[key] === undefined) delete next[key];
      }
      next.node ??= current.node ?? LOCAL_NODE;
      this.db
        .prepare('UPDATE sandboxes SET state = ?, owner = ?, node = ?, updated_at = ?, doc = ? WHERE id = ?')
        .run(next.state, next.owner ?? null, next.node, next.updatedAt, JSON.stringify(next), id);
      if (opts.event) this.insertEvent(opts.event, next.owner, opts.fence?.node ?? next.node);
      return next;
    });
  }

  async purgeSandbox(id: string, opts: WriteOptions = {}): Promise<void> {
    this.write(() => {
      nodes.assertFence(this.db, opts.fence);
      const row = this.db.prepare('SELECT owner, node FROM sandboxes WHERE id = ?').get(id) as
        | { owner: string | null; node: string }
        | undefined;
      this.db.prepare('DELETE FROM sandboxes WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM sandbox_uids WHERE sandbox_id = ?').run(id);
      if (opts.event) this.insertEvent(opts.event, row?.owner ?? undefined, opts.fence?.node ?? row?.node);
    });
  }

  async allocateUid(sandboxId: string, range: { start: number; size: number }): Promise<number> {
    // One transaction: two control planes on one file never hand out the same uid.
    return this.write(() => {
      const held = this.db.prepare('SELECT uid FROM sandbox_uids WHERE sandbox_id = ?').get(sandboxId) as
        | { uid: number }
        | undefined;
      if (held) return held.uid;
      const cursor = this.db.prepare('SELECT next_offset FROM uid_cursor WHERE id = 1').get() as
        | { next_offset: number }
        | undefined;
      const taken = new Set(
        (
          this.db
            .prepare('SELECT uid FROM sandbox_uids WHERE uid >= ? AND uid < ?')
            .all(range.start, range.start + range.size) as { uid: number }[]
        ).map((r) => r.uid),
      );
      const from = (cursor?.next_offset ?? 0) % range.size;
      for (let i = 0; i < range.size; i++) {
        const offset = (from + i) % range.size;
        const uid = range.start + offset;
        if (taken.has(uid)) continue;
        this.db
          .prepare('INSERT INTO sandbox_uids (uid, sandbox_id, allocated_at) VALUES (?, ?, ?)')
          .run(uid, sandboxId, nowIso());
        this.db
          .prepare(
            'INSERT INTO uid_cursor (id, next_offset) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET next_offset = excluded.next_offset',
          )
          .run((offset + 1) % range.size);
        return uid;
      }
      throw new PreviewdError(
        'uid_range_exhausted',
        `all ${range.size} uids from ${range.start} are held by sandboxes`,
      );
    });
  }

  async releaseUid(sandboxId: string): Promise<void> {
    this.db.prepare('DELETE FROM sandbox_uids WHERE sandbox_id = ?').run(sandboxId);
  }

  async appendEvent(event: NewEvent, opts: { fence?: Fence } = {}): Promise<PreviewdEvent> {
    return this.write(() => {
      nodes.assertFence(this.db, opts.fence);
      const row = this.db.prepare('SELECT owner, node FROM sandboxes WHERE id = ?').get(event.sandboxId) as
        | { owner: string | null; node: string }
        | undefined;
      return this.insertEvent(event, row?.owner ?? undefined, opts.fence?.node ?? row?.node);
    });
  }

  /** The outbox row of a write; runs inside that write's transaction. */
  private insertEvent(event: NewEvent, owner: string | undefined, node: string | undefined): PreviewdEvent {
    const row = this.db
      .prepare(
        `INSERT INTO events (sandbox_id, owner, node, type, at, data) VALUES (?, ?, ?, ?, ?, ?)
         RETURNING ${EVENT_COLUMNS}`,
      )
      .get(
        event.sandboxId,
        owner ?? null,
        node ?? null,
        event.type,
        nowIso(),
        JSON.stringify(event.data),
      ) as EventRow;
    return toEvent(row);
  }

  /** One write transaction, holding the write lock from its first statement. */
  private write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  async lastEventId(): Promise<number> {
    const row = this.db.prepare('SELECT max(id) AS id FROM events').get() as { id: number | null };
    return row.id ?? 0;
  }

  async listEvents(opts: EventFilter): Promise<PreviewdEvent[]> {
    const params: unknown[] = [opts.afterId ?? 0];
    let sql = `SELECT ${EVENT_COLUMNS} FROM events WHERE id > ?`;
    if (opts.sandboxId) {
      sql += ' AND sandbox_id = ?';
      params.push(opts.sandboxId);
    }
    if (opts.owner !== undefined) {
      sql += ' AND owner = ?';
      params.push(opts.owner);
    }
    sql += ' ORDER BY id ASC LIMIT ?';
    params.push(opts.limit ?? 1000);
    return (this.db.prepare(sql).all(...params) as EventRow[]).map(toEvent);
  }

  async insertApiKey(k: ApiKeyRecord): Promise<void> {
    credentials.insertApiKey(this.db, k);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return credentials.getApiKey(this.db, id);
  }

  async getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return credentials.getApiKeyByHash(this.db, hash);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return credentials.listApiKeys(this.db);
  }

  /** Marks the key revoked and removes its sessions, in one transaction. */
  async revokeApiKey(id: string, at: string): Promise<ApiKeyRecord | undefined> {
    return credentials.revokeApiKey(this.db, id, at);
  }

  async insertSession(r: SessionRecord): Promise<void> {
    credentials.insertSession(this.db, r);
  }

  async getSession(hash: string): Promise<SessionRecord | undefined> {
    return credentials.getSession(this.db, hash);
  }

  async deleteSession(hash: string): Promise<void> {
    credentials.deleteSession(this.db, hash);
  }

  async deleteExpiredSessions(now: string): Promise<number> {
    return credentials.deleteExpiredSessions(this.db, now);
  }

  async acquireNode(input: AcquireNodeInput): Promise<NodeRecord> {
    return nodes.acquireNode(this.db, input);
  }

  async renewNode(fence: Fence, input: RenewNodeInput): Promise<NodeRecord | undefined> {
    return nodes.renewNode(this.db, fence, input);
  }

  async getNode(id: string): Promise<NodeRecord | undefined> {
    return nodes.getNode(this.db, id);
  }

  async listNodes(): Promise<NodeRecord[]> {
    return nodes.listNodes(this.db);
  }

  async fenceNode(id: string, epoch: number, now: string): Promise<boolean> {
    return nodes.fenceNode(this.db, id, epoch, now);
  }

  async setNodeLabels(id: string, labels: Record<string, string>): Promise<void> {
    nodes.setNodeLabels(this.db, id, labels);
  }

  async insertWebhook(
    record: Omit<WebhookRecord, 'afterEventId'>,
    maxPerScope: number,
  ): Promise<WebhookRecord> {
    return webhooks.insertWebhook(this.db, record, maxPerScope);
  }

  async getWebhook(id: string): Promise<WebhookRecord | undefined> {
    return webhooks.getWebhook(this.db, id);
  }

  async listWebhooks(scope: string): Promise<WebhookRecord[]> {
    return webhooks.listWebhooks(this.db, scope);
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return webhooks.deleteWebhook(this.db, id);
  }

  async dispatchWebhookEvents(input: {
    limit: number;
    now: string;
    giveUpAt: string;
    newId: () => string;
  }): Promise<{ events: number; deliveries: number }> {
    return webhooks.dispatchWebhookEvents(this.db, input);
  }

  async webhookCursor(): Promise<number> {
    return webhooks.webhookCursor(this.db);
  }

  async insertWebhookDelivery(delivery: NewDelivery): Promise<WebhookDelivery> {
    return webhooks.insertWebhookDelivery(this.db, delivery);
  }

  async getWebhookDelivery(webhookId: string, id: string): Promise<WebhookDelivery | undefined> {
    return webhooks.getWebhookDelivery(this.db, webhookId, id);
  }

  async listWebhookDeliveries(
    webhookId: string,
    opts: { limit: number; cursor?: string; status?: WebhookDelivery['status'] },
  ): Promise<WebhookDelivery[]> {
    return webhooks.listWebhookDeliveries(this.db, webhookId, opts);
  }

  async claimWebhookDeliveries(input: {
    now: string;
    leaseMs: number;
    limit: number;
    holder: string;
  }): Promise<ClaimedDelivery[]> {
    return webhooks.claimWebhookDeliveries(this.db, input);
  }

  async completeWebhookAttempt(outcome: AttemptOutcome): Promise<boolean> {
    return webhooks.completeWebhookAttempt(this.db, outcome);
  }

  async redeliverWebhookDelivery(
    webhookId: string,
    id: string,
    now: string,
    giveUpAt: string,
  ): Promise<WebhookDelivery | undefined> {
    return webhooks.redeliverWebhookDelivery(this.db, webhookId, id, now, giveUpAt);
  }

  async insertSnapshot(record: SnapshotRecord, maxPerOwner: number): Promise<void> {
    return snapshots.insertSnapshot(this.db, record, maxPerOwner);
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    return snapshots.getSnapshot(this.db, id);
  }

  async listSnapshots(filter?: SnapshotFilter): Promise<SnapshotRecord[]> {
    return snapshots.listSnapshots(this.db, filter);
  }

  async deleteSnapshot(id: string): Promise<boolean> {
    return snapshots.deleteSnapshot(this.db, id);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
