import { Agent, request } from 'undici';
import { type Resolve, resolveTarget } from './target-policy.js';

/** The bytes of an answer read at most (the rest is dropped with the connection). */
export const RESPONSE_READ_LIMIT = 4096;

export interface SendInput {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  allowPrivate: boolean;
  resolve?: Resolve;
}

export interface SendResult {
  /** The answer's status, when one came. */
  statusCode?: number;
  /** Why the attempt failed without an answer (or was refused before connecting). */
  error?: string;
  /** Whether the target policy refused it (no connection was made). */
  refused?: boolean;
  durationMs: number;
}

/**
 * One POST of a delivery: the target is resolved and checked, and the connection goes to exactly
 * the checked address (the lookup is pinned; TLS still verifies the certificate for the host
 * name). No redirect is followed (a 3xx is a failed attempt), the whole attempt is bounded by
 * `timeoutMs`, and at most RESPONSE_READ_LIMIT bytes of the answer are read.
 */
export async function sendDelivery(input: SendInput): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let target: Awaited<ReturnType<typeof resolveTarget>>;
  try {
    target = await resolveTarget(input.url, { allowPrivate: input.allowPrivate, resolve: input.resolve });
  } catch (err) {
    return { error: (err as Error).message, refused: true, durationMs: elapsed() };
  }
  const agent = new Agent({
    connections: 1,
    pipelining: 0,
    connect: {
      timeout: input.timeoutMs,
      // The address checked above, whatever the name resolves to now.
      lookup: (_host, _opts, cb) => cb(null, [{ address: target.address, family: target.family }]),
    },
    headersTimeout: input.timeoutMs,
    bodyTimeout: input.timeoutMs,
  });
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new Error(`no answer within ${input.timeoutMs} ms`)),
    input.timeoutMs,
  );
  try {
    const res = await request(target.url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'user-agent': 'previewd-webhooks', ...input.headers },
      body: input.body,
      signal: abort.signal,
    });
    let read = 0;
    try {
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length;
        if (read >= RESPONSE_READ_LIMIT) break;
      }
    } catch {
      // the answer's status is what counts
    }
    res.body.destroy();
    return { statusCode: res.statusCode, durationMs: elapsed() };
  } catch (err) {
    const e = err as { code?: string; message?: string; cause?: { message?: string } };
    const reason = abort.signal.aborted
      ? `no answer within ${input.timeoutMs} ms`
      : (e.code ?? e.message ?? 'error');
    return { error: String(reason).slice(0, 200), durationMs: elapsed() };
  } finally {
    clearTimeout(timer);
    await agent.destroy().catch(() => undefined);
  }
}
