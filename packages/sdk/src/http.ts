import { ConnectionError, errorFromBody } from './errors.js';

export type QueryValue = string | number | boolean | undefined | null | readonly string[];

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** JSON-encoded unless it is a string, bytes or a Blob (sent raw). */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface HttpOptions {
  url: string;
  apiKey?: string;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  /** Sent as X-Previewd-Owner on every request. */
  owner?: string;
}

/** The header that names the end user an admin key acts for. */
export const OWNER_HEADER = 'x-previewd-owner';

/** The one place the SDK talks HTTP: bearer key, JSON in and out, typed errors. */
export class Http {
  readonly baseUrl: string;
  readonly apiKey?: string;
  /** The end user every request acts for (X-Previewd-Owner), if any. */
  readonly owner?: string;
  private readonly fetchFn: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(opts: HttpOptions) {
    this.baseUrl = opts.url.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.owner = opts.owner;
    this.fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.headers = opts.headers ?? {};
  }

  url(path: string, query?: Record<string, QueryValue>): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const v of value) params.append(key, v);
      else params.append(key, String(value));
    }
    const qs = params.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends a request; a non-2xx answer throws the typed error of its code. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...opts.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (this.owner) headers[OWNER_HEADER] = this.owner;
    let body: RequestInit['body'];
    if (opts.body !== undefined) {
      if (
        typeof opts.body === 'string' ||
        opts.body instanceof Uint8Array ||
        opts.body instanceof ArrayBuffer ||
        (typeof Blob !== 'undefined' && opts.body instanceof Blob)
      ) {
        body = opts.body as RequestInit['body'];
        headers['content-type'] ??= 'application/octet-stream';
      } else {
        body = JSON.stringify(opts.body);
        headers['content-type'] = 'application/json';
      }
    }
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), { method, headers, body, signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new ConnectionError(
        'connection_failed',
        `cannot reach previewd at ${this.baseUrl}: ${describe(err)}`,
        {
          hint: 'Is the server running (previewd serve)? Check the url (PREVIEWD_URL).',
          cause: err,
        },
      );
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: errorFromBody reports it as unexpected
      }
      throw errorFromBody(res.status, parsed, res.headers.get('retry-after'));
    }
    return res;
  }

  /** JSON answer (undefined for 204). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A streaming answer's body. */
  async stream(method: string, path: string, accept: string, opts: RequestOptions = {}) {
    const res = await this.send(method, path, { ...opts, headers: { accept, ...opts.headers } });
    if (!res.body) throw new ConnectionError('connection_failed', 'the answer has no body');
    return res.body;
  }
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
}
