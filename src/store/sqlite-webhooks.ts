import type Database from 'better-sqlite3';
import { PreviewdError } from '../domain/errors.js';
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  type DeliveryStatus,
  eventDeliveryBody,
  hookMatches,
  type NewDelivery,
  type WebhookDelivery,
  type WebhookRecord,
} from '../domain/webhook.js';

/** The SQLite engine's webhooks: hooks, delivery rows, the dispatcher's cursor, attempt leases. */

interface WebhookRow {
  id: string;
  scope: string;
  url: string;
  events: string;
  description: string | null;
  secret: string;
  after_event_id: number;
  created_at: string;
}
interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: number | null;
  sandbox_id: string | null;
  type: string;
  payload: string;
  status: string;
  attempts: number;
  created_at: string;
  next_attempt_at: string | null;
  give_up_at: string;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  delivered_at: string | null;
}
interface EventRow {
  id: number;
  sandbox_id: string;
  owner: string | null;
  type: string;
  at: string;
  data: string;
}

function toWebhook(r: WebhookRow): WebhookRecord {
  return {
    id: r.id,
    scope: r.scope,
    url: r.url,
    events: JSON.parse(r.events) as string[],
    ...(r.description !== null ? { description: r.description } : {}),
    secret: r.secret,
    afterEventId: r.after_event_id,
    createdAt: r.created_at,
  };
}

function toDelivery(r: DeliveryRow): WebhookDelivery {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    ...(r.event_id !== null ? { eventId: r.event_id } : {}),
    ...(r.sandbox_id !== null ? { sandboxId: r.sandbox_id } : {}),
    type: r.type,
    payload: r.payload,
    status: r.status as DeliveryStatus,
    attempts: r.attempts,
    createdAt: r.created_at,
    ...(r.next_attempt_at !== null ? { nextAttemptAt: r.next_attempt_at } : {}),
    giveUpAt: r.give_up_at,
    ...(r.last_attempt_at !== null ? { lastAttemptAt: r.last_attempt_at } : {}),
    ...(r.last_status_code !== null ? { lastStatusCode: r.last_status_code } : {}),
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.last_duration_ms !== null ? { lastDurationMs: r.last_duration_ms } : {}),
    ...(r.delivered_at !== null ? { deliveredAt: r.delivered_at } : {}),
  };
}

const immediate = <T>(db: Database.Database, fn: () => T): T => db.transaction(fn).immediate();

export function insertWebhook(
  db: Database.Database,
  record: Omit<WebhookRecord, 'afterEventId'>,
  maxPerScope: number,
): WebhookRecord {
  return immediate(db, () => {
    const { n } = db.prepare('SELECT count(*) AS n FROM webhooks WHERE scope = ?').get(record.scope) as {
      n: number;
    };
    if (n >= maxPerScope) {
      throw new PreviewdError(
        'webhook_limit_reached',
        `this owner already has ${n} webhooks (at most ${maxPerScope})`,
      );
    }
    const head = db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number };
    const stored: WebhookRecord = { ...record, afterEventId: head.id };
    db.prepare(
      'INSERT INTO webhooks (id, scope, url, events, description, secret, after_event_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      stored.id,
      stored.scope,
      stored.url,
      JSON.stringify(stored.events),
      stored.description ?? null,
      stored.secret,
      stored.afterEventId,
      stored.createdAt,
    );
    return stored;
  });
}

export function getWebhook(db: Database.Database, id: string): WebhookRecord | undefined {
  const row = db.prepare('SELECT * FROM webhooks WHERE id = ?').get(id) as WebhookRow | undefined;
  return row && toWebhook(row);
}

export function listWebhooks(db: Database.Database, scope: string): WebhookRecord[] {
  return (
    db.prepare('SELECT * FROM webhooks WHERE scope = ? ORDER BY created_at, id').all(scope) as WebhookRow[]
  ).map(toWebhook);
}

export function deleteWebhook(db: Database.Database, id: string): boolean {
  return immediate(db, () => {
    db.prepare('DELETE FROM webhook_deliveries WHERE webhook_id = ?').run(id);
    return db.prepare('DELETE FROM webhooks WHERE id = ?').run(id).changes > 0;
  });
}

export function webhookCursor(db: Database.Database): number {
  const row = db.prepare('SELECT last_event_id FROM webhook_cursor WHERE id = 1').get() as
    | { last_event_id: number }
    | undefined;
  return row?.last_event_id ?? 0;
}

const INSERT_DELIVERY = `INSERT INTO webhook_deliveries
  (id, webhook_id, event_id, sandbox_id, type, payload, status, attempts, created_at, next_attempt_at, give_up_at)
  VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`;

