import type pg from 'pg';
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
import { jsonText, type Queryable } from './postgres-writes.js';

/**
 * The PostgreSQL engine's webhooks: hooks, delivery rows, the dispatcher's cursor (a row locked
 * FOR UPDATE by each step, so nodes take turns) and attempt leases (claimed FOR UPDATE SKIP
 * LOCKED, so two nodes never claim one delivery).
 */

type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

interface WebhookRow {
  id: string;
  scope: string;
  url: string;
  events: string[];
  description: string | null;
  secret: string;
  after_event_id: string;
  created_at: Date;
}
interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string | null;
  sandbox_id: string | null;
  type: string;
  payload: string;
  status: string;
  attempts: number;
  created_at: Date;
  next_attempt_at: Date | null;
  give_up_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  delivered_at: Date | null;
}
interface EventRow {
  id: string;
  sandbox_id: string;
  owner: string | null;
  type: string;
  at: Date;
  data: unknown;
}

const iso = (d: Date | null): string | undefined => (d === null ? undefined : d.toISOString());

function toWebhook(r: WebhookRow): WebhookRecord {
  return {
    id: r.id,
    scope: r.scope,
    url: r.url,
    events: r.events,
    ...(r.description !== null ? { description: r.description } : {}),
    secret: r.secret,
    afterEventId: Number(r.after_event_id),
    createdAt: r.created_at.toISOString(),
  };
}

function toDelivery(r: DeliveryRow): WebhookDelivery {
  const optional = {
    eventId: r.event_id === null ? undefined : Number(r.event_id),
    sandboxId: r.sandbox_id ?? undefined,
    nextAttemptAt: iso(r.next_attempt_at),
    lastAttemptAt: iso(r.last_attempt_at),
    lastStatusCode: r.last_status_code ?? undefined,
    lastError: r.last_error ?? undefined,
    lastDurationMs: r.last_duration_ms ?? undefined,
    deliveredAt: iso(r.delivered_at),
  };
  return {
    id: r.id,
    webhookId: r.webhook_id,
    type: r.type,
    payload: r.payload,
    status: r.status as DeliveryStatus,
    attempts: r.attempts,
    createdAt: r.created_at.toISOString(),
    giveUpAt: r.give_up_at.toISOString(),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
  };
}

export async function insertWebhook(
  tx: Tx,
  record: Omit<WebhookRecord, 'afterEventId'>,
  maxPerScope: number,
): Promise<WebhookRecord> {
  return tx(async (c) => {
    // Per scope, creates take turns: the count and the insert cannot interleave.
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`webhooks:${record.scope}`]);
    const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM webhooks WHERE scope = $1', [
      record.scope,
    ]);
    const n = Number(rows[0]?.n ?? 0);
    if (n >= maxPerScope) {
      throw new PreviewdError(
        'webhook_limit_reached',
        `this owner already has ${n} webhooks (at most ${maxPerScope})`,
      );
    }
    const head = await c.query<{ last: string }>('SELECT last FROM event_counter WHERE id = 1');
    const stored: WebhookRecord = { ...record, afterEventId: Number(head.rows[0]?.last ?? 0) };
    await c.query(
      'INSERT INTO webhooks (id, scope, url, events, description, secret, after_event_id, created_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)',
      [
        stored.id,
        stored.scope,
        stored.url,
        jsonText(stored.events),
        stored.description ?? null,
        stored.secret,
        stored.afterEventId,
        stored.createdAt,
      ],
    );
    return stored;
  });
}

export async function getWebhook(q: Queryable, id: string): Promise<WebhookRecord | undefined> {
  const { rows } = await q.query<WebhookRow>('SELECT * FROM webhooks WHERE id = $1', [id]);
  return rows[0] && toWebhook(rows[0]);
}

export async function listWebhooks(q: Queryable, scope: string): Promise<WebhookRecord[]> {
  const { rows } = await q.query<WebhookRow>(
    'SELECT * FROM webhooks WHERE scope = $1 ORDER BY created_at, id',
    [scope],
  );
  return rows.map(toWebhook);
}

export async function deleteWebhook(q: Queryable, id: string): Promise<boolean> {
  // Its deliveries go with it (ON DELETE CASCADE).
  const result = await q.query('DELETE FROM webhooks WHERE id = $1', [id]);
  return (result.rowCount ?? 0) > 0;
}

export async function webhookCursor(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ last_event_id: string }>(
    'SELECT last_event_id FROM webhook_cursor WHERE id = 1',
  );
  return Number(rows[0]?.last_event_id ?? 0);
}

const INSERT_DELIVERY = `INSERT INTO webhook_deliveries
  (id, webhook_id, event_id, sandbox_id, type, payload, status, attempts, created_at, next_attempt_at, give_up_at)
  VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $8)`;

