import { posix } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { PreviewdError } from '../../domain/errors.js';
import { commandSchema, execResultSchema, execSchema } from '../../domain/io-schemas.js';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import type { ExecSession, OutputChunk, SandboxProvider } from '../../providers/provider.js';
import { toPreviewdError } from '../error-handler.js';
import { type StreamItem, sendStream } from '../streaming.js';
import { holdWhileAnswering, type IoRouteDeps, recordActivity } from './io-context.js';

/** A string runs through `sh -c`; an array is argv. */
export function toArgv(cmd: string | string[]): string[] {
  return typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd;
}

/** Working directory inside the sandbox: relative paths are under /workspace. */
export function toCwd(cwd: string | undefined): string | undefined {
  if (cwd === undefined || cwd === '') return undefined;
  if (cwd.includes('\0')) throw new PreviewdError('invalid_path', 'cwd contains a NUL byte');
  return posix.resolve('/workspace', cwd);
}

/**
 * toCwd, plus a clear error when a directory under /workspace does not exist (the engine would
 * only say "OCI runtime exec failed"). Paths outside the workspace are the container's business.
 */
export async function resolveCwd(
  provider: SandboxProvider,
  sandboxId: string,
  cwd: string | undefined,
): Promise<string | undefined> {
  const resolved = toCwd(cwd);
  if (resolved === undefined || !(resolved === '/workspace' || resolved.startsWith('/workspace/'))) {
    return resolved;
  }
  const entry = await provider
    .files(sandboxId)
    .stat(resolved)
    .catch(() => undefined);
  if (entry?.type !== 'directory' && entry?.type !== 'symlink') {
    throw new PreviewdError('invalid_path', `cwd ${resolved} is not a directory in the sandbox`);
  }
  return resolved;
}

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  408: errorBodySchema,
  409: errorBodySchema,
};

const wsStartSchema = z.strictObject({
  type: z.literal('start'),
  cmd: commandSchema,
  cwd: z.string().max(4096).optional(),
  env: z.record(z.string(), z.string()).optional(),
  tty: z
    .union([
      z.boolean(),
      z.strictObject({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
    ])
    .optional(),
});

const wsControlSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('stdin'), data: z.string() }),
  z.strictObject({ type: z.literal('eof') }),
  z.strictObject({
    type: z.literal('resize'),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  }),
  z.strictObject({ type: z.literal('signal'), signal: z.string().regex(/^(SIG)?[A-Z0-9]+$/) }),
]);

/**
 * Commands in a sandbox: buffered (`{ exitCode, stdout, stderr }`), streamed as NDJSON when the
 * client accepts application/x-ndjson, or interactive over a WebSocket (stdin, PTY resize, signals).
 * A paused sandbox is resumed first, and so is one previewd stopped on its own (idle, capacity);
 * one stopped by a client answers sandbox_not_running.
 */
