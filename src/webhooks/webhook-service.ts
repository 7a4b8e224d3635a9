import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { Clock } from '../domain/clock.js';
import { PreviewdError } from '../domain/errors.js';
import {
  ADMIN_WIDE,
  deliveryBody,
  PING_TYPE,
  type WebhookDelivery,
  type WebhookRecord,
} from '../domain/webhook.js';
import type { Store } from '../store/store.js';
import { type Resolve, resolveTarget } from './target-policy.js';

const ulid = monotonicFactory();
export const newWebhookId = (): string => `wh_${ulid().toLowerCase()}`;
/** Also the Standard Webhooks message id (the `webhook-id` header). */
export const newDeliveryId = (): string => `msg_${ulid().toLowerCase()}`;

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  /** The owner whose events it receives; null: admin-wide (every owner's). */
  owner: string | null;
  description: string | null;
  createdAt: string;
}

export interface DeliveryView {
  id: string;
  webhookId: string;
  eventId: number | null;
  sandboxId: string | null;
  type: string;
  status: WebhookDelivery['status'];
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  giveUpAt: string;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  deliveredAt: string | null;
  payload: unknown;
}

export function webhookView(r: WebhookRecord): WebhookView {
  return {
    id: r.id,
    url: r.url,
    events: r.events,
    owner: r.scope === ADMIN_WIDE ? null : r.scope,
    description: r.description ?? null,
    createdAt: r.createdAt,
  };
}

export function deliveryView(d: WebhookDelivery): DeliveryView {
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId ?? null,
    sandboxId: d.sandboxId ?? null,
    type: d.type,
    status: d.status,
    attempts: d.attempts,
    createdAt: d.createdAt,
    nextAttemptAt: d.status === 'pending' ? (d.nextAttemptAt ?? null) : null,
    giveUpAt: d.giveUpAt,
    lastAttemptAt: d.lastAttemptAt ?? null,
    lastStatusCode: d.lastStatusCode ?? null,
    lastError: d.lastError ?? null,
    lastDurationMs: d.lastDurationMs ?? null,
    deliveredAt: d.deliveredAt ?? null,
    payload: JSON.parse(d.payload) as unknown,
  };
}

export interface WebhookServiceOptions {
  store: Store;
  config: { allowPrivateTargets: boolean; maxPerOwner: number; retryWindowSec: number };
  clock: Clock;
  /** New deliveries on this node: the sender looks at once. */
  onDelivery?: () => void;
  resolve?: Resolve;
}

/**
 * The webhooks API's operations, always within one scope (an owner, or ADMIN_WIDE): a hook of
 * another scope answers webhook_not_found, exactly like one that does not exist.
 */
export class WebhookService {
  constructor(private readonly opts: WebhookServiceOptions) {}

  async create(
    scope: string,
    input: { url: string; events?: string[]; description?: string },
  ): Promise<{ webhook: WebhookView; secret: string }> {
    await resolveTarget(input.url, {
      allowPrivate: this.opts.config.allowPrivateTargets,
      resolve: this.opts.resolve,
    });
    const secret = newWebhookSecret();
    const record = await this.opts.store.insertWebhook(
      {
        id: newWebhookId(),
        scope,
        url: input.url,
        events: [...new Set(input.events ?? [])],
        ...(input.description !== undefined ? { description: input.description } : {}),
        secret,
        createdAt: new Date(this.opts.clock.now()).toISOString(),
      },
      this.opts.config.maxPerOwner,
    );
    return { webhook: webhookView(record), secret };
  }

  async list(scope: string): Promise<WebhookView[]> {
    return (await this.opts.store.listWebhooks(scope)).map(webhookView);
  }

  async get(scope: string, id: string): Promise<WebhookView> {
    return webhookView(await this.own(scope, id));
  }

  async delete(scope: string, id: string): Promise<WebhookView> {
    const hook = await this.own(scope, id);
    await this.opts.store.deleteWebhook(hook.id);
    return webhookView(hook);
  }

  async deliveries(
    scope: string,
    id: string,
    opts: { limit: number; cursor?: string; status?: WebhookDelivery['status'] },
  ): Promise<{ deliveries: DeliveryView[]; nextCursor: string | null }> {
    const hook = await this.own(scope, id);
    const page = await this.opts.store.listWebhookDeliveries(hook.id, opts);
    return {
      deliveries: page.map(deliveryView),
      nextCursor: page.length === opts.limit ? (page[page.length - 1]?.id ?? null) : null,
    };
  }

  async redeliver(scope: string, id: string, deliveryId: string): Promise<DeliveryView> {
    const hook = await this.own(scope, id);
    const now = this.opts.clock.now();
    const delivery = await this.opts.store.redeliverWebhookDelivery(
      hook.id,
      deliveryId,
      new Date(now).toISOString(),
      this.giveUpAt(now),
    );
    if (!delivery) {
      throw new PreviewdError('webhook_delivery_not_found', `delivery ${deliveryId} does not exist`);
    }
    this.opts.onDelivery?.();
    return deliveryView(delivery);
  }

  /** Sends a `webhook.ping` through the same path as events (signed, retried, in the log). */
  async ping(scope: string, id: string): Promise<DeliveryView> {
    const hook = await this.own(scope, id);
    const now = this.opts.clock.now();
    const at = new Date(now).toISOString();
    const delivery = await this.opts.store.insertWebhookDelivery({
      id: newDeliveryId(),
      webhookId: hook.id,
      type: PING_TYPE,
      payload: deliveryBody(PING_TYPE, at, { webhookId: hook.id, message: 'ping from previewd' }),
      now: at,
      giveUpAt: this.giveUpAt(now),
    });
    this.opts.onDelivery?.();
    return deliveryView(delivery);
  }

  giveUpAt(nowMs: number): string {
    return new Date(nowMs + this.opts.config.retryWindowSec * 1000).toISOString();
  }

  private async own(scope: string, id: string): Promise<WebhookRecord> {
    const hook = await this.opts.store.getWebhook(id);
    if (!hook || hook.scope !== scope) {
      throw new PreviewdError('webhook_not_found', `webhook ${id.slice(0, 64)} does not exist`);
    }
    return hook;
  }
}
