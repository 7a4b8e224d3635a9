import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import Docker from 'dockerode';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppSandbox, edgeJson, previewHostOf, waitState } from '../helpers/edge.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const schema = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'golden', 'traefik-v3-file-provider.schema.json'), 'utf8'),
);
const validateTraefik = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** A call as Traefik's forwardAuth middleware makes it: GET, the client's headers, X-Forwarded-*. */
async function forwardAuth(
  server: TestServer,
  original: { host: string; uri?: string; method?: string; proto?: string; headers?: Record<string, string> },
) {
  const res = await request(`${server.url}/v1/traefik/forward-auth`, {
    method: 'GET',
    headers: {
      ...original.headers,
      'x-forwarded-method': original.method ?? 'GET',
      'x-forwarded-proto': original.proto ?? 'http',
      'x-forwarded-host': original.host,
      'x-forwarded-uri': original.uri ?? '/',
      'x-forwarded-for': '203.0.113.7',
    },
  });
  const text = await res.body.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, headers: res.headers, body };
}

describe('Traefik mode (real engine, real HTTP)', () => {
  let server: TestServer;
  let logDir: string;
  let accessLog: string;
  let pub: string;
  let priv: string;
  const docker = new Docker();

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'previewd-traefik-log-'));
    accessLog = join(logDir, 'access.log');
    writeFileSync(accessLog, '');
    server = await startTestServer({
      edgeMode: 'traefik',
      'traefik.accessLog': accessLog,
      'traefik.wakeUrl': 'http://127.0.0.1:8080',
    });
    [{ id: pub }, { id: priv }] = await Promise.all([
      createAppSandbox(server),
      createAppSandbox(server, { visibility: 'private' }),
    ]);
  }, 90_000);
  afterAll(async () => {
    await server?.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('labels each sandbox container for the Docker provider', async () => {
    const labels = (await docker.getContainer(`previewd-${priv}`).inspect()).Config.Labels;
    expect(labels).toMatchObject({
      'traefik.enable': 'true',
      'previewd.managed': 'true',
      'traefik.docker.network': 'previewd',
      [`traefik.http.routers.${priv}-3000.rule`]: `Host(\`${previewHostOf(priv)}\`)`,
      [`traefik.http.routers.${priv}-3000.entrypoints`]: 'web',
      [`traefik.http.routers.${priv}-3000.priority`]: '100',
      [`traefik.http.routers.${priv}-3000.middlewares`]: 'previewd-auth@http',
      [`traefik.http.services.${priv}-3000.loadbalancer.server.port`]: '3000',
    });
    const pubLabels = (await docker.getContainer(`previewd-${pub}`).inspect()).Config.Labels;
    expect(pubLabels[`traefik.http.routers.${pub}-3000.middlewares`]).toBeUndefined();
  });

  it('serves the dynamic configuration with the API key, an ETag and 304s', async () => {
    const anonymous = await request(`${server.url}/v1/traefik/dynamic`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);

    const res = await server.call('GET', '/v1/traefik/dynamic');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(validateTraefik(res.body), JSON.stringify(validateTraefik.errors)).toBe(true);
    const ip = (await docker.getContainer(`previewd-${pub}`).inspect()).NetworkSettings.Networks.previewd!
      .IPAddress;
    expect(res.body.http.services[`${pub}-3000`]).toEqual({
      loadBalancer: { servers: [{ url: `http://${ip}:3000` }], passHostHeader: true },
    });
    expect(res.body.http.routers[`${priv}-3000`].middlewares).toEqual(['previewd-auth']);
    expect(res.body.http.routers['previewd-wake']).toMatchObject({ priority: 1, entryPoints: ['web'] });
    expect(res.body.http.routers['previewd-wake-tls']).toMatchObject({
      priority: 1,
      entryPoints: ['websecure'],
    });

    const again = await server.call('GET', '/v1/traefik/dynamic', undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);

    // A stopped sandbox leaves Traefik's routes: the wake catch-all takes its host.
    await server.call('POST', `/v1/sandboxes/${pub}/stop`);
    await waitState(server, pub, 'stopped');
    const after = await server.call('GET', '/v1/traefik/dynamic', undefined, { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).not.toBe(etag);
    expect(after.body.http.routers[`${pub}-3000`]).toBeUndefined();
    expect(after.body.http.routers[`${priv}-3000`]).toBeDefined();
  });

  it('documents both endpoints in OpenAPI, forward-auth without the API key', async () => {
    const doc = await server.call('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.paths['/v1/traefik/dynamic'].get).toBeDefined();
    expect(doc.body.paths['/v1/traefik/forward-auth'].get.security).toEqual([]);
  });

  it('wakes a stopped sandbox behind the catch-all, with Traefik forwarded headers', async () => {
    const traefikHeaders = {
      'x-forwarded-proto': 'https',
      'x-forwarded-host': previewHostOf(pub),
      'x-forwarded-port': '443',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-server': 'traefik-1',
      'x-real-ip': '203.0.113.7',
    };
    const page = await edgeJson(server, previewHostOf(pub), '/', {
      headers: { ...traefikHeaders, accept: 'text/html,application/xhtml+xml' },
    });
    expect(page.status).toBe(503);
    expect(page.text).toContain('/__previewd/status');
    // A programmatic client is held until the port answers, then proxied.
    const held = await edgeJson(server, previewHostOf(pub), '/echo', {
      headers: { ...traefikHeaders, accept: 'application/json' },
    });
    expect(held.status).toBe(200);
    expect(held.body.url).toBe('/echo');
    // Upper-case ids in the Host header route the same (hosts are case-insensitive).
    const upper = await edgeJson(server, previewHostOf(pub).toUpperCase(), '/echo', {
      headers: { accept: 'application/json' },
    });
    expect(upper.status).toBe(200);
  });

  it('a port exposed after create reaches Traefik through the HTTP provider (labels are fixed)', async () => {
    const exposed = await server.call('POST', `/v1/sandboxes/${priv}/ports`, { port: 4000 });
    expect(exposed.status).toBe(200);
    const dynamic = await server.call('GET', '/v1/traefik/dynamic');
    expect(dynamic.body.http.routers[`${priv}-4000`]).toMatchObject({
      rule: `Host(\`${previewHostOf(priv, 4000)}\`)`,
      middlewares: ['previewd-auth'],
    });
    expect(dynamic.body.http.services[`${priv}-4000`].loadBalancer.servers[0].url).toMatch(/:4000$/);
    const labels = (await docker.getContainer(`previewd-${priv}`).inspect()).Config.Labels;
    expect(labels[`traefik.http.routers.${priv}-4000.rule`]).toBeUndefined();
    // Forward-auth knows the new port too.
    const minted = await server.call('POST', `/v1/sandboxes/${priv}/preview-tokens`, {});
    const ok = await forwardAuth(server, {
      host: previewHostOf(priv, 4000),
      headers: { 'x-previewd-token': minted.body.token },
    });
    expect(ok.status).toBe(200);
    expect((await server.call('DELETE', `/v1/sandboxes/${priv}/ports/4000`)).status).toBe(200);
    const after = await server.call('GET', '/v1/traefik/dynamic');
    expect(after.body.http.routers[`${priv}-4000`]).toBeUndefined();
  });

  it('forward-auth denies a private preview without a token, with the edge error codes', async () => {
    const res = await forwardAuth(server, {
      host: previewHostOf(priv),
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('preview_token_required');
    const bad = await forwardAuth(server, {
      host: previewHostOf(priv),
      headers: { accept: 'application/json', 'x-previewd-token': 'pvt1.nope.nope.nope' },
    });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('preview_token_invalid');
    const other = await server.call('POST', `/v1/sandboxes/${pub}/preview-tokens`, {});
    const wrong = await forwardAuth(server, {
      host: previewHostOf(priv),
      headers: { accept: 'application/json', 'x-previewd-token': other.body.token },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.details?.reason ?? wrong.body.error.code).toMatch(
      /wrong_sandbox|preview_token_invalid/,
    );
    // Without a token a private preview does not tell which ports it exposes: the same 401.
    const port = await forwardAuth(server, {
      host: previewHostOf(priv, 4999),
      headers: { accept: 'application/json' },
    });
    expect(port.status).toBe(401);
    expect(port.body).toEqual(res.body);
    const mine = await server.call('POST', `/v1/sandboxes/${priv}/preview-tokens`, {});
    const unexposed = await forwardAuth(server, {
      host: previewHostOf(priv, 4999),
      headers: { accept: 'application/json', 'x-previewd-token': mine.body.token },
    });
    expect(unexposed.status).toBe(404);
    expect(unexposed.body.error.code).toBe('port_not_exposed');
    const nohost = await forwardAuth(server, {
      host: 'example.com',
      headers: { accept: 'application/json' },
    });
    expect(nohost.status).toBe(404);
    expect(nohost.body.error.code).toBe('not_a_preview_host');
  });

  it('forward-auth exchanges ?previewd_token= for an HttpOnly cookie, then allows with the cookie', async () => {
    const minted = await server.call('POST', `/v1/sandboxes/${priv}/preview-tokens`, { port: 3000 });
    expect(minted.status).toBe(201);
    const token = minted.body.token as string;
    const exchange = await forwardAuth(server, {
      host: previewHostOf(priv),
      proto: 'https',
      uri: `/page?a=1&previewd_token=${encodeURIComponent(token)}`,
      headers: { accept: 'text/html' },
    });
    expect(exchange.status).toBe(303);
    // Absolute: Traefik would resolve a relative one against previewd's own address.
    expect(exchange.headers.location).toBe(`https://${previewHostOf(priv)}/page?a=1`);
    const cookie = String(exchange.headers['set-cookie']);
    expect(cookie).toContain(`previewd_token=${token}`);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Secure/); // X-Forwarded-Proto: https

    const allowed = await forwardAuth(server, {
      host: previewHostOf(priv).toUpperCase(),
      uri: '/page?a=1',
      headers: { accept: 'text/html', cookie: `theme=dark; previewd_token=${token}` },
    });
    expect(allowed.status).toBe(200);
    expect(allowed.headers['x-previewd-sandbox']).toBe(priv);
    // Traefik copies these onto the forwarded request: the token cookie is gone, the app's stays.
    expect(allowed.headers.cookie).toBe('theme=dark');

    const bearer = await forwardAuth(server, {
      host: previewHostOf(priv),
      method: 'POST',
      headers: { accept: 'application/json', authorization: `Bearer ${token}` },
    });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.authorization).toBeUndefined();
    expect(bearer.headers.cookie).toBeUndefined();

    const appAuth = await forwardAuth(server, {
      host: previewHostOf(priv),
      headers: { authorization: 'Basic YXBwOnVzZXI=', 'x-previewd-token': token },
    });
    expect(appAuth.status).toBe(200);
    expect(appAuth.headers.authorization).toBe('Basic YXBwOnVzZXI=');
    expect(appAuth.headers['x-previewd-token']).toBeUndefined();

    // Revocation applies to forward-auth too.
    expect((await server.call('DELETE', `/v1/sandboxes/${priv}/preview-tokens`)).status).toBe(204);
    const revoked = await forwardAuth(server, {
      host: previewHostOf(priv),
      headers: { accept: 'application/json', cookie: `previewd_token=${token}` },
    });
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.code).toBe('preview_token_invalid');
  });

  it('the wake path of a private sandbox applies the same token rules', async () => {
    const res = await edgeJson(server, previewHostOf(priv), '/echo', {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('preview_token_required');
  });

  it('turns Traefik access-log lines into activity, ids matched case-insensitively', async () => {
    await server.app.store.updateSandbox(priv, { lastActivityAt: '2000-01-01T00:00:00.000Z' });
    appendFileSync(
      accessLog,
      `${JSON.stringify({
        RequestHost: `3000-${priv.toUpperCase()}.PREVIEW.localhost`,
        RequestPath: '/',
        DownstreamStatus: 200,
        RouterName: `${priv}-3000@docker`,
        StartUTC: new Date().toISOString(),
      })}\n`,
    );
    const record = await waitFor(
      async () => {
        const r = await server.app.store.getSandbox(priv);
        return r && r.lastActivityAt > '2001' ? r : undefined;
      },
      30_000,
      'activity from the access log',
    );
    expect(Date.parse(record.lastActivityAt)).toBeGreaterThan(Date.now() - 60_000);
  });
});
