import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { Agent, request as undiciRequest } from 'undici';
import { PreviewdError } from '../domain/errors.js';
import { isSandboxId } from '../domain/ids.js';
import { LOCAL_NODE, type NodeRecord } from '../domain/node.js';
import type { Store } from '../store/store.js';
import {
  encodeCaller,
  FORWARDED_BY_HEADER,
  forwardedBy,
  NODE_AUTH_HEADER,
  NODE_CALLER_HEADER,
  PLACED_HEADER,
} from './node-credential.js';
import type { NodeDirectory } from './node-directory.js';

/** Request headers not passed on to the owning node (hop-by-hop, the caller's own credentials, ours). */
const DROPPED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'authorization',
  'cookie',
  'content-length',
  NODE_AUTH_HEADER,
  NODE_CALLER_HEADER,
  FORWARDED_BY_HEADER,
  PLACED_HEADER,
]);
/** Response headers not passed back (Fastify sets its own framing). */
const DROPPED_BACK = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

export interface ForwardedAnswer {
  node: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface ApiForwardingDeps {
  self: string;
  store: Store;
  nodes: NodeDirectory;
  credential: string;
  timeoutMs: number;
  log: Logger;
}

/**
 * Any node answers any API call: a call about a sandbox of another node goes to that node's API,
 * carrying the node-to-node credential and the caller this node authenticated (never the caller's
 * own key or cookie). The owning node then applies its own checks and does the work, so locks,
 * processes, files and logs stay where the sandbox is.
 */
export class ApiForwarding {
  private readonly agent: Agent;
  private readonly wsProxy = createProxyServer({ xfwd: false, ws: true, changeOrigin: true });

  constructor(private readonly deps: ApiForwardingDeps) {
    this.agent = new Agent({
      connections: 64,
      // Nodes share a LAN: a node that takes longer than this to accept is taken for gone (a
      // create then spills to the next one).
      connect: { timeout: 3000 },
      headersTimeout: deps.timeoutMs,
      bodyTimeout: 0,
      keepAliveTimeout: 10_000,
    });
    this.wsProxy.on('error', (err) => deps.log.debug({ err }, 'forwarded WebSocket failed'));
  }

  /** Whether this request was forwarded here by another node (so it is never forwarded again). */
  isForwarded(headers: IncomingHttpHeaders): boolean {
    return forwardedBy(headers, this.deps.credential) !== undefined;
  }

  /** The node a create placed elsewhere was sent to (PLACED_HEADER on a forwarded request), if any. */
  placedHere(headers: IncomingHttpHeaders): boolean {
    return this.isForwarded(headers) && headers[PLACED_HEADER] === this.deps.self;
  }

