import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PreviewdError } from '../../domain/errors.js';
import type { PreviewdEvent } from '../../domain/events.js';
import { eventsQuerySchema } from '../../domain/io-schemas.js';
import { errorBodySchema, sandboxIdSchema } from '../../domain/schemas.js';
import type { EventBus } from '../../events/bus.js';
import type { Store } from '../../store/store.js';
import { type StreamItem, sendStream, streamFormat } from '../streaming.js';
import { scopeOwner } from '../tenancy.js';
import type { IoRouteDeps } from './io-context.js';

const HISTORY_PAGE = 500;

/**
 * Stored events after `afterId` (when given), read from the store, then live ones from the bus,
 * without gaps or repeats, whichever node wrote them: the subscription starts before the history
 * is read, live events already replayed are skipped, and the bus delivers every stored event in
 * id order (the store's id rule, store.ts), so nothing between the history's end and the first
 * live event is missed.
 */
export async function* eventFeed(
  source: { store: Pick<Store, 'listEvents'>; bus: Pick<EventBus, 'subscribe'> },
  opts: { afterId?: number; sandboxId?: string; owner?: string; types?: Set<string>; signal: AbortSignal },
): AsyncGenerator<PreviewdEvent> {
  const queue: PreviewdEvent[] = [];
  let wake: (() => void) | undefined;
  const keep = (e: PreviewdEvent) =>
    (opts.sandboxId === undefined || e.sandboxId === opts.sandboxId) &&
    (opts.owner === undefined || e.owner === opts.owner) &&
    (!opts.types || opts.types.has(e.type));
  const { store, bus } = source;
  const unsubscribe = bus.subscribe((e) => {
    if (!keep(e)) return;
    queue.push(e);
    wake?.();
  });
  const onAbort = () => wake?.();
  opts.signal.addEventListener('abort', onAbort);
  try {
    let last = opts.afterId ?? Number.POSITIVE_INFINITY;
    if (opts.afterId !== undefined) {
      for (;;) {
        const page = await store.listEvents({
          afterId: last,
          sandboxId: opts.sandboxId,
          owner: opts.owner,
          limit: HISTORY_PAGE,
        });
        for (const e of page) {
          if (opts.signal.aborted) return;
          last = e.id;
          if (keep(e)) yield e;
        }
        if (page.length < HISTORY_PAGE) break;
      }
    }
    while (!opts.signal.aborted) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      const e = queue.shift()!;
      if (Number.isFinite(last) && e.id <= last) continue;
      last = e.id;
      yield e;
    }
  } finally {
    unsubscribe();
    opts.signal.removeEventListener('abort', onAbort);
  }
}

function lastEventId(header: unknown, query: number | undefined): number | undefined {
  if (typeof header === 'string' && header.trim() !== '') {
    const n = Number(header);
    if (!Number.isInteger(n) || n < 0)
      throw new PreviewdError('invalid_request', 'Last-Event-ID must be an event id');
    return n;
  }
  return query;
}

/** Server-Sent Events of the whole server or one sandbox, resumable with Last-Event-ID. */
export const eventRoutes: FastifyPluginAsyncZod<IoRouteDeps & { keepAliveMs?: number }> = async (
  app,
  deps,
) => {
  const { bus, store } = deps;

  const serve = async (
    request: FastifyRequest,
    reply: FastifyReply,
    sandboxId: string | undefined,
    query: z.infer<typeof eventsQuerySchema>,
  ) => {
    const afterId = lastEventId(request.headers['last-event-id'], query.lastEventId);
    const types = query.types ? new Set(query.types.split(',').map((t) => t.trim())) : undefined;
    // A tenant's stream carries its own sandboxes' events only (the per-sandbox route is checked
    // before it runs; the global one is filtered here).
    const owner = scopeOwner(request);
    const format =
      streamFormat(request) === 'ndjson' && /x-ndjson/.test(request.headers.accept ?? '') ? 'ndjson' : 'sse';
    await sendStream(
      request,
      reply,
      format,
      async function* (signal): AsyncGenerator<StreamItem> {
        for await (const e of eventFeed({ store, bus }, { afterId, sandboxId, owner, types, signal })) {
          yield { id: e.id, event: e.type, data: e };
        }
      },
      { keepAliveMs: deps.keepAliveMs },
    );
    return reply;
  };

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Server-Sent Events of all sandboxes (resume with Last-Event-ID)',
        querystring: eventsQuerySchema,
        response: { 400: errorBodySchema, 401: errorBodySchema },
      },
    },
    async (request, reply) => serve(request, reply, request.query.sandboxId, request.query),
  );

  app.get(
    '/v1/sandboxes/:id/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Server-Sent Events of one sandbox (resume with Last-Event-ID)',
        params: z.strictObject({ id: sandboxIdSchema }),
        querystring: eventsQuerySchema.omit({ sandboxId: true }),
        response: { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await store.getSandbox(id, { includeDeleted: true }))) {
        throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
      }
      return serve(request, reply, id, request.query);
    },
  );
};
