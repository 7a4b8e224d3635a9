import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodeOf, rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const TENANT = 'tenant-key-0123456789abcdef';

describe('API doors: host names, metrics, rate limits, proxies (real server)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${TENANT}:alice`],
      'api.hosts': ['api.example.test'],
      'api.metricsToken': METRICS_TOKEN,
      'api.rateLimit.authFailures': 5,
      'api.rateLimit.creates': 2,
      'api.rateLimit.windowSec': 60,
      'api.trustProxy': ['127.0.0.1'],
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const withHost = async (host: string, path = '/v1/sandboxes') =>
    rawRequest(server.url, rawHttp('GET', path, [`host: ${host}`, `authorization: Bearer ${TEST_KEY}`]));

  it('answers only to its own names: loopback, the listen address, api.hosts (DNS rebinding)', async () => {
    const port = new URL(server.url).port;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      'LOCALHOST',
      `[::1]:${port}`,
      'api.example.test',
      'api.example.test.',
    ]) {
      expect((await withHost(host)).status, host).toBe(200);
    }
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      '',
      'a b',
    ]) {
      const answer = await withHost(host);
      expect([400, 421], host).toContain(answer.status);
      if (answer.status === 421) expect(errorCodeOf(answer)).toBe('host_not_allowed');
    }
    // Before anything else: even the public routes.
    expect((await withHost('evil.example', '/healthz')).status).toBe(421);
  });

  it('serves /metrics to an admin key or the metrics token only', async () => {
    const get = (auth?: string) =>
      fetch(`${server.url}/metrics`, { headers: auth ? { authorization: `Bearer ${auth}` } : {} });
    expect((await get()).status).toBe(401);
    expect((await get(TENANT)).status).toBe(403);
    const byToken = await get(METRICS_TOKEN);
    expect(byToken.status).toBe(200);
    expect(await byToken.text()).toContain('previewd_api_requests_total');
    expect((await get(TEST_KEY)).status).toBe(200);
    // The metrics token opens nothing else.
    const other = await fetch(`${server.url}/v1/sandboxes`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(other.status).toBe(401);
  });

  it('sets the dashboard cookie Secure when a trusted proxy says the client came over HTTPS', async () => {
    const signIn = (headers: Record<string, string>) =>
      fetch(`${server.url}/v1/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ apiKey: TEST_KEY }),
      });
    const viaProxy = await signIn({ 'x-forwarded-proto': 'https' });
    expect(viaProxy.headers.get('set-cookie')).toMatch(/;\s*Secure/i);
    const direct = await signIn({});
    expect(direct.headers.get('set-cookie')).not.toMatch(/;\s*Secure/i);
  });

  it('limits creates per owner: 429 rate_limited with Retry-After', async () => {
    const create = () =>
      server.call(
        'POST',
        '/v1/sandboxes',
        { files: {}, runtime: { start: 'true', port: 3000 } },
        {
          authorization: `Bearer ${TENANT}`,
        },
      );
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof create>> | undefined;
    for (let i = 0; i < 4; i++) {
      const res = await create();
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.slice(0, 2).every((s) => s !== 429)).toBe(true);
    expect(limited?.body.error.code).toBe('rate_limited');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another owner is not held back by alice's creates.
    const admin = await server.call('GET', '/v1/sandboxes');
    expect(admin.status).toBe(200);
  });

  it('limits failed authentications per client address, then refuses even a right key until the window ends', async () => {
    // From another address (the proxy says so; 127.0.0.1 is trusted): the test's own address keeps working.
    const from = { 'x-forwarded-for': '198.51.100.7' };
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${server.url}/v1/sandboxes`, {
        headers: { ...from, authorization: 'Bearer wrong-0123456789abcdef' },
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    const blocked = await fetch(`${server.url}/v1/sandboxes`, {
      headers: { ...from, authorization: `Bearer ${TEST_KEY}` },
    });
    expect(blocked.status).toBe(429);
    expect(((await blocked.json()) as any).error.code).toBe('rate_limited');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Sign-in with a wrong key counts the same way.
    const signIn = await fetch(`${server.url}/v1/session`, {
      method: 'POST',
      headers: { ...from, 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: TEST_KEY }),
    });
    expect(signIn.status).toBe(429);
    // Other addresses are not affected.
    expect((await server.call('GET', '/v1/sandboxes')).status).toBe(200);
  });
});