export async function dispatchWebhookEvents(
  tx: Tx,
  input: { limit: number; now: string; giveUpAt: string; newId: () => string },
): Promise<{ events: number; deliveries: number }> {
  return tx(async (c) => {
    // Nothing new (the common case): no lock on the cursor row.
    const peek = await c.query<{ behind: boolean }>(
      'SELECT (SELECT last FROM event_counter WHERE id = 1) > (SELECT last_event_id FROM webhook_cursor WHERE id = 1) AS behind',
    );
    if (!peek.rows[0]?.behind) return { events: 0, deliveries: 0 };
    const cursor = await c.query<{ last_event_id: string }>(
      'SELECT last_event_id FROM webhook_cursor WHERE id = 1 FOR UPDATE',
    );
    const after = Number(cursor.rows[0]?.last_event_id ?? 0);
    const { rows: events } = await c.query<EventRow>(
      'SELECT id, sandbox_id, owner, type, at, data FROM events WHERE id > $1 ORDER BY id LIMIT $2',
      [after, input.limit],
    );
    if (events.length === 0) return { events: 0, deliveries: 0 };
    const hooks = (await c.query<WebhookRow>('SELECT * FROM webhooks')).rows.map(toWebhook);
    let deliveries = 0;
    for (const row of events) {
      const event = {
        id: Number(row.id),
        type: row.type,
        sandboxId: row.sandbox_id,
        ...(row.owner !== null ? { owner: row.owner } : {}),
        at: row.at.toISOString(),
        data: row.data,
      };
      const matching = hooks.filter((h) => hookMatches(h, event));
      if (matching.length === 0) continue;
      const body = eventDeliveryBody(event);
      for (const hook of matching) {
        const result = await c.query(`${INSERT_DELIVERY} ON CONFLICT (webhook_id, event_id) DO NOTHING`, [
          input.newId(),
          hook.id,
          event.id,
          event.sandboxId,
          event.type,
          body,
          input.now,
          input.giveUpAt,
        ]);
        deliveries += result.rowCount ?? 0;
      }
    }
    await c.query('UPDATE webhook_cursor SET last_event_id = $1 WHERE id = 1', [
      events[events.length - 1]!.id,
    ]);
    return { events: events.length, deliveries };
  });
}

export async function insertWebhookDelivery(q: Queryable, d: NewDelivery): Promise<WebhookDelivery> {
  await q.query(INSERT_DELIVERY, [d.id, d.webhookId, null, null, d.type, d.payload, d.now, d.giveUpAt]);
  return (await getWebhookDelivery(q, d.webhookId, d.id))!;
}

export async function getWebhookDelivery(
  q: Queryable,
  webhookId: string,
  id: string,
): Promise<WebhookDelivery | undefined> {
  const { rows } = await q.query<DeliveryRow>(
    'SELECT * FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2',
    [id, webhookId],
  );
  return rows[0] && toDelivery(rows[0]);
}

export async function listWebhookDeliveries(
  q: Queryable,
  webhookId: string,
  opts: { limit: number; cursor?: string; status?: DeliveryStatus },
): Promise<WebhookDelivery[]> {
  const params: unknown[] = [webhookId];
  let sql = 'SELECT * FROM webhook_deliveries WHERE webhook_id = $1';
  if (opts.cursor) {
    params.push(opts.cursor);
    sql += ` AND id < $${params.length}`;
  }
  if (opts.status) {
    params.push(opts.status);
    sql += ` AND status = $${params.length}`;
  }
  params.push(opts.limit);
  sql += ` ORDER BY id DESC LIMIT $${params.length}`;
  const { rows } = await q.query<DeliveryRow>(sql, params);
  return rows.map(toDelivery);
}

export async function claimWebhookDeliveries(
  tx: Tx,
  input: { now: string; leaseMs: number; limit: number; holder: string },
): Promise<ClaimedDelivery[]> {
  const until = new Date(Date.parse(input.now) + input.leaseMs).toISOString();
  return tx(async (c) => {
    // Rows another claimer holds locked are skipped; an earlier pending row of the same queue
    // (leased or locked) keeps its successors out through the NOT EXISTS.
    const { rows } = await c.query<DeliveryRow & { url: string; secret: string }>(
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1
           AND (d.lease_until IS NULL OR d.lease_until <= $1)
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
             WHERE p.webhook_id = d.webhook_id AND p.sandbox_id = d.sandbox_id
               AND p.status = 'pending' AND p.event_id < d.event_id)
         ORDER BY d.next_attempt_at, d.id LIMIT $2
         FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET lease_holder = $3, lease_until = $4, attempts = d.attempts + 1,
         last_attempt_at = $1
       FROM due, webhooks w
       WHERE d.id = due.id AND w.id = d.webhook_id
       RETURNING d.*, w.url AS url, w.secret AS secret`,
      [input.now, input.limit, input.holder, until],
    );
    return rows
      .map((r) => ({ ...toDelivery(r), url: r.url, secret: r.secret, leaseHolder: input.holder }))
      .sort(
        (a, b) => (a.nextAttemptAt ?? '').localeCompare(b.nextAttemptAt ?? '') || a.id.localeCompare(b.id),
      );
  });
}

export async function completeWebhookAttempt(q: Queryable, o: AttemptOutcome): Promise<boolean> {
  const status = o.result === 'retry' ? 'pending' : o.result;
  const result = await q.query(
    `UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, last_status_code = $3, last_error = $4,
       last_duration_ms = $5, delivered_at = $6, lease_holder = NULL, lease_until = NULL
     WHERE id = $7 AND lease_holder = $8 AND status = 'pending'`,
    [
      status,
      o.result === 'retry' ? (o.nextAttemptAt ?? o.now) : null,
      o.statusCode ?? null,
      o.error ?? null,
      Math.round(o.durationMs),
      o.result === 'delivered' ? o.now : null,
      o.id,
      o.leaseHolder,
    ],
  );
  return (result.rowCount ?? 0) > 0;
}

export async function redeliverWebhookDelivery(
  q: Queryable,
  webhookId: string,
  id: string,
  now: string,
  giveUpAt: string,
): Promise<WebhookDelivery | undefined> {
  const { rows } = await q.query<DeliveryRow>(
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, give_up_at = $2, delivered_at = NULL
     WHERE id = $3 AND webhook_id = $4 RETURNING *`,
    [now, giveUpAt, id, webhookId],
  );
  return rows[0] && toDelivery(rows[0]);
}
