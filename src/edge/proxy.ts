import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';

export interface Upstream {
  host: string;
  port: number;
}

export type ProxyErrorHandler = (err: Error & { code?: string }) => void;

/**
 * The proxying itself, done by http-proxy-3: HTTP/1.1 with one keep-alive agent per upstream,
 * bodies streamed both ways, WebSocket upgrades piped. The Host header is passed through
 * unchanged (changeOrigin off); X-Forwarded-* are set by the edge before calling in.
 */
export class UpstreamProxy {
  private readonly proxy = createProxyServer({ xfwd: false, ws: true, changeOrigin: false });
  private readonly agents = new Map<string, Agent>();

  constructor() {
    // Errors are handled per call; this keeps a stray one from becoming an uncaught exception.
    this.proxy.on('error', () => undefined);
  }

  private agent(upstream: Upstream): Agent {
    const key = `${upstream.host}:${upstream.port}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 128, scheduling: 'lifo' });
      this.agents.set(key, agent);
    }
    return agent;
  }

  web(req: IncomingMessage, res: ServerResponse, upstream: Upstream, onError: ProxyErrorHandler): void {
    this.proxy.web(
      req,
      res,
      { target: { host: upstream.host, port: upstream.port }, agent: this.agent(upstream) },
      onError as never,
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

  /** Drops the pooled connections to an upstream (its sandbox stopped or moved). */
  forget(upstream: Upstream): void {
    const key = `${upstream.host}:${upstream.port}`;
    this.agents.get(key)?.destroy();
    this.agents.delete(key);
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