export function dispatchWebhookEvents(
  db: Database.Database,
  input: { limit: number; now: string; giveUpAt: string; newId: () => string },
): { events: number; deliveries: number } {
  // Nothing new (the common case on every event when no hook matches): no write lock taken.
  const head = db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number };
  if (head.id <= webhookCursor(db)) return { events: 0, deliveries: 0 };
  return immediate(db, () => {
    const after = webhookCursor(db);
    const events = db
      .prepare('SELECT id, sandbox_id, owner, type, at, data FROM events WHERE id > ? ORDER BY id LIMIT ?')
      .all(after, input.limit) as EventRow[];
    if (events.length === 0) return { events: 0, deliveries: 0 };
    const hooks = (db.prepare('SELECT * FROM webhooks').all() as WebhookRow[]).map(toWebhook);
    const insert = db.prepare(`${INSERT_DELIVERY} ON CONFLICT (webhook_id, event_id) DO NOTHING`);
    let deliveries = 0;
    for (const event of events) {
      const matching = hooks.filter((h) =>
        hookMatches(h, { id: event.id, owner: event.owner ?? undefined, type: event.type }),
      );
      if (matching.length === 0) continue;
      const body = eventDeliveryBody({
        id: event.id,
        type: event.type,
        sandboxId: event.sandbox_id,
        ...(event.owner !== null ? { owner: event.owner } : {}),
        at: event.at,
        data: JSON.parse(event.data),
      });
      for (const hook of matching) {
        deliveries += insert.run(
          input.newId(),
          hook.id,
          event.id,
          event.sandbox_id,
          event.type,
          body,
          input.now,
          input.now,
          input.giveUpAt,
        ).changes;
      }
    }
    const last = events[events.length - 1]!.id;
    db.prepare(
      'INSERT INTO webhook_cursor (id, last_event_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET last_event_id = excluded.last_event_id',
    ).run(last);
    return { events: events.length, deliveries };
  });
}

export function insertWebhookDelivery(db: Database.Database, d: NewDelivery): WebhookDelivery {
  db.prepare(INSERT_DELIVERY).run(d.id, d.webhookId, null, null, d.type, d.payload, d.now, d.now, d.giveUpAt);
  return getWebhookDelivery(db, d.webhookId, d.id)!;
}

export function getWebhookDelivery(
  db: Database.Database,
  webhookId: string,
  id: string,
): WebhookDelivery | undefined {
  const row = db
    .prepare('SELECT * FROM webhook_deliveries WHERE id = ? AND webhook_id = ?')
    .get(id, webhookId) as DeliveryRow | undefined;
  return row && toDelivery(row);
}

export function listWebhookDeliveries(
  db: Database.Database,
  webhookId: string,
  opts: { limit: number; cursor?: string; status?: DeliveryStatus },
): WebhookDelivery[] {
  const params: unknown[] = [webhookId];
  let sql = 'SELECT * FROM webhook_deliveries WHERE webhook_id = ?';
  if (opts.cursor) {
    sql += ' AND id < ?';
    params.push(opts.cursor);
  }
  if (opts.status) {
    sql += ' AND status = ?';
    params.push(opts.status);
  }
  sql += ' ORDER BY id DESC LIMIT ?';
  params.push(opts.limit);
  return (db.prepare(sql).all(...params) as DeliveryRow[]).map(toDelivery);
}

/** Due, not leased, and the oldest pending delivery of its hook and sandbox. */
export const CLAIMABLE = `d.status = 'pending' AND d.next_attempt_at <= $now
  AND (d.lease_until IS NULL OR d.lease_until <= $now)
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
    WHERE p.webhook_id = d.webhook_id AND p.sandbox_id = d.sandbox_id
      AND p.status = 'pending' AND p.event_id < d.event_id)`;

export function claimWebhookDeliveries(
  db: Database.Database,
  input: { now: string; leaseMs: number; limit: number; holder: string },
): ClaimedDelivery[] {
  const until = new Date(Date.parse(input.now) + input.leaseMs).toISOString();
  // Nothing due (the common case of every poll): no write lock taken.
  const due = db
    .prepare(
      "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) LIMIT 1",
    )
    .get(input.now, input.now);
  if (!due) return [];
  return immediate(db, () => {
    const rows = db
      .prepare(
        `SELECT d.*, w.url AS url, w.secret AS secret FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE ${CLAIMABLE.replaceAll('$now', '@now')} ORDER BY d.next_attempt_at, d.id LIMIT @limit`,
      )
      .all({ now: input.now, limit: input.limit }) as (DeliveryRow & { url: string; secret: string })[];
    const lease = db.prepare(
      'UPDATE webhook_deliveries SET lease_holder = ?, lease_until = ?, attempts = attempts + 1, last_attempt_at = ? WHERE id = ?',
    );
    return rows.map((r) => {
      lease.run(input.holder, until, input.now, r.id);
      return {
        ...toDelivery({ ...r, attempts: r.attempts + 1, last_attempt_at: input.now }),
        url: r.url,
        secret: r.secret,
        leaseHolder: input.holder,
      };
    });
  });
}

export function completeWebhookAttempt(db: Database.Database, o: AttemptOutcome): boolean {
  const status = o.result === 'retry' ? 'pending' : o.result;
  return (
    db
      .prepare(
        `UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?,
           last_duration_ms = ?, delivered_at = ?, lease_holder = NULL, lease_until = NULL
         WHERE id = ? AND lease_holder = ? AND status = 'pending'`,
      )
      .run(
        status,
        o.result === 'retry' ? (o.nextAttemptAt ?? o.now) : null,
        o.statusCode ?? null,
        o.error ?? null,
        Math.round(o.durationMs),
        o.result === 'delivered' ? o.now : null,
        o.id,
        o.leaseHolder,
      ).changes > 0
  );
}

export function redeliverWebhookDelivery(
  db: Database.Database,
  webhookId: string,
  id: string,
  now: string,
  giveUpAt: string,
): WebhookDelivery | undefined {
  db.prepare(
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, give_up_at = ?, delivered_at = NULL
     WHERE id = ? AND webhook_id = ?`,
  ).run(now, giveUpAt, id, webhookId);
  return getWebhookDelivery(db, webhookId, id);
}
