import type {
  CreateSandboxRequest,
  ListSandboxesQuery,
  SandboxInfo,
  SandboxList,
} from './generated/api-types.js';
import { Http } from './http.js';
import { Keys } from './keys.js';
import { fetchSandboxMetrics, type MetricsOptions, type SandboxMetrics } from './metrics.js';
import { Nodes } from './nodes.js';
import { Pool } from './pool.js';
import { type PreviewdEvent, Sandbox } from './sandbox.js';
import { Snapshots } from './snapshots.js';
import { readNdjson } from './streams.js';
import { Webhooks } from './webhooks.js';

export interface PreviewdOptions {
  /** The API's base URL, e.g. http://127.0.0.1:7070 */
  url: string;
  /** A bearer API key (server side only: never ship it to a browser). */
  apiKey?: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /**
   * Act for this end user (an admin key in a backend serving many users): every call carries
   * `X-Previewd-Owner`, so it sees and creates only that owner's sandboxes (another owner's answer
   * SandboxNotFoundError). With a tenant key it may only name the key's own owner.
   */
  owner?: string;
}

export interface ListOptions extends Omit<Partial<ListSandboxesQuery>, 'label'> {
  /** Labels that must all match. */
  labels?: Record<string, string>;
}

/** Sandboxes: create, get, list. */
export class Sandboxes {
  constructor(private readonly http: Http) {}

  /** Creates a sandbox; it answers at once (state creating). Follow with waitUntil('running'). */
  async create(opts: CreateSandboxRequest = {}): Promise<Sandbox> {
    return new Sandbox(this.http, await this.http.json<SandboxInfo>('POST', '/v1/sandboxes', { body: opts }));
  }

  /**
   * Creates a sandbox from a project archive sent as the body (tar.gz by default, tar or zip): every
   * file, binary ones too, is in the workspace before the app starts. `opts` are the same options
   * as create's, sent in the X-Previewd-Create header (base64url JSON; at most 8192 characters).
   */
  async createFromArchive(
    archive: Uint8Array,
    opts: CreateSandboxRequest = {},
    format: 'tar.gz' | 'tar' | 'zip' = 'tar.gz',
  ): Promise<Sandbox> {
    const type = { 'tar.gz': 'application/gzip', tar: 'application/x-tar', zip: 'application/zip' }[format];
    let binary = '';
    for (const byte of new TextEncoder().encode(JSON.stringify(opts))) binary += String.fromCharCode(byte);
    const header = btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const info = await this.http.json<SandboxInfo>('POST', '/v1/sandboxes', {
      body: archive,
      headers: { 'content-type': type, 'x-previewd-create': header },
    });
    return new Sandbox(this.http, info);
  }

  async get(id: string): Promise<Sandbox> {
    return new Sandbox(
      this.http,
      await this.http.json<SandboxInfo>('GET', `/v1/sandboxes/${encodeURIComponent(id)}`),
    );
  }

  /**
   * CPU, memory, disk and network samples of a sandbox (the last usage.retentionSec, every
   * usage.intervalSec); `since` (exclusive) returns only newer ones: pass the last sample's `at`.
   */
  metrics(id: string, opts: MetricsOptions = {}): Promise<SandboxMetrics> {
    return fetchSandboxMetrics(this.http, id, opts);
  }

  /** One page, newest first; pass `cursor: page.nextCursor` for the next. */
  async list(opts: ListOptions = {}): Promise<{ sandboxes: Sandbox[]; nextCursor: string | null }> {
    const { labels, ...rest } = opts;
    const label = labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`) : undefined;
    const page = await this.http.json<SandboxList>('GET', '/v1/sandboxes', { query: { ...rest, label } });
    return { sandboxes: page.sandboxes.map((s) => new Sandbox(this.http, s)), nextCursor: page.nextCursor };
  }

  /** Every sandbox, page after page. */
  async *all(opts: Omit<ListOptions, 'cursor'> = {}): AsyncGenerator<Sandbox> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...opts, cursor });
      yield* page.sandboxes;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
}

/** The previewd client. */
export class Previewd {
  readonly sandboxes: Sandboxes;
  /** API keys (admin keys only). */
  readonly keys: Keys;
  /** The cluster's nodes (admin keys only). */
  readonly nodes: Nodes;
  /** The warm pool of the node that answers (admin keys only). */
  readonly pool: Pool;
  /** Signed webhooks of the caller's owner (or admin-wide ones). */
  readonly webhooks: Webhooks;
  /** The caller's snapshots (take one with `sandbox.snapshot()`). */
  readonly snapshots: Snapshots;
  readonly http: Http;

  constructor(opts: PreviewdOptions) {
    this.http = new Http(opts);
    this.sandboxes = new Sandboxes(this.http);
    this.keys = new Keys(this.http);
    this.nodes = new Nodes(this.http);
    this.pool = new Pool(this.http);
    this.webhooks = new Webhooks(this.http);
    this.snapshots = new Snapshots(this.http);
  }

  /** The server's liveness answer. */
  health(): Promise<{ ok: true; version: string }> {
    return this.http.json('GET', '/healthz');
  }

  /** Events of every sandbox (or one with `sandboxId`), live; `lastEventId` replays stored ones first. */
  async *events(
    opts: { sandboxId?: string; types?: string[]; lastEventId?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<PreviewdEvent> {
    const body = await this.http.stream('GET', '/v1/events', 'application/x-ndjson', {
      query: { sandboxId: opts.sandboxId, types: opts.types?.join(','), lastEventId: opts.lastEventId },
      signal: opts.signal,
    });
    yield* readNdjson<PreviewdEvent>(body);
  }
}
