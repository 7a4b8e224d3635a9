import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBodySchema } from '../../domain/schemas.js';
import { ADMIN_WIDE } from '../../domain/webhook.js';
import {
  createdWebhookSchema,
  createWebhookSchema,
  webhookDeliveriesQuerySchema,
  webhookDeliveryListSchema,
  webhookDeliveryParamsSchema,
  webhookDeliverySchema,
  webhookIdParamsSchema,
  webhookListSchema,
  webhookSchema,
} from '../../domain/webhook-schemas.js';
import type { WebhookService } from '../../webhooks/webhook-service.js';
import { scopeOwner } from '../tenancy.js';

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
};

/**
 * Signed webhooks (docs/webhooks.md). Each hook belongs to the caller's owner (a tenant key's, or
 * the X-Previewd-Owner an admin key sends); an admin key without that header owns admin-wide hooks,
 * which receive every owner's events. Another owner's hook answers webhook_not_found.
 */
export const webhookRoutes: FastifyPluginAsyncZod<{ webhooks: WebhookService }> = async (
  app,
  { webhooks },
) => {
  const scope = (request: Parameters<typeof scopeOwner>[0]) => scopeOwner(request) ?? ADMIN_WIDE;

  app.post(
    '/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Make a webhook; its signing secret is in this answer only',
        body: createWebhookSchema,
        response: { 201: createdWebhookSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await webhooks.create(scope(request), request.body);
      reply.header('cache-control', 'no-store');
      return reply.status(201).send({ ...webhook, secret });
    },
  );

  app.get(
    '/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: "List the caller's webhooks",
        response: { 200: webhookListSchema, ...errors },
      },
    },
    async (request) => ({ webhooks: await webhooks.list(scope(request)) }),
  );

  app.get(
    '/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Get a webhook',
        params: webhookIdParamsSchema,
        response: { 200: webhookSchema, ...errors },
      },
    },
    async (request) => webhooks.get(scope(request), request.params.id),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a webhook and its delivery log',
        params: webhookIdParamsSchema,
        response: { 200: webhookSchema, ...errors },
      },
    },
    async (request) => webhooks.delete(scope(request), request.params.id),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "A webhook's deliveries, newest first (status, attempts, last answer, next attempt)",
        params: webhookIdParamsSchema,
        querystring: webhookDeliveriesQuerySchema,
        response: { 200: webhookDeliveryListSchema, ...errors },
      },
    },
    async (request) => webhooks.deliveries(scope(request), request.params.id, request.query),
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again (pending, due now, retried for another window)',
        params: webhookDeliveryParamsSchema,
        response: { 202: webhookDeliverySchema, ...errors },
      },
    },
    async (request, reply) =>
      reply
        .status(202)
        .send(await webhooks.redeliver(scope(request), request.params.id, request.params.deliveryId)),
  );

  app.post(
    '/v1/webhooks/:id/test',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a webhook.ping delivery (signed and logged like an event)',
        params: webhookIdParamsSchema,
        response: { 202: webhookDeliverySchema, ...errors },
      },
    },
    async (request, reply) => reply.status(202).send(await webhooks.ping(scope(request), request.params.id)),
  );
};
