import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CreatePlacement } from '../../cluster/create-placement.js';
import { PreviewdError } from '../../domain/errors.js';
import {
  type CreateSandboxInput,
  createSandboxSchema,
  errorBodySchema,
  extendSchema,
  idParamsSchema,
  keepaliveSchema,
  listSandboxesQuerySchema,
  sandboxListSchema,
  sandboxSchema,
} from '../../domain/schemas.js';
import type { SandboxService } from '../../sandboxes/service.js';
import {
  ARCHIVE_CONTENT_TYPES,
  archiveKindOf,
  CREATE_HEADER,
  parseCreateHeader,
  type SpooledArchive,
  spoolArchive,
} from '../../sources/archive-body.js';
import type { RateLimits } from '../rate-limits.js';
import { scopeOwner } from '../tenancy.js';

function parseLabelFilter(label: string | string[] | undefined): Record<string, string> | undefined {
  if (label === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of Array.isArray(label) ? label : [label]) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new PreviewdError('invalid_request', `label filter "${pair}" must be key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** A create from a snapshot runs on the node holding its layers; a placement naming another cannot be met. */
async function placementFor(
  body: CreateSandboxInput,
  owner: string | undefined,
  snapshotNode: ((id: string, owner: string | undefined) => Promise<string | undefined>) | undefined,
): Promise<CreateSandboxInput['placement']> {
  if (body.snapshot === undefined || !snapshotNode) return body.placement;
  const node = await snapshotNode(body.snapshot, owner);
  if (node === undefined) return body.placement;
  if (body.placement?.node !== undefined && body.placement.node !== node) {
    throw new PreviewdError(
      'placement_unsatisfiable',
      `snapshot ${body.snapshot} is kept on node ${node}, placement.node names ${body.placement.node}`,
      { hint: 'Leave placement.node out: a create from a snapshot is placed on the node that keeps it.' },
    );
  }
  return { ...body.placement, node };
}

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  429: errorBodySchema,
  503: errorBodySchema,
};

export const sandboxRoutes: FastifyPluginAsyncZod<{
  service: SandboxService;
  limits: RateLimits;
  /** Where a create runs (this host, or in a cluster the node placement picks). */
  placement: CreatePlacement;
  /** The node holding a snapshot's layers (a create from it is placed there; docs/snapshots.md). */
  snapshotNode?: (snapshotId: string, owner: string | undefined) => Promise<string | undefined>;
}> = async (app, { service, limits, placement, snapshotNode }) => {
  // A create's body may be the project as an archive (docs/sources.md): it reaches the route as a
  // stream, spooled to a file before validation; a type no parser reads is refused here with the
  // list (text/plain keeps Fastify's parser: text where JSON is due is a 400 like on every route).
  const stream = (_req: unknown, payload: Readable, done: (err: Error | null, body?: unknown) => void) =>
    done(null, payload);
  app.addContentTypeParser(ARCHIVE_CONTENT_TYPES, stream);
  app.addContentTypeParser('*', (_req, _payload, done) =>
    done(
      new PreviewdError('unsupported_media_type', 'this route takes JSON or an archive body', {
        hint: `Send application/json, or a project archive as ${ARCHIVE_CONTENT_TYPES.join(', ')} with the options in ${CREATE_HEADER}.`,
      }),
    ),
  );
  const archives = new WeakMap<object, SpooledArchive>();
  app.addHook('onResponse', async (request) => {
    await archives.get(request)?.remove();
  });

  app.post(
    '/v1/sandboxes',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Create a sandbox',
        description:
          'Writes the files and answers at once with state `creating`; follow events or poll. ' +
          'The body is this JSON, or the project as an archive (`application/x-tar`, `application/gzip` ' +
          'for tar.gz, `application/zip`) with the same options as JSON (or base64url of it) in the ' +
          '`X-Previewd-Create` header; `source.git` clones a repository (docs/sources.md).',
        body: createSandboxSchema,
        response: { 201: sandboxSchema, 413: errorBodySchema, 415: errorBodySchema, ...errors },
      },
      preValidation: async (request) => {
        const kind = archiveKindOf(request.headers['content-type']);
        if (!kind) return;
        const options = createSandboxSchema.safeParse(parseCreateHeader(request.headers[CREATE_HEADER]));
        if (!options.success) {
          throw new PreviewdError(
            'invalid_request',
            `${CREATE_HEADER}: ${options.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
          );
        }
        const { maxBodyMb } = service.createLimits;
        const length = Number(request.headers['content-length']);
        const archive = await spoolArchive(
          request.body as Readable,
          kind,
          Math.round(maxBodyMb * 1024 * 1024),
          Number.isFinite(length) ? length : undefined,
        );
        archives.set(request, archive);
        request.body = options.data;
      },
    },
    async (request, reply) => {
      // A tenant key's owner decides; an admin key may say whose it is (X-Previewd-Owner).
      const owner = scopeOwner(request);
      // Counted where the create entered the cluster, not again on the node it was placed on.
      if (!placement.forwardedHere(request)) await limits.checkCreate(request);
      let where = await placementFor(request.body, owner, snapshotNode);
      // An archive body was spooled here and is not forwarded: it is created on this node or not at all.
      if (archives.has(request)) {
        if (where?.node !== undefined && where.node !== placement.self) {
          throw new PreviewdError(
            'placement_unsatisfiable',
            'an archive create runs on the node that receives it',
            {
              hint: `Send the archive to node ${where.node} itself, or send JSON (files or source.git), which is forwarded.`,
            },
          );
        }
        where = { ...where, node: placement.self };
      }
      await placement.create(request, reply, where, async () => {
        const archive = archives.get(request);
        const record = await service.create(request.body, { owner, sources: archive ? { archive } : {} });
        await reply.status(201).send(service.view(record));
      });
      return reply;
    },
  );

  app.get(
    '/v1/sandboxes',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'List sandboxes, newest first',
        querystring: listSandboxesQuerySchema,
        response: { 200: sandboxListSchema, ...errors },
      },
    },
    async (request) => {
      const { state, label, limit, cursor } = request.query;
      const rows = await service.list({
        state,
        labels: parseLabelFilter(label),
        owner: scopeOwner(request),
        limit: limit + 1,
        cursor,
      });
      const page = rows.slice(0, limit);
      return {
        sandboxes: page.map((r) => service.view(r)),
        nextCursor: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
      };
    },
  );

  app.get(
    '/v1/sandboxes/:id',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Get a sandbox',
        params: idParamsSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.get(request.params.id)),
  );

  app.post(
    '/v1/sandboxes/:id/start',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Start (or resume) a sandbox',
        params: idParamsSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.start(request.params.id)),
  );

  app.post(
    '/v1/sandboxes/:id/stop',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Stop a sandbox',
        params: idParamsSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.stop(request.params.id)),
  );

  app.post(
    '/v1/sandboxes/:id/pause',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Pause a running sandbox (CPU freed, memory kept; start resumes it)',
        params: idParamsSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.pause(request.params.id)),
  );

  app.post(
    '/v1/sandboxes/:id/keepalive',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Record activity; with untilSec, hold the sandbox awake until then',
        params: idParamsSchema,
        body: keepaliveSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.keepalive(request.params.id, request.body?.untilSec)),
  );

  app.post(
    '/v1/sandboxes/:id/extend',
    {
      schema: {
        tags: ['sandboxes'],
        summary:
          'Move the expiry: the sandbox is deleted ttlSec from now (at most lifecycle.maxTtlSec after creation)',
        params: idParamsSchema,
        body: extendSchema,
        response: { 200: sandboxSchema, ...errors },
      },
    },
    async (request) => service.view(await service.extend(request.params.id, request.body.ttlSec)),
  );

  app.delete(
    '/v1/sandboxes/:id',
    {
      schema: {
        tags: ['sandboxes'],
        summary: 'Delete a sandbox, its container and its files',
        params: idParamsSchema,
        response: { 204: z.null().describe('Deleted'), ...errors },
      },
    },
    async (request, reply) => {
      await service.delete(request.params.id);
      return reply.status(204).send(null);
    },
  );
};
