import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { logsQuerySchema } from '../../domain/io-schemas.js';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import type { OutputChunk } from '../../providers/provider.js';
import { sendStream, streamFormat } from '../streaming.js';
import { type IoRouteDeps, recordActivity } from './io-context.js';

/** The app's own output (install and dev server), as NDJSON or SSE. */
export const logRoutes: FastifyPluginAsyncZod<IoRouteDeps> = async (app, deps) => {
  const { service, provider } = deps;
  recordActivity(app, deps.activity);

  app.get(
    '/v1/sandboxes/:id/logs',
    {
      schema: {
        tags: ['logs'],
        summary: "The app's output: NDJSON `{ stream, data }` lines, or SSE with Accept: text/event-stream",
        params: idParamsSchema,
        querystring: logsQuerySchema,
        response: { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await service.get(id);
      const { follow, since, tail } = request.query;
      const stream = await provider.logs(id, { follow: follow ?? false, since, tail });
      await sendStream(request, reply, streamFormat(request), async function* (signal) {
        signal.addEventListener('abort', () => stream.destroy());
        try {
          for await (const chunk of stream as AsyncIterable<OutputChunk>) {
            yield { event: chunk.stream, data: { stream: chunk.stream, data: chunk.data.toString('utf8') } };
          }
        } catch (err) {
          if (!signal.aborted) throw err;
        } finally {
          stream.destroy();
        }
      });
      return reply;
    },
  );
};
