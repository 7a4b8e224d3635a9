import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The other nodes, as the edge needs them to forward a preview to its sandbox's node. */
export interface EdgeCluster {
  /** This node's id. */
  self: string;
  /** Base URL (http://host:port) of a node's built-in edge; undefined when unknown or down. */
  edgeUrl(node: string): Promise<string | undefined>;
  /** Secret proving a request came from another node (header x-previewd-node-auth). */
  credential: string;
}

/** The node-to-node credential on a forwarded request. */
export const NODE_AUTH_HEADER = 'x-previewd-node-auth';
/** The node that forwarded the request. */
export const FORWARDED_BY_HEADER = 'x-previewd-forwarded-by';
/** The client's address as the forwarding edge saw it. */
export const FORWARDED_CLIENT_HEADER = 'x-previewd-client';
/** `https` when the client reached the forwarding edge over TLS. */
export const FORWARDED_PROTO_HEADER = 'x-previewd-proto';

/** A request another node's edge forwarded (its credential checked). */
export interface PeerRequest {
  /** The forwarding node. */
  by: string;
  /** The client's address as the forwarding edge saw it. */
  client?: string;
  /** Whether the client came over TLS. */
  secure: boolean;
}

/** Where a request came from: its scheme and client as this edge should take them. */
export interface RequestOrigin {
  secure: boolean;
  /** The client's address when a front or a peer edge named it (else the socket's peer). */
  client?: string;
  /** Forwarded by another node's edge (its credential checked): never forwarded again. */
  peer: boolean;
}

const MAX_HEADER = 256;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Whether `presented` is the cluster's credential (compared in constant time). */
export function validCredential(cluster: EdgeCluster, presented: string | string[] | undefined): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 4096) return false;
  if (cluster.credential.length === 0) return false;
  return timingSafeEqual(digest(presented), digest(cluster.credential));
}

function bounded(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_HEADER ? value : undefined;
}

/**
 * A request that came from another node: its credential is the cluster's. Otherwise undefined,
 * and whatever a client put in the forwarding headers is never trusted (the edge strips every
 * `x-previewd-*` header before the app sees a request).
 */
export function peerRequest(cluster: EdgeCluster | undefined, req: IncomingMessage): PeerRequest | undefined {
  if (!cluster || !validCredential(cluster, req.headers[NODE_AUTH_HEADER])) return undefined;
  return {
    by: bounded(req.headers[FORWARDED_BY_HEADER]) ?? 'unknown',
    client: bounded(req.headers[FORWARDED_CLIENT_HEADER]),
    secure: req.headers[FORWARDED_PROTO_HEADER] === 'https',
  };
}
