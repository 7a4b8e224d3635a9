import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrontProxy } from '../../src/edge/front-proxy.js';
import {
  createAppSandbox,
  edge,
  edgeJson,
  previewHostOf,
  rawJson,
  wsConnect,
  wsRoundTrip,
} from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

/** /metrics wants an admin key (or api.metricsToken). */
const adminAuth = { authorization: `Bearer ${TEST_KEY}` };

/**
 * The edge's HAProxy front (edge.front): the built-in edge publishes a running public preview
 * once it reached the app, HAProxy then serves it itself; everything else still goes through the
 * built-in edge. The other edge suites run against this set-up too (and against the built-in
 * edge alone in the edge-builtin project); this file checks what only the front does.
 */
describe('edge front: HAProxy serves running public previews (real engine, real HAProxy)', () => {
  let server: TestServer;
  let front: FrontProxy;
  let id: string;
  let host: string;

  /** Requests HAProxy sent straight to a sandbox so far. */
  const fastCount = async () => (await front.serverTotals())['fast/app'] ?? 0;

  /**
   * Requests until the built-in edge has published the route of `h`. With `settle`, also until it
   * stays published for a while: the engine reports a new sandbox's port open a moment after it
   * runs, and that event withdraws the route once more.
   */
  const published = (h = host, settle = false) =>
    waitFor(async () => {
      expect((await edgeJson(server, h, '/echo')).status).toBe(200);
      if (!front.routes(h)) return undefined;
      if (settle) await new Promise((r) => setTimeout(r, 1500));
      return front.routes(h) || undefined;
    });

  beforeAll(async () => {
    // A low log rate, so the test can go past it.
    server = await startTestServer({ 'edge.front': 'haproxy', 'edge.frontLogRate': 20 });
    front = server.app.edge.front!;
    ({ id } = await createAppSandbox(server));
    host = previewHostOf(id);
    await published(host, true);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('serves a published route from HAProxy, with the Host and forwarding headers the app expects', async () => {
    await published();
    expect(server.app.edge.builtinUrl).not.toBe(server.edgeUrl);
    const before = await fastCount();
    const res = await rawJson(server, `${host.toUpperCase()}:8080`, '/echo?via=front', {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-previewd-internal': 'secret',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
      'proxy-authorization': 'Basic abc',
      'keep-alive': 'timeout=5',
      connection: 'keep-alive',
      'x-custom': 'kept',
    });
    expect(res.status).toBe(200);
    expect(await fastCount()).toBe(before + 1);
    const h = res.body.headers;
    expect(h.host).toBe(`${host.toUpperCase()}:8080`);
    expect(h['x-forwarded-host']).toBe(`${host.toUpperCase()}:8080`);
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-custom']).toBe('kept');
    for (const name of [
      'x-previewd-internal',
      'forwarded',
      'x-real-ip',
      'proxy-authorization',
      'keep-alive',
      'x-drop-me',
    ]) {
      expect(h[name]).toBeUndefined();
    }
  });

  it("keeps its configuration, maps and the token keys readable by previewd's user only", () => {
    expect(statSync(front.runDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(front.runDir).filter((f) => /\.(cfg|map|pem)$/.test(f));
    expect(files).toEqual(expect.arrayContaining(['haproxy.cfg', 'fast-routes.map', 'preview-keys.map']));
    for (const f of files) expect(statSync(join(front.runDir, f)).mode & 0o777, f).toBe(0o600);
    // The keys are the edge's own (the front checks the same signatures).
    const kid = server.app.edge.tokens.issue({ sid: id, iat: 1, exp: 2 }).split('.')[1];
    expect(readFileSync(join(front.runDir, 'preview-keys.map'), 'utf8')).toMatch(
      new RegExp(`^${kid} \\S+$`, 'm'),
    );
  });

  it('leaves a request whose Connection header names other headers to the built-in edge, which drops them', async () => {
    await published();
    const before = await fastCount();
    const res = await rawJson(server, host, '/echo?named=1', {
      connection: 'keep-alive, x-drop-me',
      'x-drop-me': 'hop',
      'x-custom': 'kept',
    });
    expect(res.status).toBe(200);
    expect(res.body.headers['x-drop-me']).toBeUndefined();
    expect(res.body.headers['x-custom']).toBe('kept');
    expect(await fastCount()).toBe(before);
  });

  it('keeps the access log, metrics and activity for requests HAProxy served', async () => {
    await published();
    const before = await fastCount();
    const t0 = Date.now();
    expect((await edgeJson(server, host, '/echo?front-logged=1')).status).toBe(200);
    expect(await fastCount()).toBe(before + 1);
    const entry = await waitFor(async () => {
      const log = await server.call('GET', `/v1/sandboxes/${id}/access-log?limit=20`);
      return (log.body.entries as any[]).find((e) => e.path === '/echo?front-logged=1');
    });
    expect(entry).toMatchObject({ method: 'GET', status: 200, port: 3000, websocket: false });
    expect(entry.bytes).toBeGreaterThan(0);
    expect(server.app.edge.activity.lastSeen(id)).toBeGreaterThanOrEqual(t0);
    const text = await (await request(`${server.url}/metrics`, { headers: adminAuth })).body.text();
    expect(text).toContain(`previewd_edge_requests_total{sandbox="${id}",port="3000",status="200"}`);
  });

  it('logs up to edge.frontLogRate requests a second per preview and counts every one', async () => {
    const metric = async () => {
      const text = await (await request(`${server.url}/metrics`, { headers: adminAuth })).body.text();
      const m = new RegExp(`previewd_edge_front_requests_total\\{sandbox="${id}",port="3000"\\} (\\d+)`).exec(
        text,
      );
      return Number(m?.[1] ?? 0);
    };
    await published();
    // Settle: the counter has caught up with everything sent so far.
    let counted = await metric();
    await waitFor(async () => {
      await new Promise((r) => setTimeout(r, 5500));
      const now = await metric();
      const settled = now === counted;
      counted = now;
      return settled ? true : undefined;
    }, 30_000);
    const before = await fastCount();
    await Promise.all(Array.from({ length: 100 }, (_, i) => edgeJson(server, host, `/echo?burst=${i}`)));
    expect(await fastCount()).toBe(before + 100);
    await waitFor(async () => ((await metric()) === counted + 100 ? true : undefined), 15_000);
    const log = await server.call('GET', `/v1/sandboxes/${id}/access-log?limit=500`);
    const logged = (log.body.entries as any[]).filter((e) => e.path.startsWith('/echo?burst=')).length;
    expect(logged).toBeGreaterThanOrEqual(15);
    expect(logged).toBeLessThan(100);
  });

  it('counts a stream held open through HAProxy as activity while it lasts', async () => {
    await published();
    const before = await fastCount();
    const res = await edge(server, host, '/sse?gate=front-activity');
    const reader = res.body[Symbol.asyncIterator]();
    expect(String((await reader.next()).value)).toContain('data: one');
    expect(await fastCount()).toBe(before + 1);
    const opened = Date.now();
    // No log line until the stream ends. HAProxy's counters are polled every 5 s: the first poll
    // after the request counts it; later ones see no new request, only the one still in flight.
    await waitFor(
      async () => ((server.app.edge.activity.lastSeen(id) ?? 0) > opened + 5000 ? true : undefined),
      15_000,
    );
    await edgeJson(server, host, '/release?gate=front-activity');
    for (;;) if ((await reader.next()).done) break;
  });

  it('leaves WebSocket upgrades to the built-in edge', async () => {
    const before = await fastCount();
    const { ws, first } = await wsConnect(server, host, '/hmr');
    expect(JSON.parse(first).host).toBe(host);
    expect(await wsRoundTrip(ws, 'ping')).toBe('ping');
    ws.close();
    expect(await fastCount()).toBe(before);
  });

  it('hands a request the app refuses to the built-in edge and withdraws the route', async () => {
    // A route that went stale between two updates: nothing listens on the published port.
    const addr = await server.app.provider.address(id, 3000);
    front.publish(id, host, { host: addr.host, port: 3999 });
    await new Promise((r) => setTimeout(r, 50));
    const res = await edgeJson(server, host, '/echo?refused=1', { method: 'POST', body: 'kept body' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: 'POST', url: '/echo?refused=1', body: 'kept body' });
    expect((await front.serverTotals())['fast/builtin']).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (front.routes(host) ? undefined : true));
    await published();
  });

  it('applies route changes in order: a route withdrawn right after it was published stays withdrawn', async () => {
    await published();
    const addr = await server.app.provider.address(id, 3000);
    expect(await front.mapHosts()).toContain(host);
    for (let i = 0; i < 5; i++) {
      front.publish(id, host, { host: addr.host, port: 3990 + i });
      await front.withdraw(id);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(front.routes(host)).toBe(false);
    expect(await front.mapHosts()).not.toContain(host);
    await published();
    expect(await front.mapHosts()).toContain(host);
  });

  it('withdraws the route before the sandbox pauses; the built-in edge wakes it', async () => {
    expect((await server.call('POST', `/v1/sandboxes/${id}/pause`)).body.state).toBe('paused');
    expect(front.routes(host)).toBe(false);
    const before = await fastCount();
    const res = await edgeJson(server, host, '/echo?after=pause');
    expect(res.status).toBe(200);
    expect(await fastCount()).toBe(before);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
    await published();
  });

  it('never answers one preview from another sandbox (kept connections are per destination)', async () => {
    const { id: otherId } = await createAppSandbox(server);
    const otherHost = previewHostOf(otherId);
    await published(otherHost, true);
    await published();
    const mine = (await edgeJson(server, host, '/echo')).body.sandbox;
    const theirs = (await edgeJson(server, otherHost, '/echo')).body.sandbox;
    expect(mine).toBe(id);
    expect(theirs).toBe(otherId);
    expect(mine).not.toBe(theirs);
    const before = await fastCount();
    // Interleaved and concurrent, so HAProxy has idle connections to both apps to pick from.
    const answers = await Promise.all(
      Array.from({ length: 400 }, async (_, i) => {
        const h = i % 2 ? host : otherHost;
        const res = await edgeJson(server, h, `/echo?i=${i}`);
        return res.body.sandbox === (h === host ? mine : theirs);
      }),
    );
    expect(answers.filter((ok) => !ok)).toHaveLength(0);
    expect(await fastCount()).toBe(before + 400);
    await server.call('DELETE', `/v1/sandboxes/${otherId}`);
  });

  it('publishes a private preview only with its token check: a request without a token is still refused', async () => {
    const { id: privateId } = await createAppSandbox(server, { visibility: 'private' });
    const privateHost = previewHostOf(privateId);
    const { token } = (await server.call('POST', `/v1/sandboxes/${privateId}/preview-tokens`, {})).body;
    // Requests with the token until the route is published (a port event of the new sandbox can
    // withdraw it once more: see `published`).
    await waitFor(async () => {
      const res = await edgeJson(server, privateHost, '/echo', { headers: { 'x-previewd-token': token } });
      expect(res.status).toBe(200);
      return front.routes(privateHost) || undefined;
    });
    expect((await edgeJson(server, privateHost, '/echo')).status).toBe(401);
    await server.call('DELETE', `/v1/sandboxes/${privateId}`);
  });

  it('restarts HAProxy when it dies, with the routes it had', async () => {
    const pid = front.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => (front.pid && front.pid !== pid ? true : undefined));
    await waitFor(async () =>
      (await edgeJson(server, host, '/echo').catch(() => undefined))?.status === 200 ? true : undefined,
    );
    expect(front.routes(host)).toBe(true);
    const before = await fastCount();
    expect((await edgeJson(server, host, '/echo?after=restart')).status).toBe(200);
    expect(await fastCount()).toBe(before + 1);
  });
});

describe('edge shutdown with WebSockets open (real engine, real HAProxy)', () => {
  it('closes open WebSockets and stops, with the front and without it', async () => {
    for (const front of ['haproxy', 'off']) {
      const server = await startTestServer({ 'edge.front': front });
      try {
        const { id } = await createAppSandbox(server);
        const host = previewHostOf(id);
        await waitFor(async () =>
          (await edgeJson(server, host, '/echo')).status === 200 ? true : undefined,
        );
        const { ws } = await wsConnect(server, host, '/hmr');
        const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
        // Stopping must not wait for the browser to hang up.
        await server.app.edge.stop();
        await closed;
      } finally {
        await server.close();
      }
    }
  }, 90_000);
});
