import type {
  AccessLogEntry,
  Capacity,
  CreateSandboxRequest,
  CreateSnapshotRequest,
  EgressPolicy,
  FileEntry,
  ForkRequest,
  Sandbox,
  SandboxMetrics,
  Snapshot,
  SnapshotList,
  Template,
} from './types';

/** An answer of the API that is not 2xx, with the `{ error: { code, message, hint } }` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = 'http_error';
  let message = `${res.status} ${res.statusText}`;
  let hint: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; hint?: string } };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      hint = body.error.hint;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message, hint);
}

/** Called when any request answers 401: the session ended (signed out elsewhere, expired). */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/** For requests made outside `request` (the XMLHttpRequest upload): the session ended. */
export function signalUnauthorized(): void {
  onUnauthorized?.();
}

/**
 * Asks whether the session still holds (a stream that the server refused says nothing of why).
 * Signs the page out on 401; true when still signed in.
 */
export async function verifySession(): Promise<boolean> {
  const res = await fetch('/v1/session', { credentials: 'same-origin' }).catch(() => null);
  if (res?.status === 401) {
    onUnauthorized?.();
    return false;
  }
  return true;
}

/** A same-origin request carrying the session cookie; JSON in and out. */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !path.startsWith('/v1/session')) onUnauthorized?.();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

type SessionInfo = { owner: string | null; role?: 'admin' | 'tenant' };

const sb = (id: string) => `/v1/sandboxes/${encodeURIComponent(id)}`;
const q = (params: Record<string, string | number | boolean | undefined>) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, String(v));
  return search.toString();
};

export const api = {
  session: () => request<SessionInfo>('GET', '/v1/session'),
  signIn: (apiKey: string) => request<SessionInfo>('POST', '/v1/session', { apiKey }),
  signOut: () => request<void>('DELETE', '/v1/session'),

  listSandboxes: async () => {
    const all: Sandbox[] = [];
    let cursor: string | null = null;
    do {
      const page: { sandboxes: Sandbox[]; nextCursor: string | null } = await request(
        'GET',
        `/v1/sandboxes?${q({ limit: 100, cursor: cursor ?? undefined })}`,
      );
      all.push(...page.sandboxes);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  },
  getSandbox: (id: string) => request<Sandbox>('GET', sb(id)),
  createSandbox: (body: CreateSandboxRequest) => request<Sandbox>('POST', '/v1/sandboxes', body),
  start: (id: string) => request<Sandbox>('POST', `${sb(id)}/start`, {}),
  stop: (id: string) => request<Sandbox>('POST', `${sb(id)}/stop`, {}),
  restartApp: (id: string) => request<unknown>('POST', `${sb(id)}/restart-app`, {}),
  keepalive: (id: string, untilSec?: number) =>
    request<Sandbox>('POST', `${sb(id)}/keepalive`, untilSec ? { untilSec } : {}),
  remove: (id: string) => request<void>('DELETE', sb(id)),
  setNetwork: (id: string, policy: EgressPolicy) => request<Sandbox>('PUT', `${sb(id)}/network`, policy),
  mintPreviewToken: (id: string, port?: number, ttlSec?: number) =>
    request<{ token: string; url: string; expiresAt: string }>('POST', `${sb(id)}/preview-tokens`, {
      ...(port ? { port } : {}),
      ...(ttlSec ? { ttlSec } : {}),
    }),
  accessLog: (id: string, limit = 100) =>
    request<{ entries: AccessLogEntry[] }>('GET', `${sb(id)}/access-log?${q({ limit })}`),
  /** CPU, memory, disk and network samples; `since` (ISO) asks only for newer ones. */
  metrics: (id: string, since?: string) =>
    request<SandboxMetrics>('GET', `${sb(id)}/metrics${since ? `?${q({ since })}` : ''}`),
  snapshot: (id: string, body: CreateSnapshotRequest) =>
    request<Snapshot>('POST', `${sb(id)}/snapshots`, body),
  fork: (id: string, body: ForkRequest = {}) => request<Sandbox>('POST', `${sb(id)}/fork`, body),
  /** Every snapshot of the caller, newest first (all pages). */
  listSnapshots: async () => {
    const all: Snapshot[] = [];
    let cursor: string | null = null;
    do {
      const page: SnapshotList = await request(
        'GET',
        `/v1/snapshots?${q({ limit: 100, cursor: cursor ?? undefined })}`,
      );
      all.push(...page.snapshots);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  },
  deleteSnapshot: (id: string) => request<Snapshot>('DELETE', `/v1/snapshots/${encodeURIComponent(id)}`),
  capacity: () => request<Capacity>('GET', '/v1/capacity'),
  templates: () => request<{ templates: Template[] }>('GET', '/v1/templates'),

  listFiles: (id: string, path = '', recursive = true) =>
    request<{ entries: FileEntry[]; truncated: boolean }>(
      'GET',
      `${sb(id)}/files/list?${q({ path: path || undefined, recursive, limit: 5000 })}`,
    ),
  readFile: async (id: string, path: string) => {
    const res = await fetch(`${sb(id)}/files?${q({ path })}`, { credentials: 'same-origin' });
    if (!res.ok) throw await errorFrom(res);
    return res.text();
  },
  writeFile: async (id: string, path: string, content: string) => {
    const res = await fetch(`${sb(id)}/files?${q({ path })}`, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
    });
    if (!res.ok) throw await errorFrom(res);
    return (await res.json()) as FileEntry;
  },
};

export const paths = {
  events: () => '/v1/events',
  sandboxEvents: (id: string) => `${sb(id)}/events`,
  logs: (id: string) => `${sb(id)}/logs?follow=1&tail=500`,
  execSocket: (id: string) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${sb(id)}/exec/ws`;
  },
};
