/**
 * A `fetch` for the SDK that sends every request through this API's own Fastify pipeline
 * (`app.inject`: no socket, no listen address needed) as the caller of /mcp: the caller's own
 * credentials (Authorization, or the dashboard cookie with its Origin), the X-Previewd-Owner it
 * sent, its Host and its client address. Each tool call is then authenticated, rate-limited,
 * tenant-checked, validated, forwarded to the owning node and error-mapped exactly like the same
 * REST call from that caller: it can never do more than the caller could.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The caller's headers a tool call carries on; nothing else of the /mcp request is passed. */
const CALLER_HEADERS = [
  'authorization',
  'cookie',
  'origin',
  'x-previewd-owner',
  'host',
  'user-agent',
] as const;

type InjectMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

export function callerFetch(app: FastifyInstance, request: FastifyRequest): typeof fetch {
  const caller: Record<string, string> = {};
  for (const name of CALLER_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') caller[name] = value;
  }
  const remoteAddress = request.ip;
  const injectFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    // The caller's credentials win over anything the SDK would set (it is given none).
    Object.assign(headers, caller);
    const answer = await app.inject({
      method: (init.method ?? 'GET').toUpperCase() as InjectMethod,
      url: `${url.pathname}${url.search}`,
      headers,
      payload: payloadOf(init.body),
      remoteAddress,
    });
    const out = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
    }
    const bodyless = answer.statusCode === 204 || answer.statusCode === 304 || init.method === 'HEAD';
    return new Response(bodyless ? null : new Uint8Array(answer.rawPayload), {
      status: answer.statusCode,
      headers: out,
    });
  };
  return injectFetch as typeof fetch;
}

function payloadOf(body: RequestInit['body']): string | Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  // The SDK sends JSON text or bytes only (packages/sdk/src/http.ts); anything else is a bug here.
  throw new TypeError('the MCP tools send only text or bytes to the API');
}
