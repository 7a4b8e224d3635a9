import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEventsFor } from '../helpers/event-stream.js';
import { apiOperations, fillPath } from '../helpers/openapi-routes.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';
import { upgradeStatus } from '../helpers/ws-upgrade.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdefgh';

const app = "require('http').createServer((q, s) => s.end('hi ' + process.env.WHO)).listen(3000)";

describe('tenants are kept apart on every route of /openapi.json', () => {
  let server: TestServer;
  const ids: Record<'alice' | 'bob' | 'admin', string> = { alice: '', bob: '', admin: '' };
  const as = (
    key: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => server.call(method, path, body, { authorization: `Bearer ${key}`, ...headers });
  const files = async (id: string) =>
    (await as(TEST_KEY, 'POST', `/v1/sandboxes/${id}/exec`, { cmd: 'cat /workspace/server.js | sha256sum' }))
      .body.stdout;

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: [TEST_KEY, `${ALICE}:alice`, `${BOB}:bob`] });
    for (const [who, key] of [
      ['alice', ALICE],
      ['bob', BOB],
      ['admin', TEST_KEY],
    ] as const) {
      const res = await as(key, 'POST', '/v1/sandboxes', {
        files: { 'server.js': app },
        env: { WHO: who },
        runtime: { start: 'node server.js', port: 3000 },
        visibility: 'private',
      });
      expect(res.status).toBe(201);
      ids[who] = res.body.id;
    }
    for (const id of Object.values(ids)) await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('records the owner from the key, and an admin acting for an end user', async () => {
    expect((await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.alice}`)).body.owner).toBe('alice');
    expect((await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.admin}`)).body.owner ?? null).toBeNull();
  });

  it('lists only the caller’s own sandboxes (admin: all; admin for an end user: theirs)', async () => {
    const list = async (key: string, headers?: Record<string, string>) =>
      ((await as(key, 'GET', '/v1/sandboxes', undefined, headers)).body.sandboxes as any[])
        .map((s) => s.id)
        .sort();
    expect(await list(ALICE)).toEqual([ids.alice]);
    expect(await list(BOB)).toEqual([ids.bob]);
    expect(await list(TEST_KEY)).toEqual(Object.values(ids).sort());
    expect(await list(TEST_KEY, { 'x-previewd-owner': 'alice' })).toEqual([ids.alice]);
  });

  it('answers sandbox_not_found for another tenant’s sandbox on every /v1/sandboxes/{id} route, and changes nothing', async () => {
    const before = {
      state: (await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.alice}`)).body,
      files: await files(ids.alice),
    };
    const ops = (await apiOperations(server)).filter((o) => o.template.startsWith('/v1/sandboxes/{id}'));
    expect(ops.length).toBeGreaterThan(25);
    const leaks: string[] = [];
    for (const op of ops) {
      const path = fillPath(op.template, { id: ids.alice });
      const body = op.method === 'POST' || op.method === 'PUT' ? {} : undefined;
      for (const [who, key, headers] of [
        ['bob', BOB, {}],
        ['admin acting for bob', TEST_KEY, { 'x-previewd-owner': 'bob' }],
      ] as const) {
        const res = await as(key, op.method, path, body, headers);
        if (res.status !== 404 || res.body?.error?.code !== 'sandbox_not_found') {
          leaks.push(
            `${who}: ${op.method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 120)}`,
          );
        }
      }
      // Exactly what a sandbox that does not exist answers.
      const missing = await as(
        BOB,
        op.method,
        fillPath(op.template, { id: '01jz5r6v7w8x9y0z1a2b3c4d5e' }),
        body,
      );
      expect(missing.body?.error?.code, `${op.method} ${op.template}`).toBe('sandbox_not_found');
    }
    expect(leaks).toEqual([]);
    const after = {
      state: (await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.alice}`)).body,
      files: await files(ids.alice),
    };
    expect(after.files).toBe(before.files);
    expect(after.state.state).toBe('running');
    expect(after.state.ports).toEqual(before.state.ports);
    expect(after.state.visibility).toBe(before.state.visibility);
    expect(after.state.expiresAt).toBe(before.state.expiresAt);
  });

  it('refuses the exec WebSocket of another tenant’s sandbox', async () => {
    const status = (key: string, id: string) =>
      upgradeStatus(`${server.url.replace('http', 'ws')}/v1/sandboxes/${id}/exec/ws`, {
        authorization: `Bearer ${key}`,
      });
    expect(await status(BOB, ids.alice)).toBe(404);
    expect(await status(ALICE, ids.alice)).toBe(101);
  });

  it('carries only the tenant’s own sandboxes on the global event stream', async () => {
    const bobs = await readEventsFor(`${server.url}/v1/events?lastEventId=0`, BOB);
    expect(bobs.length).toBeGreaterThan(0);
    expect(new Set(bobs.map((e) => e.sandboxId))).toEqual(new Set([ids.bob]));
    const filtered = await readEventsFor(`${server.url}/v1/events?lastEventId=0&sandboxId=${ids.alice}`, BOB);
    expect(filtered).toEqual([]);
    const all = await readEventsFor(`${server.url}/v1/events?lastEventId=0`, TEST_KEY);
    expect(new Set(all.map((e) => e.sandboxId))).toEqual(new Set(Object.values(ids)));
  });

  it('lets a tenant act for its own owner only', async () => {
    const res = await as(BOB, 'GET', '/v1/sandboxes', undefined, { 'x-previewd-owner': 'alice' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    const bad = await as(TEST_KEY, 'GET', '/v1/sandboxes', undefined, { 'x-previewd-owner': 'has spaces' });
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('keeps admin routes for admin keys', async () => {
    for (const [method, path] of [
      ['GET', '/v1/keys'],
      ['POST', '/v1/keys'],
      ['DELETE', '/v1/keys/key_x'],
      ['GET', '/v1/traefik/dynamic'],
      ['POST', '/v1/templates/static/warm'],
      ['GET', '/metrics'],
    ] as const) {
      const res = await as(ALICE, method, path, method === 'POST' ? {} : undefined);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
  });

  it('does the tenant’s own work on its own sandbox (the refusals above are about ownership)', async () => {
    const ops = (await apiOperations(server)).filter(
      (o) =>
        o.template.startsWith('/v1/sandboxes/{id}') &&
        !(o.method === 'DELETE' && o.template === '/v1/sandboxes/{id}'),
    );
    const refused: string[] = [];
    for (const op of ops) {
      const path = fillPath(op.template, { id: ids.alice });
      const hasBody = op.method === 'POST' || op.method === 'PUT';
      // Streams (events, logs with follow) answer and stay open: the status is what counts.
      const res = await fetch(`${server.url}${path}`, {
        method: op.method,
        headers: {
          authorization: `Bearer ${ALICE}`,
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
        },
        body: hasBody ? '{}' : undefined,
        signal: AbortSignal.timeout(5_000),
      });
      const text = res.headers.get('content-type')?.includes('application/json') ? await res.text() : '';
      if (!text) await res.body?.cancel();
      if (text.includes('"sandbox_not_found"')) refused.push(`${op.method} ${op.template}`);
    }
    expect(refused).toEqual([]);
    expect((await as(ALICE, 'DELETE', `/v1/sandboxes/${ids.alice}`)).status).toBe(204);
    expect((await as(TEST_KEY, 'GET', `/v1/sandboxes/${ids.alice}`)).status).toBe(404);
  });
});
