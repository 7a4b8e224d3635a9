import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probePort } from '../../src/edge/port-probe.js';
import {
  createAppSandbox,
  edgeJson,
  previewHostOf,
  upstreamApp,
  waitState,
  wsConnect,
  wsRoundTrip,
} from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

/** /metrics wants an admin key (or api.metricsToken). */
const adminAuth = { authorization: `Bearer ${TEST_KEY}` };

async function startsAfter(server: TestServer, id: string, afterId: number): Promise<number> {
  const events = await server.app.bus.history({ sandboxId: id, afterId });
  return events.filter(
    (e) =>
      e.type === 'sandbox.state' && (e.data as any).from === 'stopped' && (e.data as any).to === 'starting',
  ).length;
}

async function lastEventId(server: TestServer, id: string): Promise<number> {
  const events = await server.app.bus.history({ sandboxId: id });
  return events[events.length - 1]?.id ?? 0;
}

describe('edge wake-on-request and honest pages (real engine)', () => {
  let server: TestServer;
  let id: string;
  let host: string;

  beforeAll(async () => {
    server = await startTestServer();
    ({ id } = await createAppSandbox(server));
    host = previewHostOf(id);
    await waitFor(async () => ((await edgeJson(server, host, '/echo')).status === 200 ? true : undefined));
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('wakes a stopped sandbox for a POST, holding it and keeping its body', async () => {
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const mark = await lastEventId(server, id);
    const res = await edgeJson(server, host, '/echo', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'text/html' },
      body: 'body survives the wake',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: 'POST', body: 'body survives the wake' });
    expect(await startsAfter(server, id, mark)).toBe(1);
  });

  it('gives a browser navigation the starting page, whose status endpoint says when the app answers', async () => {
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const page = await edgeJson(server, host, '/', {
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    expect(page.status).toBe(503);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.text).toContain('/__previewd/status');
    expect(page.text).not.toMatch(/http-equiv=["']?refresh/i);
    const status = await waitFor(async () => {
      const s = await edgeJson(server, host, '/__previewd/status', {
        headers: { accept: 'application/json' },
      });
      return s.body.ready ? s.body : undefined;
    });
    expect(status).toMatchObject({ state: 'running', ready: true, port: 3000 });
    const app = await edgeJson(server, host, '/', { headers: { accept: 'text/html' } });
    expect(app.status).toBe(200);
    expect(app.text).toContain('hello from the app on 3000');
  });

  it('shares one wake among 50 concurrent requests', async () => {
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const mark = await lastEventId(server, id);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        edgeJson(server, host, `/echo?n=${i}`, { headers: { accept: 'application/json' } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(results.map((r) => r.body.url)).toEqual(Array.from({ length: 50 }, (_, i) => `/echo?n=${i}`));
    expect(await startsAfter(server, id, mark)).toBe(1);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: adminAuth })).text();
    expect(metrics).toMatch(/previewd_edge_wakes_total\{result="ok"\} [1-9]/);
    expect(metrics).toMatch(/previewd_edge_wake_duration_seconds_count [1-9]/);
  });

  it('holds a WebSocket upgrade to a stopped sandbox until the app answers', async () => {
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const { ws, first } = await wsConnect(server, host, '/ws');
    expect(JSON.parse(first).host).toBe(host);
    expect(await wsRoundTrip(ws, 'after wake')).toBe('after wake');
    ws.close();
  });

  it('wakes a paused sandbox', async () => {
    expect((await server.call('POST', `/v1/sandboxes/${id}/pause`)).body.state).toBe('paused');
    const res = await edgeJson(server, host, '/echo');
    expect(res.status).toBe(200);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
  });

  it('treats a port closed by a restarting dev server as starting, not as an error', async () => {
    const addr = await server.app.provider.address(id, 3000);
    expect((await edgeJson(server, host, '/echo')).status).toBe(200);
    const bounce = async () => {
      expect((await edgeJson(server, host, '/bounce?ms=3000')).body).toEqual({ bouncing: true });
      await waitFor(async () => ((await probePort(addr.host, addr.port, 200)) ? undefined : true));
    };
    // A GET routed as "ready" meets the closed port: it is held until the port is back, then retried.
    await bounce();
    const held = await edgeJson(server, host, '/echo?after=bounce');
    expect(held.status).toBe(200);
    expect(held.body.url).toBe('/echo?after=bounce');
    // A browser navigation meeting the closed port gets the starting page.
    await bounce();
    const page = await edgeJson(server, host, '/', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(503);
    expect(page.text).toContain('Starting the preview');
  });

  it('shows the starting page while the app has not opened its port, then the app', async () => {
    const slow = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': upstreamApp },
      runtime: { start: `sh -c 'sleep 6; exec node server.js'`, port: 3000 },
    });
    await waitState(server, slow.body.id, 'running');
    const slowHost = previewHostOf(slow.body.id);
    const page = await edgeJson(server, slowHost, '/', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(503);
    expect(page.text).toContain('Starting the preview');
    // A programmatic client is held until the port answers, then proxied.
    const held = await edgeJson(server, slowHost, '/echo', { method: 'PUT', body: 'held' });
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ method: 'PUT', body: 'held' });
  });

  it('reports a crashed app with its exit code and last log lines', async () => {
    const crash = await server.call('POST', '/v1/sandboxes', {
      runtime: { start: `node -e "console.log('boom: missing module'); process.exit(3)"`, port: 3000 },
    });
    const crashHost = previewHostOf(crash.body.id);
    await waitFor(async () => {
      const s = (await server.call('GET', `/v1/sandboxes/${crash.body.id}`)).body.state;
      return s === 'running' || s === 'stopped' ? s : undefined;
    });
    const res = await edgeJson(server, crashHost, '/');
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('app_crashed');
    expect(res.body.error.details.exitCode).toBe(3);
    expect(res.body.error.details.logs.join('\n')).toContain('boom: missing module');
    const html = await edgeJson(server, crashHost, '/echo', {
      method: 'POST',
      headers: { accept: 'text/html' },
      body: 'x',
    });
    expect(html.status).toBe(502);
    expect(html.text).toContain('The app crashed');
    expect(html.text).toContain('boom: missing module');
  });

  it('answers 503 with Retry-After when the sandbox cannot start', async () => {
    const broken = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': upstreamApp },
      runtime: { start: 'node server.js', port: 3000 },
    });
    const bid = broken.body.id as string;
    await waitState(server, bid, 'running');
    await server.call('POST', `/v1/sandboxes/${bid}/stop`);
    // The container and its image vanish behind previewd's back: the start cannot succeed.
    await server.app.provider.destroy(bid, { keepWorkspace: true });
    await server.app.store.updateSandbox(bid, { image: 'previewd/no-such-image:0' });
    server.app.edge.routes.invalidate(bid);
    const res = await edgeJson(server, previewHostOf(bid), '/echo');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('wake_failed');
    expect(res.headers['retry-after']).toBe('5');
    // Now in state error: the same honest answer, with Retry-After, and no wake attempt.
    const again = await edgeJson(server, previewHostOf(bid), '/', { headers: { accept: 'text/html' } });
    expect(again.status).toBe(503);
    expect(again.text).toContain('sandbox_error');
    expect(again.headers['retry-after']).toBe('5');
  });
});
