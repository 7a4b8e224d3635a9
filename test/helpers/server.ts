import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createPreviewd, type Previewd, type PreviewdParts } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { releaseMounts } from './mounts.js';

export const TEST_KEY = 'test-key-0123456789abcdef';

export interface TestServer {
  app: Previewd;
  url: string;
  /** Base URL of the preview edge (send preview requests here with the preview Host header). */
  edgeUrl: string;
  dataDir: string;
  /** JSON request with the test key; returns status, headers and parsed body. */
  call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  close(): Promise<void>;
}

/** A real previewd (real store, real Docker engine) on a random loopback port with its own data dir. */
export async function startTestServer(
  overrides: Record<string, unknown> = {},
  parts: PreviewdParts = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-test-'));
  const { config } = loadConfig({
    env: {},
    cwd: dataDir,
    overrides: {
      dataDir,
      apiAddr: '127.0.0.1:0',
      edgeAddr: '127.0.0.1:0',
      apiKeys: [TEST_KEY],
      logLevel: 'silent',
      reconcileIntervalSec: 1,
      'docker.stopTimeoutSec': 1,
      // The edge runs with its HAProxy front; the edge-builtin test project sets "off" to run the
      // same edge suites against the built-in edge alone (vitest.config.ts).
      'edge.front': process.env.PREVIEWD_TEST_EDGE_FRONT ?? 'haproxy',
      // On by default for users; off here so suites about something else do not start a
      // background dependency build after each project's install (2 cores). The suites about
      // dependency layers (and the bench) turn it on.
      'dependencyLayers.enabled': false,
      ...overrides,
    },
  });
  const app = await createPreviewd(config, pino({ level: process.env.PREVIEWD_TEST_LOG ?? 'silent' }), parts);
  await app.start();
  const url = app.apiUrl!;
  const call: TestServer['call'] = async (method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed as never, headers: res.headers };
  };
  return {
    app,
    url,
    edgeUrl: app.edgeUrl!,
    dataDir,
    call,
    async close() {
      const sandboxes = await app.store.listSandboxes();
      await Promise.all(sandboxes.map((s) => app.service.delete(s.id).catch(() => undefined)));
      await app.stop();
      await releaseMounts(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Polls the API until the sandbox is in `state`; a sandbox that lands in `error` instead fails with its error. */
export async function waitState(
  server: TestServer,
  id: string,
  state: string,
  timeoutMs = 30_000,
): Promise<any> {
  return waitFor(
    async () => {
      const res = await server.call('GET', `/v1/sandboxes/${id}`);
      if (res.body?.state === 'error' && state !== 'error') {
        throw new Error(`sandbox ${id} is in error: ${JSON.stringify(res.body.error)}`);
      }
      return res.body?.state === state ? res.body : undefined;
    },
    timeoutMs,
    `sandbox ${id} in state ${state}`,
  );
}
