import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installDashboard } from '../../src/api/dashboard.js';
import { answerNotFound } from '../../src/api/error-handler.js';
import { KeyRing } from '../../src/api/key-ring.js';
import { DashboardSessions } from '../../src/api/session.js';
import { newSandboxId } from '../../src/domain/ids.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';
import { upgradeStatus } from '../helpers/ws-upgrade.js';

/** Fetch as a browser would: the session cookie, optionally an Origin. */
async function asBrowser(
  server: TestServer,
  method: string,
  path: string,
  cookie: string,
  opts: { origin?: string; body?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      cookie,
      ...(opts.origin ? { origin: opts.origin } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('dashboard sessions (real server)', () => {
  let server: TestServer;
  let cookie: string;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses a wrong key and sets no cookie', async () => {
    const res = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: 'not-the-key-0123456789' }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe('unauthorized');
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('trades the right key for an HttpOnly, SameSite=Strict cookie that works as the key', async () => {
    const res = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: TEST_KEY }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ owner: null, role: 'admin' });
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^previewd_session=s2_/);
    expect(setCookie).not.toMatch(/Secure/i);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toContain(TEST_KEY);
    cookie = setCookie.split(';', 1)[0]!;

    expect((await asBrowser(server, 'GET', '/v1/session', cookie)).status).toBe(200);
    expect((await asBrowser(server, 'GET', '/v1/sandboxes', cookie)).body.sandboxes).toEqual([]);
  });

  it('accepts changes made with the cookie only from the same origin', async () => {
    const bad = { files: 'not a map' };
    const noOrigin = await asBrowser(server, 'POST', '/v1/sandboxes', cookie, { body: bad });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.body.error.code).toBe('origin_refused');
    expect(noOrigin.body.error.hint).toMatch(/Bearer/);

    const foreign = await asBrowser(server, 'POST', '/v1/sandboxes', cookie, {
      origin: 'http://evil.example',
      body: bad,
    });
    expect(foreign.body.error.code).toBe('origin_refused');

    // Same origin: past auth, so the body's own problem is what answers.
    const same = await asBrowser(server, 'POST', '/v1/sandboxes', cookie, { origin: server.url, body: bad });
    expect(same.status).toBe(400);
    expect(same.body.error.code).toBe('invalid_request');
  });

  it('refuses a forged or truncated cookie', async () => {
    const forged = `${cookie.slice(0, -4)}AAAA`;
    const res = await asBrowser(server, 'GET', '/v1/sandboxes', forged);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
    expect((await asBrowser(server, 'GET', '/v1/sandboxes', 'previewd_session=s2_x')).status).toBe(401);
  });

  it('opens the exec WebSocket with the cookie from the same origin only', async () => {
    const url = `${server.url.replace('http', 'ws')}/v1/sandboxes/${newSandboxId()}/exec/ws`;
    expect(await upgradeStatus(url, { cookie, origin: server.url })).toBe(101);
    expect(await upgradeStatus(url, { cookie, origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(url, { cookie: 'previewd_session=s2_forged', origin: server.url })).toBe(401);
  });

  it('signs out for good: the cookie is cleared and a kept copy of it no longer works', async () => {
    expect((await asBrowser(server, 'GET', '/v1/sandboxes', cookie)).status).toBe(200);
    const res = await fetch(`${server.url}/v1/session`, { method: 'DELETE', headers: { cookie } });
    expect(res.status).toBe(204);
    expect(res.headers.get('set-cookie')).toMatch(/previewd_session=;.*Expires=Thu, 01 Jan 1970/i);
    const after = await asBrowser(server, 'GET', '/v1/sandboxes', cookie);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('unauthorized');
  });

  it('answers unknown API paths with JSON, not the dashboard page', async () => {
    const res = await fetch(`${server.url}/v1/nothing-here`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('not_found');
  });
});

describe('DashboardSessions (real SQLite store, injected clock)', () => {
  it('ends a session when it expires, when it is signed out, and when its key is revoked', async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    let now = 1_000_000_000_000;
    const ring = new KeyRing(store, [{ key: 'key-a-0123456789abcdef' }]);
    const sessions = new DashboardSessions(store, ring, 60, () => now);
    const caller = (await ring.resolve('key-a-0123456789abcdef'))!;
    const { token } = await sessions.issue(caller);
    expect((await sessions.verify(token))?.keyId).toBe(caller.keyId);
    now += 61_000;
    expect(await sessions.verify(token)).toBeUndefined();

    const second = await sessions.issue(caller);
    expect(await sessions.verify(second.token)).toBeDefined();
    await sessions.end(second.token);
    expect(await sessions.verify(second.token)).toBeUndefined();

    const made = await ring.create({ owner: 'alice' });
    const tenant = (await ring.resolve(made.secret))!;
    expect(tenant).toMatchObject({ role: 'tenant', owner: 'alice' });
    const third = await sessions.issue(tenant);
    expect((await sessions.verify(third.token))?.owner).toBe('alice');
    await ring.revoke(made.key.id);
    expect(await sessions.verify(third.token)).toBeUndefined();
    expect(await ring.resolve(made.secret)).toBeUndefined();

    // A key removed from the configuration takes its sessions with it.
    const rotated = new DashboardSessions(
      store,
      new KeyRing(store, [{ key: 'key-b-0123456789abcdef' }]),
      60,
      () => now,
    );
    const fourth = await sessions.issue(caller);
    expect(await rotated.verify(fourth.token)).toBeUndefined();
    expect(await sessions.verify('s2_forged')).toBeUndefined();
    await store.close();
  });
});

describe('dashboard serving', () => {
  let root: string;
  const app = Fastify();
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'previewd-dash-'));
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(join(root, 'assets', 'app-abc123.js'), 'console.log(1)');
    app.get('/v1/ping', async () => ({ ok: true }));
    await installDashboard(app, answerNotFound, root);
  });
  afterAll(async () => {
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html for page paths, with a strict CSP that forbids framing the dashboard', async () => {
    for (const url of ['/', '/sandboxes/01jz5r6v7w8x9y0z1a2b3c4d5e', '/snapshots']) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('<title>dash</title>');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    }
  });

  it('serves hashed assets for good, and answers a missing asset or API path with 404 JSON', async () => {
    const asset = await app.inject({ url: '/assets/app-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    const missing = await app.inject({ url: '/assets/gone-123.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    expect((await app.inject({ url: '/snapshots/x' })).statusCode).toBe(404);
    const api = await app.inject({ url: '/v1/unknown' });
    expect(api.statusCode).toBe(404);
    expect(api.headers['content-security-policy']).toBeUndefined();
    expect((await app.inject({ url: '/v1/ping' })).json()).toEqual({ ok: true });
  });

  it('refuses to leave its root', async () => {
    const res = await app.inject({ url: '/..%2f..%2fetc%2fpasswd' });
    expect(res.body).not.toContain('root:');
  });
});

describe('dashboard turned off (real server)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'dashboard.enabled': false });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves no page and no sign-in, and honours no session cookie', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(404);
    expect(((await page.json()) as any).error.code).toBe('not_found');
    const signIn = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: TEST_KEY }),
    });
    expect(signIn.status).toBe(404);
    expect(((await signIn.json()) as any).error.code).toBe('not_found');
    const withCookie = await fetch(`${server.url}/v1/sandboxes`, {
      headers: { cookie: 'previewd_session=s1.9999999999.x.y' },
    });
    expect(withCookie.status).toBe(401);
  });
});
