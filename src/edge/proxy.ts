import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { Pool } from 'undici';

export interface Upstream {
  host: string;
  port: number;
}

export type ProxyErrorHandler = (err: Error & { code?: string }) => void;

/** Response headers that describe the upstream connection, not the response. */
const HOP_BY_HOP_RESPONSE = [
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'upgrade',
  'trailer',
];

/**
 * The proxying itself, done by kept libraries: HTTP through undici (one keep-alive pool per
 * upstream, bodies streamed both ways with backpressure), WebSocket upgrades through
 * http-proxy-3. The Host header is passed through unchanged; X-Forwarded-* and request hop-by-hop
 * headers are handled by the edge before calling in.
 */
export class UpstreamProxy {
  private readonly proxy = createProxyServer({ xfwd: false, ws: true, changeOrigin: false });
  private readonly pools = new Map<string, Pool>();

  /**
   * `headersTimeoutMs`: how long an upstream may take to send its answer's head (0, the default:
   * as long as it likes — an app's streams may idle; a peer edge holding a request is bounded).
   */
  constructor(private readonly opts: { headersTimeoutMs?: number } = {}) {
    // Errors are handled per call; this keeps a stray one from becoming an uncaught exception.
    this.proxy.on('error', () => undefined);
  }

  private pool(upstream: Upstream): Pool {
    const key = `${upstream.host}:${upstream.port}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(`http://${key}`, {
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        // Streams (SSE, long downloads, slow uploads) may idle for as long as the app likes.
        headersTimeout: this.opts.headersTimeoutMs ?? 0,
        bodyTimeout: 0,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  web(req: IncomingMessage, res: ServerResponse, upstream: Upstream, onError: ProxyErrorHandler): void {
    let headers = req.headers;
    const hasBody = headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
    if (headers['transfer-encoding'] !== undefined || headers.expect !== undefined) {
      // undici frames the body itself; node:http has already answered 100-continue.
      const { 'transfer-encoding': _te, expect: _expect, ...rest } = headers;
      headers = rest;
    }
    this.pool(upstream).stream(
      {
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as 'GET',
        headers: headers as Record<string, string>,
        body: hasBody ? req : null,
      },
      ({ statusCode, headers: upstreamHeaders }) => {
        const out = upstreamHeaders as OutgoingHttpHeaders;
        for (const name of HOP_BY_HOP_RESPONSE) delete out[name];
        res.writeHead(statusCode, out);
        return res;
      },
      (err) => {
        if (!err) return;
        if (res.headersSent) res.destroy();
        else onError(err as Error & { code?: string });
      },
    );
  }

  ws(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    upstream: Upstream,
    onError: ProxyErrorHandler,
  ): void {
    this.proxy.ws(
      req,
      socket as never,
      head,
      { target: { host: upstream.host, port: upstream.port } },
      onError as never,
    );
  }

  /**
   * Retires the pool of an upstream (its sandbox changed state or moved): requests in flight
   * finish, idle connections close, the next request opens a new pool.
   */
  forget(upstream: Upstream): void {
    const key = `${upstream.host}:${upstream.port}`;
    const pool = this.pools.get(key);
    this.pools.delete(key);
    pool?.close().catch(() => undefined);
  }

  close(): void {
    for (const pool of this.pools.values()) void pool.destroy();
    this.pools.clear();
  }
}
