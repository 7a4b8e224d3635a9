import type {
  CreatedWebhook,
  CreateWebhookRequest,
  Webhook,
  WebhookDeliveryList,
} from './generated/api-types.js';
import type { Http } from './http.js';

export type { CreatedWebhook, CreateWebhookRequest, Webhook, WebhookDeliveryList };

/** One delivery of an event (or a ping) to a hook, with its attempts so far (types generated from the server). */
export type WebhookDelivery = WebhookDeliveryList['deliveries'][number];

export interface DeliveriesOptions {
  status?: WebhookDelivery['status'];
  limit?: number;
  cursor?: string;
}

const path = (id: string) => `/v1/webhooks/${encodeURIComponent(id)}`;

/**
 * Signed webhooks (Standard Webhooks): each belongs to the caller's owner (a tenant key's, or the
 * client's `owner`); an admin key without one makes admin-wide hooks that receive every owner's
 * events. Verify deliveries with the `standardwebhooks` package and the secret from `create`.
 */
export class Webhooks {
  constructor(private readonly http: Http) {}

  create(opts: CreateWebhookRequest): Promise<CreatedWebhook> {
    return this.http.json('POST', '/v1/webhooks', { body: opts });
  }

  async list(): Promise<Webhook[]> {
    return (await this.http.json<{ webhooks: Webhook[] }>('GET', '/v1/webhooks')).webhooks;
  }

  get(id: string): Promise<Webhook> {
    return this.http.json('GET', path(id));
  }

  /** Deletes the hook and its delivery log. */
  delete(id: string): Promise<Webhook> {
    return this.http.json('DELETE', path(id));
  }

  /** One page of the hook's deliveries, newest first; pass `cursor: page.nextCursor` for the next. */
  deliveries(id: string, opts: DeliveriesOptions = {}): Promise<WebhookDeliveryList> {
    return this.http.json('GET', `${path(id)}/deliveries`, { query: { ...opts } });
  }

  /** Sends a delivery again (pending, due now, retried for another window); same `webhook-id`. */
  redeliver(id: string, deliveryId: string): Promise<WebhookDelivery> {
    return this.http.json('POST', `${path(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`);
  }

  /** Sends a `webhook.ping` delivery; follow it with `deliveries`. */
  test(id: string): Promise<WebhookDelivery> {
    return this.http.json('POST', `${path(id)}/test`);
  }
}
