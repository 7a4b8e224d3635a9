import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  followQuerySchema,
  processKillSchema,
  processParamsSchema,
  processSchema,
  processStartSchema,
} from '../../domain/io-schemas.js';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import { sendStream, streamFormat } from '../streaming.js';
import { resolveCwd, toArgv } from './exec.js';
import { type IoRouteDeps, recordActivity } from './io-context.js';

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema };

/** Background processes: started here, owned by previewd, still running when the client leaves. */
export const processRoutes: FastifyPluginAsyncZod<IoRouteDeps> = async (app, deps) => {
  const { service, processes } = deps;
  recordActivity(app, deps.activity);

  app.post(
    '/v1/sandboxes/:id/processes',
    {
      schema: {
        tags: ['processes'],
        summary: 'Start a background process',
        params: idParamsSchema,
        body: processStartSchema,
        response: { 201: processSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await service.ensureRunningForExec(id);
      const { cmd, cwd, env } = request.body;
      const info = await processes.start(id, {
        cmd: toArgv(cmd),
        cwd: await resolveCwd(deps.provider, id, cwd),
        env,
      });
      return reply.status(201).send(info);
    },
  );

  app.get(
    '/v1/sandboxes/:id/processes',
    {
      schema: {
        tags: ['processes'],
        summary: 'List background processes',
        params: idParamsSchema,
        response: { 200: z.object({ processes: z.array(processSchema) }), ...errors },
      },
    },
    async (request) => {
      await service.get(request.params.id);
      return { processes: processes.list(request.params.id) };
    },
  );

  app.get(
    '/v1/sandboxes/:id/processes/:pid',
    {
      schema: {
        tags: ['processes'],
        summary: 'Get a background process (with its exit code once done)',
        params: processParamsSchema,
        response: { 200: processSchema, ...errors },
      },
    },
    async (request) => processes.get(request.params.id, request.params.pid),
  );

  app.get(
    '/v1/sandboxes/:id/processes/:pid/logs',
    {
      schema: {
        tags: ['processes'],
        summary:
          'Output of a background process (NDJSON, or SSE by Accept); follow=true streams until it ends',
        params: processParamsSchema,
        querystring: followQuerySchema,
        response: { ...errors },
      },
    },
    async (request, reply) => {
      const { id, pid } = request.params;
      processes.get(id, pid); // 404 before the stream starts
      await sendStream(request, reply, streamFormat(request), async function* (signal) {
        for await (const chunk of processes.logs(id, pid, {
          follow: request.query.follow ?? false,
          signal,
        })) {
          yield { data: { stream: chunk.stream, data: chunk.data.toString('utf8') } };
        }
        const info = processes.get(id, pid);
        if (!info.running) yield { event: 'exit', data: { exitCode: info.exitCode } };
      });
      return reply;
    },
  );

  app.post(
    '/v1/sandboxes/:id/processes/:pid/kill',
    {
      schema: {
        tags: ['processes'],
        summary: 'Signal a background process and its children (default TERM)',
        params: processParamsSchema,
        body: processKillSchema,
        response: { 200: processSchema, ...errors },
      },
    },
    async (request) => {
      const signal = (request.body?.signal ?? 'TERM').replace(/^SIG/, '');
      return processes.kill(request.params.id, request.params.pid, signal);
    },
  );
};
