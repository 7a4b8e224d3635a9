import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { SandboxProvider } from '../../providers/provider.js';
import type { Store } from '../../store/store.js';
import type { Metrics } from '../metrics.js';

const checkSchema = z.object({ ok: z.boolean(), error: z.string().optional() });

export const systemRoutes: FastifyPluginAsyncZod<{
  store: Store;
  provider: SandboxProvider;
  metrics: Metrics;
  version: string;
}> = async (app, { store, provider, metrics, version }) => {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Liveness',
        response: { 200: z.object({ ok: z.literal(true), version: z.string() }) },
      },
    },
    async () => ({ ok: true as const, version }),
  );

  app.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Readiness: store and engine answer',
        response: {
          200: z.object({ ok: z.boolean(), store: checkSchema, engine: checkSchema }),
          503: z.object({ ok: z.boolean(), store: checkSchema, engine: checkSchema }),
        },
      },
    },
    async (_request, reply) => {
      const check = async (fn: () => Promise<void>) => {
        try {
          await fn();
          return { ok: true };
        } catch (err) {
          return { ok: false, error: (err as Error).message };
        }
      };
      const [storeCheck, engineCheck] = await Promise.all([
        check(() => store.ping()),
        check(() => provider.health()),
      ]);
      const ok = storeCheck.ok && engineCheck.ok;
      return reply.status(ok ? 200 : 503).send({ ok, store: storeCheck, engine: engineCheck });
    },
  );

  app.get('/metrics', { config: { access: 'metrics' }, schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // The API's description is public on purpose: it is the same for every server.
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
};
