import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { Caller } from '../api/key-ring.js';
import type { Config } from '../config/schema.js';
import { OWNER_RE } from '../domain/credentials.js';
import { PreviewdError } from '../domain/errors.js';
import { NODE_ID_RE } from '../domain/node.js';

/** Proves a request comes from another node of the cluster (API forwarding and edge forwarding alike). */
export const NODE_AUTH_HEADER = 'x-previewd-node-auth';
/** The caller the entry node authenticated, on a forwarded API call (read only with a valid credential). */
export const NODE_CALLER_HEADER = 'x-previewd-node-caller';
/** The node that forwarded the request: a forwarded request is never forwarded again. */
export const FORWARDED_BY_HEADER = 'x-previewd-forwarded-by';
/** On a forwarded create: the node it was placed on, which creates it itself. */
export const PLACED_HEADER = 'x-previewd-placed';

/**
 * The node-to-node credential: derived from the cluster secret (never the secret itself, never a
 * tenant's key), the same on every node.
 */
export function nodeCredential(secret: string): string {
  return createHmac('sha256', secret).update('previewd node-to-node v1').digest('base64url');
}

export function clusterSecret(config: Config): string {
  const { secret, secretFile } = config.cluster;
  const value = secret ?? (secretFile ? readFileSync(secretFile, 'utf8').trim() : undefined);
  if (!value || value.length < 32) {
    throw new PreviewdError(
      'invalid_request',
      'cluster.enabled needs a node-to-node secret of at least 32 characters',
      { hint: 'Set PREVIEWD_CLUSTER_SECRET (the same on every node) or PREVIEWD_CLUSTER_SECRET_FILE.' },
    );
  }
  return value;
}

export function credentialMatches(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const callerSchema = z.strictObject({
  keyId: z.string().min(1).max(128),
  role: z.enum(['admin', 'tenant']),
  owner: z.string().regex(OWNER_RE).optional(),
  via: z.enum(['key', 'session']),
});

export function encodeCaller(caller: Caller): string {
  return Buffer.from(JSON.stringify(caller)).toString('base64url');
}

/**
 * The caller of a request another node forwarded, or undefined when the request carries no node
 * credential. A wrong credential is refused (`unauthorized`), never passed over: the forwarded
 * caller header is believed only behind a right one.
 */
export function forwardedCaller(
  headers: IncomingHttpHeaders,
  credential: string | undefined,
): Caller | undefined {
  const given = headers[NODE_AUTH_HEADER];
  if (given === undefined) return undefined;
  if (!credential || !credentialMatches(given, credential)) {
    throw new PreviewdError('unauthorized', 'wrong node-to-node credential');
  }
  const raw = headers[NODE_CALLER_HEADER];
  try {
    if (typeof raw !== 'string' || raw.length > 2048) throw new Error('missing');
    return callerSchema.parse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))) as Caller;
  } catch {
    throw new PreviewdError('unauthorized', 'a forwarded request without a readable caller');
  }
}

/** The forwarding node's id, when the request carries a right credential. */
export function forwardedBy(
  headers: IncomingHttpHeaders,
  credential: string | undefined,
): string | undefined {
  if (!credential || !credentialMatches(headers[NODE_AUTH_HEADER], credential)) return undefined;
  const by = headers[FORWARDED_BY_HEADER];
  return typeof by === 'string' && NODE_ID_RE.test(by) ? by : undefined;
}