  headersFor(request: FastifyRequest, extra: Record<string, string> = {}): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || DROPPED.has(name)) continue;
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    out[NODE_AUTH_HEADER] = this.deps.credential;
    out[FORWARDED_BY_HEADER] = this.deps.self;
    if (request.caller) out[NODE_CALLER_HEADER] = encodeCaller(request.caller);
    return { ...out, ...extra };
  }

  /** Sends the request on to `node`; the answer is not applied to any reply yet. */
  async send(
    request: FastifyRequest,
    node: NodeRecord,
    opts: { body?: string; extraHeaders?: Record<string, string> } = {},
  ): Promise<ForwardedAnswer> {
    const headers = this.headersFor(request, opts.extraHeaders);
    const hasBody = opts.body !== undefined || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(request.method);
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    else if (hasBody && request.headers['content-length'] !== undefined) {
      headers['content-length'] = String(request.headers['content-length']);
    }
    try {
      const answer = await undiciRequest(new URL(request.url, node.apiUrl), {
        method: request.method as 'GET',
        headers,
        body: opts.body ?? (hasBody ? request.raw : undefined),
        dispatcher: this.agent,
      });
      return { node: node.id, status: answer.statusCode, headers: answer.headers, body: answer.body };
    } catch (err) {
      this.deps.log.warn({ err, node: node.id, url: request.url }, 'forwarding to node failed');
      throw unavailable(node.id, err);
    }
  }

  /** Puts a node's answer on the reply (status, headers; the body is the caller's to send). */
  apply(reply: FastifyReply, answer: ForwardedAnswer): void {
    reply.status(answer.status);
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !DROPPED_BACK.has(name)) reply.header(name, value);
    }
    reply.header('x-previewd-node', answer.node);
  }

  /** Hands a WebSocket upgrade (the exec session) to `node`'s API, keeping the subprotocol. */
  relayUpgrade(request: FastifyRequest, reply: FastifyReply, node: NodeRecord): void {
    reply.hijack();
    const raw = request.raw;
    for (const name of [
      'authorization',
      'cookie',
      NODE_CALLER_HEADER,
      NODE_AUTH_HEADER,
      FORWARDED_BY_HEADER,
    ]) {
      delete raw.headers[name];
    }
    // The key offered as a subprotocol stays behind: the node credential stands for the caller.
    const offered = raw.headers['sec-websocket-protocol'];
    if (typeof offered === 'string') {
      raw.headers['sec-websocket-protocol'] = offered
        .split(',')
        .map((p) => p.trim())
        .filter((p) => !p.startsWith('previewd.key.'))
        .join(', ');
    }
    raw.headers[NODE_AUTH_HEADER] = this.deps.credential;
    raw.headers[FORWARDED_BY_HEADER] = this.deps.self;
    if (request.caller) raw.headers[NODE_CALLER_HEADER] = encodeCaller(request.caller);
    const socket = raw.socket;
    this.wsProxy.ws(raw, socket, Buffer.alloc(0), { target: node.apiUrl }, (err) => {
      this.deps.log.warn({ err, node: node.id }, 'forwarded WebSocket failed');
      socket.destroy();
    });
  }

  /**
   * For `/v1/sandboxes/:id…` routes: the row's node, when it is another node (and the request was
   * not itself forwarded: then it is answered here, whatever the row says).
   */
  async ownerElsewhere(request: FastifyRequest): Promise<string | undefined> {
    if (!request.routeOptions.url?.startsWith('/v1/sandboxes/:id')) return undefined;
    if (this.isForwarded(request.headers)) return undefined;
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string' || !isSandboxId(id.toLowerCase())) return undefined;
    const row = await this.deps.store.getSandbox(id.toLowerCase(), { includeDeleted: true });
    const node = row?.node ?? LOCAL_NODE;
    return row && node !== this.deps.self ? node : undefined;
  }

  async close(): Promise<void> {
    this.wsProxy.close();
    await this.agent.close();
  }
}

/** Routes about one sandbox that read only the shared store (never forwarded). */
const STORE_SERVED = new Set(['GET /v1/sandboxes/:id', 'GET /v1/sandboxes/:id/events']);

export function unavailable(node: string, cause?: unknown): PreviewdError {
  return new PreviewdError('node_unavailable', `node ${node} does not answer`, {
    headers: { 'Retry-After': '5' },
    details: { node, ...(cause instanceof Error ? { cause: cause.message.slice(0, 200) } : {}) },
  });
}

/**
 * The hook: after authentication and the tenant check (both already ran on this node, and run
 * again on the owner), a call about another node's sandbox is relayed there.
 */
export function installApiForwarding(
  app: FastifyInstance,
  forwarding: ApiForwarding,
  nodes: NodeDirectory,
): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!request.caller) return;
    const route = `${request.method} ${request.routeOptions.url}`;
    // The sandbox's row and its events are in the shared store: any node answers them, whatever
    // the state of the node that holds the sandbox.
    if (STORE_SERVED.has(route)) return;
    const owner = await forwarding.ownerElsewhere(request);
    if (!owner) return;
    const node = await nodes.live(owner);
    if (!node) {
      // Its node is gone (fenced off): the row can still be deleted here; the node removes what is
      // left of it (container, files) when it comes back (the reconciler's `deleted` row).
      if (route === 'DELETE /v1/sandboxes/:id') return;
      throw unavailable(owner);
    }
    if (request.ws) return forwarding.relayUpgrade(request, reply, node);
    const answer = await forwarding.send(request, node);
    forwarding.apply(reply, answer);
    reply.send(answer.body);
    return reply;
  });
  app.addHook('onClose', async () => forwarding.close());
}
