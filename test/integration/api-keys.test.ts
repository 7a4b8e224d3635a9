import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type CreatedKey,
  ForbiddenError,
  InvalidRequestError,
  KeyNotFoundError,
  KeyNotRevocableError,
  Previewd,
  type PreviewdError,
  type Sandbox,
  SandboxNotFoundError,
  Terminal,
  UnauthorizedError,
  type WebSocketConstructor,
} from '../../packages/sdk/src/index.js';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

const TENANT = 'tenant-key-0123456789abcdef';
const WS = WebSocket as unknown as WebSocketConstructor; // Node 20 has no global WebSocket
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const files = {
  'server.js': "require('node:http').createServer((q, s) => s.end('hi')).listen(3000, '0.0.0.0');\n",
};
const runtime = { start: 'node server.js', port: 3000 };

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<PreviewdError> {
  try {
    await promise;
  } catch (err) {
    return err as PreviewdError;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** Runs a command in a terminal and collects its output and exit code. */
async function runIn(terminal: Terminal): Promise<{ out: string; code: number }> {
  let out = '';
  terminal.onOutput((data) => {
    out += data;
  });
  const code = await terminal.exit;
  return { out, code };
}

describe('API keys: made, listed and revoked by admins; tenant keys see their owner only', () => {
  let server: TestServer;
  let admin: Previewd;
  let carolKey: CreatedKey;
  let carol: Previewd;
  let adminBox: Sandbox;
  let carolBox: Sandbox;
  let sessionCookie: string;
  const raw = (method: string, path: string, key: string, body?: unknown) =>
    server.call(method, path, body, { authorization: `Bearer ${key}` });
  /** A request with the dashboard's cookie and no key. */
  const withCookie = async (path: string) => {
    const res = await fetch(`${server.url}${path}`, { headers: { cookie: sessionCookie } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: [TEST_KEY, `${TENANT}:alice`] });
    admin = new Previewd({ url: server.url, apiKey: TEST_KEY });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('an admin makes a tenant key for carol; its secret is shown once and works as a key', async () => {
    carolKey = await admin.keys.create({ owner: 'carol', name: 'carol laptop' });
    expect(carolKey).toMatchObject({
      role: 'tenant',
      owner: 'carol',
      name: 'carol laptop',
      source: 'api',
      revokedAt: null,
    });
    expect(carolKey.id).toMatch(/^key_[0-9a-z]{26}$/);
    expect(carolKey.key).toMatch(/^pvd_[A-Za-z0-9_-]{32}$/);
    expect(carolKey.key.startsWith(carolKey.prefix)).toBe(true);
    expect(carolKey.prefix.length).toBeLessThan(carolKey.key.length / 2);
    expect(Date.parse(carolKey.createdAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

    const res = await raw('GET', '/v1/sandboxes', carolKey.key);
    expect(res.status).toBe(200);
    expect(res.body.sandboxes).toEqual([]);
    carol = new Previewd({ url: server.url, apiKey: carolKey.key });
    expect((await carol.sandboxes.list()).sandboxes).toEqual([]);
  });

  it("carol sees only carol's sandboxes; an admin's sandbox does not exist for her", async () => {
    adminBox = await admin.sandboxes.create({ files, runtime, labels: { who: 'admin' } });
    carolBox = await carol.sandboxes.create({ files, runtime, labels: { who: 'carol' } });
    expect(carolBox.info.owner).toBe('carol');
    expect(adminBox.info.owner).toBeUndefined();

    expect((await carol.sandboxes.list()).sandboxes.map((s) => s.id)).toEqual([carolBox.id]);
    const hidden = await rejection(carol.sandboxes.get(adminBox.id));
    expect(hidden).toBeInstanceOf(SandboxNotFoundError);
    expect(hidden.status).toBe(404);
    expect((await raw('DELETE', `/v1/sandboxes/${adminBox.id}`, carolKey.key)).status).toBe(404);
    expect((await carol.sandboxes.get(carolBox.id)).info.labels).toEqual({ who: 'carol' });
    // The admin still sees both (the delete above did nothing).
    const all = (await admin.sandboxes.list()).sandboxes.map((s) => s.id).sort();
    expect(all).toEqual([adminBox.id, carolBox.id].sort());
  });

  it('the SDK owner option: an admin acting for carol sees, gets and creates only as carol', async () => {
    const forCarol = new Previewd({ url: server.url, apiKey: TEST_KEY, owner: 'carol' });
    expect((await forCarol.sandboxes.list()).sandboxes.map((s) => s.id)).toEqual([carolBox.id]);
    expect(await rejection(forCarol.sandboxes.get(adminBox.id))).toBeInstanceOf(SandboxNotFoundError);
    const made = await forCarol.sandboxes.create({ files: { 'index.html': '<p>x</p>' } });
    expect(made.info.owner).toBe('carol');
    expect((await carol.sandboxes.get(made.id)).id).toBe(made.id);
    await made.delete();
    // A tenant key may name its own owner only.
    const other = new Previewd({ url: server.url, apiKey: carolKey.key, owner: 'alice' });
    expect(await rejection(other.sandboxes.list())).toBeInstanceOf(ForbiddenError);
  });

  it('the owner option reaches the exec WebSocket: acting for carol, an admin sandbox is refused', async () => {
    await Promise.all([adminBox.waitUntil('running'), carolBox.waitUntil('running')]);
    const forCarol = new Previewd({ url: server.url, apiKey: TEST_KEY, owner: 'carol' });
    const own = await (await forCarol.sandboxes.get(carolBox.id)).terminal({
      cmd: 'echo carol-terminal',
      WebSocket: WS,
    });
    expect(await runIn(own)).toEqual({ out: 'carol-terminal\n', code: 0 });

    const refused = await rejection(
      Terminal.open(server.url, { apiKey: TEST_KEY, owner: 'carol' }, adminBox.id, {
        cmd: 'echo nope',
        WebSocket: WS,
      }),
    );
    expect(refused.code).toBe('connection_failed');
    expect(refused.message).toMatch(/404/);
    // The same socket without the owner (the key as a plain string) opens.
    const plain = await Terminal.open(server.url, TEST_KEY, adminBox.id, {
      cmd: 'echo admin',
      WebSocket: WS,
    });
    expect(await runIn(plain)).toEqual({ out: 'admin\n', code: 0 });
  }, 90_000);

  it('the list shows every key without its secret or hash; configured keys say source config', async () => {
    const res = await raw('GET', '/v1/keys', TEST_KEY);
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    for (const secret of [carolKey.key, TEST_KEY, TENANT]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(sha256(secret));
      expect(text).not.toContain(sha256(secret).slice(16, 48));
    }
    const keys = res.body.keys as Array<Record<string, unknown>>;
    for (const k of keys) {
      expect(Object.keys(k).sort()).toEqual(
        ['createdAt', 'id', 'name', 'owner', 'prefix', 'revokedAt', 'role', 'source'].sort(),
      );
    }
    const { key: _secret, ...carolView } = carolKey;
    expect(keys).toContainEqual(carolView);
    const configured = keys.filter((k) => k.source === 'config');
    expect(configured.map((k) => [k.role, k.owner, k.prefix])).toEqual([
      ['admin', null, TEST_KEY.slice(0, 4)],
      ['tenant', 'alice', TENANT.slice(0, 4)],
    ]);
    // A configured key's id tells nothing of its hash.
    for (const k of configured) {
      expect(createHash('sha256').update(TEST_KEY).digest('hex')).not.toContain(String(k.id).slice(4));
    }
    expect(configured.every((k) => k.createdAt === null && k.revokedAt === null)).toBe(true);
    // The SDK's list is the same list.
    expect(await admin.keys.list()).toEqual(keys);
  });

  it('a configured key cannot be revoked through the API (409 key_not_revocable) and keeps working', async () => {
    const configured = (await admin.keys.list()).filter((k) => k.source === 'config');
    expect(configured).toHaveLength(2);
    for (const k of configured) {
      const err = await rejection(admin.keys.revoke(k.id));
      expect(err).toBeInstanceOf(KeyNotRevocableError);
      expect([err.code, err.status]).toEqual(['key_not_revocable', 409]);
    }
    expect((await raw('GET', '/v1/sandboxes', TEST_KEY)).status).toBe(200);
    expect((await raw('GET', '/v1/sandboxes', TENANT)).status).toBe(200);
    expect((await admin.keys.list()).filter((k) => k.revokedAt !== null)).toEqual([]);
  });

  it('an admin key made through the API is an admin key', async () => {
    const made = await admin.keys.create({ name: 'ci' });
    expect(made).toMatchObject({ role: 'admin', owner: null, name: 'ci', source: 'api' });
    const ci = new Previewd({ url: server.url, apiKey: made.key });
    expect((await ci.keys.list()).map((k) => k.id)).toContain(made.id);
    const sandboxes = (await ci.sandboxes.list()).sandboxes.map((s) => s.id).sort();
    expect(sandboxes).toEqual([adminBox.id, carolBox.id].sort());
    expect((await admin.keys.revoke(made.id)).revokedAt).not.toBeNull();
    expect(await rejection(ci.keys.list())).toBeInstanceOf(UnauthorizedError);
  });

  it('tenant keys get 403 forbidden on all three key routes, and change nothing', async () => {
    const before = await admin.keys.list();
    for (const key of [TENANT, carolKey.key]) {
      const tenant = new Previewd({ url: server.url, apiKey: key });
      for (const call of [
        () => tenant.keys.create({ owner: 'mallory' }),
        () => tenant.keys.create(),
        () => tenant.keys.list(),
        () => tenant.keys.revoke(carolKey.id),
      ]) {
        const err = await rejection(call());
        expect(err).toBeInstanceOf(ForbiddenError);
        expect([err.code, err.status]).toEqual(['forbidden', 403]);
      }
    }
    expect(await admin.keys.list()).toEqual(before);
    expect((await raw('GET', '/v1/sandboxes', carolKey.key)).status).toBe(200);
  });

  it('revoking an unknown id is 404 key_not_found', async () => {
    for (const id of ['key_01arz3ndektsv4rrffq69g5fav', 'nope', 'cfg_0000000000000000']) {
      const err = await rejection(admin.keys.revoke(id));
      expect(err).toBeInstanceOf(KeyNotFoundError);
      expect([err.code, err.status]).toEqual(['key_not_found', 404]);
    }
    expect((await raw('DELETE', `/v1/keys/${'k'.repeat(65)}`, TEST_KEY)).status).toBe(400);
  });

  it('bad bodies are 400 invalid_request and make no key', async () => {
    const before = (await admin.keys.list()).length;
    for (const body of [
      { owner: 'has spaces' },
      { owner: '' },
      { owner: 'x'.repeat(129) },
      { name: 'n'.repeat(200) },
      { name: '' },
      { owner: 'dave', role: 'admin' },
      { owner: 42 },
    ]) {
      const err = await rejection(admin.keys.create(body as never));
      expect(err, JSON.stringify(body)).toBeInstanceOf(InvalidRequestError);
      expect([err.code, err.status]).toEqual(['invalid_request', 400]);
    }
    const res = await raw('POST', '/v1/keys', TEST_KEY, '[]');
    expect([res.status, res.body.error.code]).toEqual([400, 'invalid_request']);
    expect((await admin.keys.list()).length).toBe(before);
  });

  it('a dashboard session signed in with carol’s key acts as carol', async () => {
    const res = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: carolKey.key }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ owner: 'carol', role: 'tenant' });
    sessionCookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(sessionCookie).toMatch(/=./);
    const list = await withCookie('/v1/sandboxes');
    expect(list.status).toBe(200);
    expect(list.body.sandboxes.map((s: { id: string }) => s.id)).toEqual([carolBox.id]);
  });

  it('revoke: the secret gives 401 and its dashboard session ends; revoking again changes nothing', async () => {
    const revoked = await admin.keys.revoke(carolKey.id);
    const { key: _secret, ...view } = carolKey;
    expect(revoked).toEqual({ ...view, revokedAt: expect.any(String) });
    expect(Date.parse(revoked.revokedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

    const direct = await raw('GET', '/v1/sandboxes', carolKey.key);
    expect([direct.status, direct.body.error.code]).toEqual([401, 'unauthorized']);
    expect(await rejection(carol.sandboxes.list())).toBeInstanceOf(UnauthorizedError);
    const session = await withCookie('/v1/sandboxes');
    expect([session.status, session.body.error.code]).toEqual([401, 'unauthorized']);
    const signIn = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: carolKey.key }),
    });
    expect(signIn.status).toBe(401);

    const again = await admin.keys.revoke(carolKey.id);
    expect(again.revokedAt).toBe(revoked.revokedAt);
    expect((await admin.keys.list()).find((k) => k.id === carolKey.id)?.revokedAt).toBe(revoked.revokedAt);
    // Carol's sandbox is still there, for the admin.
    expect((await admin.sandboxes.get(carolBox.id)).info.owner).toBe('carol');
  });
});
