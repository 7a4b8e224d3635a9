import type { FastifyReply, FastifyRequest } from 'fastify';

export type StreamFormat = 'ndjson' | 'sse';

/** One item of a streamed answer; `id` and `event` are used by SSE only. */
export interface StreamItem {
  id?: number;
  event?: string;
  data: unknown;
}

/** SSE when the client asks for text/event-stream, NDJSON otherwise. */
export function streamFormat(request: FastifyRequest): StreamFormat {
  return /text\/event-stream/i.test(request.headers.accept ?? '') ? 'sse' : 'ndjson';
}

function encode(format: StreamFormat, item: StreamItem): string {
  const json = JSON.stringify(item.data);
  if (format === 'ndjson') return `${json}\n`;
  let out = '';
  if (item.id !== undefined) out += `id: ${item.id}\n`;
  if (item.event) out += `event: ${item.event}\n`;
  return `${out}data: ${json}\n\n`;
}

/**
 * Writes a stream of items as NDJSON or Server-Sent Events, taking the response over from
 * Fastify. `produce` gets an AbortSignal that fires when the client goes away; it should stop
 * and release what it holds then. SSE answers get a keep-alive comment every `keepAliveMs`.
 */
export async function sendStream(
  request: FastifyRequest,
  reply: FastifyReply,
  format: StreamFormat,
  produce: (signal: AbortSignal) => AsyncIterable<StreamItem>,
  opts: { keepAliveMs?: number } = {},
): Promise<void> {
  const controller = new AbortController();
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    'content-type': format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  const onClose = () => controller.abort();
  res.on('close', onClose);
  let keepAlive: NodeJS.Timeout | undefined;
  if (format === 'sse') {
    res.write('retry: 2000\n\n');
    keepAlive = setInterval(() => res.write(': keep-alive\n\n'), opts.keepAliveMs ?? 15_000);
    keepAlive.unref();
  }
  try {
    for await (const item of produce(controller.signal)) {
      if (controller.signal.aborted) break;
      if (!res.write(encode(format, item))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) {
      const error = (err as { toBody?: () => unknown }).toBody?.() ?? {
        error: { code: 'internal', message: 'stream failed' },
      };
      res.write(encode(format, { event: 'error', data: error }));
      request.log.warn({ err }, 'stream failed');
    }
  } finally {
    if (keepAlive) clearInterval(keepAlive);
    res.off('close', onClose);
    controller.abort();
    res.end();
  }
}
