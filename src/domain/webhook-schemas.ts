import { z } from 'zod';
import { eventTypes } from './events.js';

/** The longest webhook URL accepted. */
export const MAX_WEBHOOK_URL = 2048;

/** Control characters (C0 and DEL): not in a URL, and PostgreSQL text cannot hold NUL. */
const hasControl = (v: string): boolean => {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};

const webhookIdRe = /^wh_[0-9a-hjkmnp-tv-z]{26}$/;
const deliveryIdRe = /^msg_[0-9a-hjkmnp-tv-z]{26}$/;

export const createWebhookSchema = z.strictObject({
  url: z
    .string()
    .min(1)
    .max(MAX_WEBHOOK_URL)
    .refine((v) => !hasControl(v) && !/\s/.test(v), 'a URL has no spaces or control characters')
    .describe('Where deliveries are POSTed: http(s) to a public address (see webhooks.allowPrivateTargets)'),
  events: z
    .array(z.enum(eventTypes as [string, ...string[]]))
    .max(eventTypes.length)
    .optional()
    .describe('Event types to receive (src/domain/events.ts); absent or empty: every type'),
  description: z
    .string()
    .min(1)
    .max(256)
    .refine((v) => !hasControl(v), 'no control characters')
    .optional()
    .describe('A label for listings'),
});

export const webhookSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()).describe('Event types it receives; empty: every type'),
  owner: z
    .string()
    .nullable()
    .describe("The owner whose events it receives; null: admin-wide (every owner's)"),
  description: z.string().nullable(),
  createdAt: z.string(),
});

export const createdWebhookSchema = webhookSchema.extend({
  secret: z
    .string()
    .describe('The Standard Webhooks signing secret (whsec_…): shown this once; verify deliveries with it'),
});

export const webhookListSchema = z.object({ webhooks: z.array(webhookSchema) });

export const webhookDeliverySchema = z.object({
  id: z.string().describe('Also the webhook-id header of every attempt'),
  webhookId: z.string(),
  eventId: z.number().nullable().describe('The previewd event it carries; null for a ping'),
  sandboxId: z.string().nullable(),
  type: z.string(),
  status: z
    .enum(['pending', 'delivered', 'failed'])
    .describe(
      'pending: not delivered yet (retried until giveUpAt); delivered: a 2xx answer; failed: given up',
    ),
  attempts: z.number().int(),
  createdAt: z.string(),
  nextAttemptAt: z.string().nullable(),
  giveUpAt: z.string(),
  lastAttemptAt: z.string().nullable(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  lastDurationMs: z.number().nullable(),
  deliveredAt: z.string().nullable(),
  payload: z.unknown().describe('The body sent: { type, timestamp, data }'),
});

export const webhookDeliveryListSchema = z.object({
  deliveries: z.array(webhookDeliverySchema),
  nextCursor: z.string().nullable(),
});

export const webhookIdParamsSchema = z.strictObject({
  id: z.string().regex(webhookIdRe, 'webhook ids look like wh_ followed by 26 characters'),
});

export const webhookDeliveryParamsSchema = webhookIdParamsSchema.extend({
  deliveryId: z.string().regex(deliveryIdRe, 'delivery ids look like msg_ followed by 26 characters'),
});

export const webhookDeliveriesQuerySchema = z.strictObject({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().regex(deliveryIdRe).optional().describe("The previous page's nextCursor"),
});
