import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { PreviewdError } from '../domain/errors.js';
import { failRequest, rejectUpgrade } from './edge-answers.js';
import {
  type EdgeCluster,
  FORWARDED_BY_HEADER,
  FORWARDED_CLIENT_HEADER,
  FORWARDED_PROTO_HEADER,
  NODE_AUTH_HEADER,
  type RequestOrigin,
} from './edge-cluster.js';
import { isForwardingHeader, stripHopByHop } from './edge-request-headers.js';
import { sendError } from './pages.js';
import { type Upstream, UpstreamProxy } from './proxy.js';
import type { Route } from './route-table.js';

const RETRY_AFTER = { 'Retry-After': '5' };
const NODE_HEADERS = new Set<string>([
  NODE_AUTH_HEADER,
  FORWARDED_BY_HEADER,
  FORWARDED_CLIENT_HEADER,
  FORWARDED_PROTO_HEADER,
]);

/** The answer when the sandbox's node cannot be reached (the node is logged, not told). */
export function nodeUnavailable(): PreviewdError {
  return new PreviewdError('node_unavailable', 'the node that runs this sandbox does not answer', {
    headers: RETRY_AFTER,
  });
}

/** The peer edge's address from its base URL (plain HTTP only); undefined when it is none. */
export function peerAddress(url: string): Upstream | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' || !parsed.hostname) return undefined;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: parsed.port ? Number(parsed.port) : 80 };
}

/**
 * Hands a preview request for another node's sandbox to that node's edge, whole: HTTP with its
 * body streamed both ways, or a WebSocket upgrade, with the client's Host. The owning edge does
 * everything else (token check, wake, activity, access log, metrics); this one only forwards, so
 * it tells nothing about the sandbox itself. One keep-alive pool per peer edge.
 */
export class EdgeForwarder {
  private readonly proxy: UpstreamProxy;

  constructor(
    private readonly deps: {
      cluster: EdgeCluster;
      log: Logger;
      /** How long the peer may take to send the answer's head. */
      timeoutMs: number;
    },
  ) {
    this.proxy = new UpstreamProxy({ headersTimeoutMs: deps.timeoutMs });
  }

  /**
   * Hands the request on when the route is another node's (true: answered here or there). A
   * request already forwarded is never forwarded again, so two nodes that disagree cannot loop.
   */
  web(req: IncomingMessage, res: ServerResponse, route: Route, origin: RequestOrigin): boolean {
    const decision = this.decide(route, origin);
    if (decision instanceof PreviewdError) sendError(req, res, decision);
    else if (decision === 'forward') this.forwardWeb(req, res, route.node, origin);
    return decision !== undefined;
  }

  /** The same for a WebSocket upgrade. */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, origin: RequestOrigin): boolean {
    const decision = this.decide(route, origin);
    if (decision instanceof PreviewdError) rejectUpgrade(socket, decision);
    else if (decision === 'forward') this.forwardWs(req, socket, head, route.node, origin);
    return decision !== undefined;
  }

  private decide(route: Route, origin: RequestOrigin): PreviewdError | 'forward' | undefined {
    const { cluster, log } = this.deps;
    if (route.node === cluster.self) return undefined;
    if (!origin.peer) return 'forward';
    log.warn(
      { sandboxId: route.id, node: route.node, self: cluster.self },
      'edge: a forwarded request for a sandbox of another node',
    );
    return new PreviewdError('node_unavailable', 'this sandbox is not served by the node it was sent to', {
      headers: RETRY_AFTER,
    });
  }

  private forwardWeb(req: IncomingMessage, res: ServerResponse, node: string, origin: RequestOrigin): void {
    this.prepare(req, origin.secure, false, origin.client);
    this.peer(node).then(
      (upstream) =>
        this.proxy.web(req, res, upstream, (err) => {
          this.failed(upstream, node, err);
          failRequest(this.deps.log, req, res, nodeUnavailable());
        }),
      (err) => failRequest(this.deps.log, req, res, err),
    );
  }

  private forwardWs(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    node: string,
    origin: RequestOrigin,
  ): void {
    this.prepare(req, origin.secure, true, origin.client);
    this.peer(node).then(
      (upstream) =>
        this.proxy.ws(req, socket, head, upstream, (err) => {
          this.failed(upstream, node, err);
          rejectUpgrade(socket, nodeUnavailable());
        }),
      (err) => rejectUpgrade(socket, err),
    );
  }

  close(): void {
    this.proxy.close();
  }

  private async peer(node: string): Promise<Upstream> {
    const url = await this.deps.cluster.edgeUrl(node).catch((err: unknown) => {
      this.deps.log.warn({ err, node }, 'edge: no address for a node');
      return undefined;
    });
    const upstream = url ? peerAddress(url) : undefined;
    if (!upstream) {
      this.deps.log.warn(
        { node, url },
        'edge: the node of a sandbox is unknown, down, or has no http:// edge',
      );
      throw nodeUnavailable();
    }
    return upstream;
  }

  private failed(upstream: Upstream, node: string, err: Error & { code?: string }): void {
    this.deps.log.warn({ node, code: err.code, err: err.message }, 'edge: forwarding to a node failed');
    if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH') this.proxy.forget(upstream);
  }

  /**
   * The client's headers as the owning edge needs them (a preview token among them): hop-by-hop,
   * forwarding and node headers dropped, then the node credential, this node, and the client's
   * address and scheme as this edge took them.
   */
  private prepare(req: IncomingMessage, secure: boolean, upgrade: boolean, client: string | undefined): void {
    const h = req.headers;
    stripHopByHop(h, upgrade);
    for (const name of Object.keys(h)) {
      if (isForwardingHeader(name) || NODE_HEADERS.has(name)) delete h[name];
    }
    h[NODE_AUTH_HEADER] = this.deps.cluster.credential;
    h[FORWARDED_BY_HEADER] = this.deps.cluster.self;
    const remote = client ?? req.socket.remoteAddress;
    if (remote) h[FORWARDED_CLIENT_HEADER] = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
    h[FORWARDED_PROTO_HEADER] = secure ? 'https' : 'http';
  }
}
