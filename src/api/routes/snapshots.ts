import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBodySchema, idParamsSchema, sandboxSchema } from '../../domain/schemas.js';
import {
  createSnapshotSchema,
  forkSandboxSchema,
  listSnapshotsQuerySchema,
  snapshotIdParamsSchema,
  snapshotListSchema,
  snapshotSchema,
} from '../../domain/snapshot-schemas.js';
import type { SandboxService } from '../../sandboxes/service.js';
import type { SnapshotService } from '../../snapshots/snapshot-service.js';
import type { RateLimits } from '../rate-limits.js';
import { scopeOwner } from '../tenancy.js';

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  429: errorBodySchema,
  503: errorBodySchema,
};

/**
 * Snapshots and fork (docs/snapshots.md). The routes under /v1/sandboxes/:id are scoped by
 * tenancy.ts (and forwarded to the sandbox's node in a cluster); those under /v1/snapshots/:id
 * check the owner themselves: another owner's snapshot answers snapshot_not_found, exactly as a
 * missing one.
 */
export const snapshotRoutes: FastifyPluginAsyncZod<{
  snapshots: SnapshotService;
  service: SandboxService;
  limits: RateLimits;
}> = async (app, { snapshots, service, limits }) => {
  app.post(
    '/v1/sandboxes/:id/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: "Snapshot a sandbox's files (its writable layer frozen as a read-only layer)",
        description:
          'A running sandbox is paused for the copy and resumed after. Process memory is not kept: a sandbox made from it starts its app fresh.',
        params: idParamsSchema,
        body: createSnapshotSchema,
        response: { 201: snapshotSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await snapshots.create(request.params.id, request.body ?? {})),
  );

  app.post(
    '/v1/sandboxes/:id/fork',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Fork a sandbox: a new one from its files as they are now, its app started fresh',
        params: idParamsSchema,
        body: forkSandboxSchema,
        response: { 201: sandboxSchema, ...errors },
      },
    },
    async (request, reply) => {
      await limits.checkCreate(request);
      const record = await snapshots.fork(request.params.id, scopeOwner(request), request.body ?? {});
      return reply.status(201).send(service.view(record));
    },
  );

  app.get(
    '/v1/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: "List the caller's snapshots, newest first",
        querystring: listSnapshotsQuerySchema,
        response: { 200: snapshotListSchema, ...errors },
      },
    },
    async (request) => snapshots.list(scopeOwner(request), request.query),
  );

  app.get(
    '/v1/snapshots/:id',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Get a snapshot',
        params: snapshotIdParamsSchema,
        response: { 200: snapshotSchema, ...errors },
      },
    },
    async (request) => snapshots.get(request.params.id, scopeOwner(request)),
  );

  app.delete(
    '/v1/snapshots/:id',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Delete a snapshot (its layer is freed once no sandbox made from it remains)',
        params: snapshotIdParamsSchema,
        response: { 200: snapshotSchema, ...errors },
      },
    },
    async (request) => snapshots.delete(request.params.id, scopeOwner(request)),
  );
};
