import { PreviewdError } from '../domain/errors.js';
import { NODE_ID_RE } from '../domain/node.js';
import type { AcquireNodeInput, RenewNodeInput } from './store.js';

/**
 * Bounds on what a node writes about itself, shared by every engine, so a bad heartbeat is a
 * stable `invalid_request` and never a half-written row.
 */
const MAX_LEASE_MS = 86_400_000;
const MAX_LABELS = 64;
const MAX_LABEL_LEN = 253;
const MAX_URL_LEN = 2048;

/** `now` as a canonical ISO string (so stored times compare as text), or invalid_request. */
export function isoTime(now: string, what = 'now'): string {
  const ms = typeof now === 'string' && now.length <= 64 ? Date.parse(now) : Number.NaN;
  if (!Number.isFinite(ms)) throw new PreviewdError('invalid_request', `${what} must be an ISO time`);
  return new Date(ms).toISOString();
}

/** The lease's end: `now + leaseMs`, after checking both. */
export function leaseEnd(now: string, leaseMs: number): string {
  if (!Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > MAX_LEASE_MS) {
    throw new PreviewdError('invalid_request', `leaseMs must be an integer in 1..${MAX_LEASE_MS}`);
  }
  return new Date(Date.parse(isoTime(now)) + leaseMs).toISOString();
}

export function checkNodeId(id: string): void {
  if (typeof id !== 'string' || !NODE_ID_RE.test(id)) {
    throw new PreviewdError('invalid_request', 'node id must match [a-z0-9][a-z0-9-]{0,62}');
  }
}

export function checkLabels(labels: Record<string, string>): void {
  const entries = Object.entries(labels ?? {});
  if (entries.length > MAX_LABELS)
    throw new PreviewdError('invalid_request', `at most ${MAX_LABELS} node labels`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || k.length === 0 || k.length > MAX_LABEL_LEN || v.length > MAX_LABEL_LEN) {
      throw new PreviewdError('invalid_request', `node label ${k.slice(0, 40)} is not a short string`);
    }
  }
}

function checkCounts(what: string, o: Record<string, number>): void {
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isInteger(v) || v < 0 || v > 1e12) {
      throw new PreviewdError('invalid_request', `${what}.${k} must be a non-negative integer`);
    }
  }
}

export function checkAcquire(input: AcquireNodeInput): void {
  checkNodeId(input.id);
  for (const [k, url] of [
    ['apiUrl', input.apiUrl],
    ['edgeUrl', input.edgeUrl],
  ] as const) {
    if (typeof url !== 'string' || url.length > MAX_URL_LEN || !URL.canParse(url)) {
      throw new PreviewdError('invalid_request', `${k} must be a URL`);
    }
  }
  checkLabels(input.labels);
  checkCounts('capacity', input.capacity);
  checkCounts('usage', input.usage);
}

export function checkRenew(input: RenewNodeInput): void {
  checkCounts('usage', input.usage);
  if (input.labels) checkLabels(input.labels);
}