export const execRoutes: FastifyPluginAsyncZod<IoRouteDeps> = async (app, deps) => {
  const { service, provider, config } = deps;
  recordActivity(app, deps.activity);
  holdWhileAnswering(app, deps.activity);

  app.post(
    '/v1/sandboxes/:id/exec',
    {
      schema: {
        tags: ['exec'],
        summary: 'Run a command',
        description:
          'A non-zero exit is a result, not an error. With `Accept: application/x-ndjson` the output streams as ' +
          '`{ "stream": "stdout"|"stderr", "data": "…" }` lines in order, ending with `{ "exitCode": n }`.',
        params: idParamsSchema,
        body: execSchema,
        response: { 200: execResultSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { cmd, cwd, env, stdin } = request.body;
      const timeoutSec = request.body.timeoutSec ?? config.io.execTimeoutSec;
      await service.ensureRunningForExec(id);
      const opts = { cmd: toArgv(cmd), cwd: await resolveCwd(provider, id, cwd), env };
      if (!/application\/x-ndjson/i.test(request.headers.accept ?? '')) {
        const maxOutputBytes = config.io.execOutputMb * 1024 * 1024;
        const result = await provider.exec(id, { ...opts, stdin, timeoutSec, maxOutputBytes });
        return {
          ...(result.truncated ? { truncated: true } : {}),
          exitCode: result.exitCode,
          stdout: result.stdout.toString('utf8'),
          stderr: result.stderr.toString('utf8'),
          durationMs: result.durationMs,
        };
      }
      const session = await provider.startExec(id, { ...opts, stdin: stdin !== undefined });
      if (stdin !== undefined) session.stdin?.end(stdin);
      await sendStream(request, reply, 'ndjson', (signal) => streamExec(session, timeoutSec, signal));
      return reply;
    },
  );

  // WebSocket sessions go through the router like any route: the same auth, tenancy and id
  // checks run before the upgrade is accepted (@fastify/websocket).
  app.get(
    '/v1/sandboxes/:id/exec/ws',
    {
      websocket: true,
      schema: {
        tags: ['exec'],
        summary: 'Interactive command over a WebSocket (upgrade)',
        description:
          'Send `Authorization: Bearer <key>`, or offer the subprotocols `previewd` and `previewd.key.<key>` ' +
          '(browsers cannot set headers), or the dashboard session cookie. First message ' +
          '`{ "type": "start", "cmd", "cwd"?, "env"?, "tty"? }`; then stdin, resize, signal, eof.',
        params: idParamsSchema,
        response: { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema },
      },
    },
    (ws, request) => {
      const { id } = request.params as { id: string };
      deps.activity.socketOpened?.(id);
      const release = deps.activity.hold?.(id);
      ws.once('close', () => {
        deps.activity.socketClosed?.(id);
        release?.();
      });
      void interactive(ws, id).catch((err) => app.log.warn({ err }, 'exec session failed'));
    },
  );

  const interactive = async (ws: WebSocket, id: string): Promise<void> => {
    const send = (msg: unknown) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
    };
    const fail = (err: unknown) => {
      const perr = toPreviewdError(err);
      send({ type: 'error', ...perr.toBody() });
      ws.close(1011, perr.code);
    };
    let session: ExecSession | undefined;
    let ended = false;
    const pendingInput: RawData[] = [];
    ws.on('close', () => {
      if (!ended) void session?.signal('KILL').catch(() => undefined);
    });
    const onMessage = (raw: RawData, isBinary: boolean) => {
      if (!session) {
        pendingInput.push(raw);
        return;
      }
      if (isBinary) {
        session.stdin?.write(Buffer.isBuffer(raw) ? raw : Buffer.from(raw as ArrayBuffer));
        return;
      }
      let parsed: z.infer<typeof wsControlSchema>;
      try {
        parsed = wsControlSchema.parse(JSON.parse(raw.toString()));
      } catch {
        send({ type: 'error', error: { code: 'invalid_request', message: 'unknown message' } });
        return;
      }
      if (parsed.type === 'stdin') session.stdin?.write(parsed.data);
      else if (parsed.type === 'eof') session.stdin?.end();
      else if (parsed.type === 'resize') void session.resize(parsed.cols, parsed.rows);
      else void session.signal(parsed.signal.replace(/^SIG/, '')).catch(() => undefined);
    };
    const first = await new Promise<RawData | undefined>((resolve) => {
      ws.once('message', (raw) => resolve(raw));
      ws.once('close', () => resolve(undefined));
    });
    if (first === undefined) return;
    ws.on('message', onMessage);
    let start: z.infer<typeof wsStartSchema>;
    try {
      start = wsStartSchema.parse(JSON.parse(first.toString()));
    } catch {
      fail(new PreviewdError('invalid_request', 'the first message must be {"type":"start","cmd":…}'));
      return;
    }
    try {
      await service.ensureRunningForExec(id);
      const tty = start.tty === true ? { cols: 80, rows: 24 } : start.tty || undefined;
      session = await provider.startExec(id, {
        cmd: toArgv(start.cmd),
        cwd: await resolveCwd(provider, id, start.cwd),
        env: start.env,
        stdin: true,
        tty,
      });
    } catch (err) {
      fail(err);
      return;
    }
    if (ws.readyState !== ws.OPEN) {
      void session.signal('KILL').catch(() => undefined);
      return;
    }
    send({ type: 'started', id: session.id });
    for (const raw of pendingInput.splice(0)) onMessage(raw, false);
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    try {
      for await (const chunk of session.output as AsyncIterable<OutputChunk>) {
        const data = decoders[chunk.stream].write(chunk.data);
        if (data) send({ type: chunk.stream, data });
      }
      ended = true;
      send({ type: 'exit', exitCode: await session.exitCode() });
      ws.close(1000);
    } catch (err) {
      ended = true;
      fail(err);
    }
  };
};

async function* streamExec(
  session: ExecSession,
  timeoutSec: number,
  signal: AbortSignal,
): AsyncGenerator<StreamItem> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void session.signal('KILL').catch(() => undefined);
  }, timeoutSec * 1000);
  // A client that goes away takes its command with it.
  const onAbort = () => void session.signal('KILL').catch(() => undefined);
  signal.addEventListener('abort', onAbort);
  let ended = false;
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  try {
    for await (const chunk of session.output as AsyncIterable<OutputChunk>) {
      const data = decoders[chunk.stream].write(chunk.data);
      if (data) yield { data: { stream: chunk.stream, data } };
    }
    ended = true;
    const exitCode = await session.exitCode();
    if (timedOut) {
      const err = new PreviewdError(
        'exec_timeout',
        `the command ran longer than ${timeoutSec}s and was killed`,
      );
      yield { data: { ...err.toBody(), exitCode } };
    } else {
      yield { data: { exitCode } };
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    if (!ended) void session.signal('KILL').catch(() => undefined);
  }
}
