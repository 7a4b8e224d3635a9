/**
 * Webhooks as the store keeps them (docs/webhooks.md). A webhook belongs to a scope: a tenant's
 * owner, or `ADMIN_WIDE` for hooks made by an admin without X-Previewd-Owner, which receive every
 * owner's events.
 */

/** The scope of admin-wide hooks (not a valid owner, so no tenant can name it). */
export const ADMIN_WIDE = '*';

/** The event type of the test endpoint's delivery (not a sandbox event). */
export const PING_TYPE = 'webhook.ping';

export interface WebhookRecord {
  id: string;
  /** An owner, or ADMIN_WIDE. */
  scope: string;
  url: string;
  /** Event types it receives; empty: every type. */
  events: string[];
  description?: string;
  /** The Standard Webhooks secret (`whsec_` + base64). */
  secret: string;
  /** Events with an id up to this one (the store's head at create) are not delivered to it. */
  afterEventId: number;
  createdAt: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDelivery {
  /** Also the Standard Webhooks message id (`webhook-id` header). */
  id: string;
  webhookId: string;
  /** The previewd event it carries; absent for a ping. */
  eventId?: number;
  /** The sandbox of the event (deliveries of one sandbox go out one at a time, in event order). */
  sandboxId?: string;
  type: string;
  /** The exact JSON body sent on every attempt. */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  createdAt: string;
  /** When the next attempt may start (pending only). */
  nextAttemptAt?: string;
  /** A pending delivery still failing at this time is marked failed. */
  giveUpAt: string;
  lastAttemptAt?: string;
  lastStatusCode?: number;
  lastError?: string;
  lastDurationMs?: number;
  deliveredAt?: string;
}

/** A delivery handed to one sender under a lease, with what it needs to send it. */
export interface ClaimedDelivery extends WebhookDelivery {
  url: string;
  secret: string;
  /** The claim's holder token: only it may record the attempt's outcome. */
  leaseHolder: string;
}

/** The outcome of one attempt, as the sender records it. */
export interface AttemptOutcome {
  id: string;
  leaseHolder: string;
  now: string;
  statusCode?: number;
  error?: string;
  durationMs: number;
  /** delivered (2xx), retry at `nextAttemptAt`, or failed for good. */
  result: 'delivered' | 'retry' | 'failed';
  nextAttemptAt?: string;
}

/** A delivery to insert directly (the test endpoint's ping). */
export interface NewDelivery {
  id: string;
  webhookId: string;
  type: string;
  payload: string;
  now: string;
  giveUpAt: string;
}

/** The body of a delivery (Standard Webhooks: type, timestamp, data). */
export function deliveryBody(type: string, timestamp: string, data: unknown): string {
  return JSON.stringify({ type, timestamp, data });
}

/** The body of an event's delivery: data is the previewd event (id, sandboxId, owner, at, data). */
export function eventDeliveryBody(event: {
  id: number;
  type: string;
  sandboxId: string;
  owner?: string;
  at: string;
  data: unknown;
}): string {
  return deliveryBody(event.type, event.at, {
    id: event.id,
    sandboxId: event.sandboxId,
    ...(event.owner !== undefined ? { owner: event.owner } : {}),
    at: event.at,
    data: event.data,
  });
}

/** Whether a hook receives an event of this owner and type. */
export function hookMatches(
  hook: Pick<WebhookRecord, 'scope' | 'events' | 'afterEventId'>,
  event: { id: number; owner?: string; type: string },
): boolean {
  if (event.id <= hook.afterEventId) return false;
  if (hook.scope !== ADMIN_WIDE && hook.scope !== event.owner) return false;
  return hook.events.length === 0 || hook.events.includes(event.type);
}
