import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('edge proxying (real engine, real sandbox)', () => {
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

  it('runs the edge set-up this project asks for (HAProxy front or the built-in edge alone)', () => {
    const builtinOnly = process.env.PREVIEWD_TEST_EDGE_FRONT === 'off';
    expect(server.app.edge.front === undefined).toBe(builtinOnly);
    expect(server.app.edge.builtinUrl === server.edgeUrl).toBe(builtinOnly);
  });

  it('lists the preview URL built from configuration', async () => {
    const res = await server.call('GET', `/v1/sandboxes/${id}`);
    expect(res.body.previews).toEqual([
      { port: 3000, url: `http://${host}:${new URL(server.edgeUrl).port}` },
    ]);
  });

  it('passes the browser Host and X-Forwarded-*, strips hop-by-hop and internal headers', async () => {
    // node:http, since undici refuses to send hop-by-hop headers.
    const res = await rawJson(server, `${host}:8080`, '/echo?x=1', {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-previewd-token': 'whatever',
      'x-previewd-internal': 'secret',
      forwarded: 'for=6.6.6.6',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic abc',
      connection: 'keep-alive, x-drop-me',
      'x-drop-me': 'hop',
      'x-custom': 'kept',
    });
    expect(res.status).toBe(200);
    const h = res.body.headers;
    expect(h.host).toBe(`${host}:8080`);
    expect(h['x-forwarded-host']).toBe(`${host}:8080`);
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-custom']).toBe('kept');
    for (const name of [
      'x-previewd-token',
      'x-previewd-internal',
      'forwarded',
      'keep-alive',
      'proxy-authorization',
      'x-drop-me',
    ]) {
      expect(h).not.toHaveProperty(name);
    }
    expect(res.body.url).toBe('/echo?x=1');
  });

  it('routes an upper-case id in the Host', async () => {
    const res = await edgeJson(server, previewHostOf(id.toUpperCase()).toUpperCase(), '/echo');
    expect(res.status).toBe(200);
    expect(res.body.port).toBe(3000);
  });

  it('passes the app’s CORS headers untouched and adds none', async () => {
    const cors = await edgeJson(server, host, '/cors', { headers: { origin: 'https://app.example' } });
    expect(cors.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(cors.headers['access-control-allow-credentials']).toBe('true');
    const plain = await edgeJson(server, host, '/echo', { headers: { origin: 'https://other.example' } });
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('proxies a POST with its body', async () => {
    const res = await edgeJson(server, host, '/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(res.body).toMatchObject({ method: 'POST', body: '{"hello":"world"}' });
  });

  it('streams a chunked response without buffering', async () => {
    const res = await edge(server, host, '/chunked?gate=c1');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    expect(Buffer.from(first.value).toString()).toBe('first-chunk\n');
    // The app only ends the response after this; receiving the first chunk proves nothing buffered.
    expect((await edgeJson(server, host, '/release?gate=c1')).body.released).toBe(true);
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe('last-chunk\n');
  });

  it('streams server-sent events', async () => {
    const res = await edge(server, host, '/sse?gate=s1', { headers: { accept: 'text/event-stream' } });
    expect(res.headers['content-type']).toBe('text/event-stream');
    const it = res.body[Symbol.asyncIterator]();
    expect(Buffer.from((await it.next()).value).toString()).toBe('data: one\n\n');
    await edgeJson(server, host, '/release?gate=s1');
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe('data: two\n\n');
  });

  it('proxies a WebSocket with the browser Host', async () => {
    const { ws, first } = await wsConnect(server, host, '/hmr?token=1');
    expect(JSON.parse(first)).toEqual({ host, forwardedHost: host, url: '/hmr?token=1' });
    expect(await wsRoundTrip(ws, 'ping')).toBe('ping');
    expect(await wsRoundTrip(ws, 'x'.repeat(1000))).toBe('x'.repeat(1000));
    ws.close();
  });

  it('streams a 50 MB upload and a 50 MB download', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const hash = createHash('sha256');
    for (let i = 0; i < 50; i++) hash.update(chunk);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 50; i++) yield chunk;
      })(),
    );
    const res = await edgeJson(server, host, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.body).toEqual({ bytes: 50 * 1024 * 1024, sha256: hash.digest('hex') });
    const down = await edge(server, host, '/download?mb=50');
    let bytes = 0;
    for await (const c of down.body) bytes += c.length;
    expect(bytes).toBe(50 * 1024 * 1024);
  });

  it('answers unknown sandboxes and hosts honestly: JSON for programs, HTML for browsers', async () => {
    const unknown = previewHostOf('01aaaaaaaaaaaaaaaaaaaaaaaa');
    const json = await edgeJson(server, unknown, '/');
    expect(json.status).toBe(404);
    expect(json.body.error.code).toBe('sandbox_not_found');
    expect(json.body.error.hint).toBeTruthy();
    const html = await edgeJson(server, unknown, '/', { headers: { accept: 'text/html' } });
    expect(html.status).toBe(404);
    expect(html.headers['content-type']).toContain('text/html');
    expect(html.text).toContain('sandbox_not_found');
    const notPreview = await edgeJson(server, 'example.com', '/');
    expect(notPreview.status).toBe(404);
    expect(notPreview.body.error.code).toBe('not_a_preview_host');
  });

  it('exposes and unexposes a port at runtime, without a restart', async () => {
    const host4000 = previewHostOf(id, 4000);
    const before = await edgeJson(server, host4000, '/echo');
    expect(before.status).toBe(404);
    expect(before.body.error.code).toBe('port_not_exposed');
    const startedAt = (await server.call('GET', `/v1/sandboxes/${id}`)).body.startedAt;

    const exposed = await server.call('POST', `/v1/sandboxes/${id}/ports`, { port: 4000 });
    expect(exposed.status).toBe(200);
    expect(exposed.body.previews.map((p: { port: number }) => p.port)).toEqual([3000, 4000]);
    const after = await edgeJson(server, host4000, '/echo');
    expect(after.status).toBe(200);
    expect(after.body.port).toBe(4000);
    expect(after.body.headers.host).toBe(host4000);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.startedAt).toBe(startedAt);

    expect((await server.call('DELETE', `/v1/sandboxes/${id}/ports/4000`)).status).toBe(200);
    expect((await edgeJson(server, host4000, '/echo')).body.error.code).toBe('port_not_exposed');
    expect((await server.call('DELETE', `/v1/sandboxes/${id}/ports/4000`)).body.error.code).toBe(
      'port_not_exposed',
    );
  });

  it('keeps an access log per sandbox and exports metrics', async () => {
    await edgeJson(server, host, '/echo?logged=1');
    // Through the HAProxy front the entry comes from its log line, a moment after the answer.
    const entries = await waitFor(async () => {
      const log = await server.call('GET', `/v1/sandboxes/${id}/access-log?limit=50`);
      expect(log.status).toBe(200);
      return log.body.entries[0]?.path === '/echo?logged=1' ? (log.body.entries as any[]) : undefined;
    });
    expect(entries[0]).toMatchObject({
      method: 'GET',
      path: '/echo?logged=1',
      status: 200,
      port: 3000,
      websocket: false,
    });
    expect(entries[0].bytes).toBeGreaterThan(0);
    expect(entries.some((e) => e.websocket && e.path === '/hmr?token=1' && e.status === 101)).toBe(true);
    const metrics = await request(`${server.url}/metrics`, { headers: adminAuth });
    const text = await metrics.body.text();
    expect(text).toContain(`previewd_edge_requests_total{sandbox="${id}",port="3000",status="200"}`);
    expect(text).toContain('previewd_edge_request_duration_seconds_bucket');
  });

  it('documents the preview routes in OpenAPI', async () => {
    const doc = (await server.call('GET', '/openapi.json')).body;
    for (const path of [
      '/v1/sandboxes/{id}/ports',
      '/v1/sandboxes/{id}/ports/{port}',
      '/v1/sandboxes/{id}/preview-tokens',
      '/v1/sandboxes/{id}/access-log',
    ]) {
      expect(doc.paths).toHaveProperty([path]);
    }
  });

  it('counts preview traffic as activity, batched', async () => {
    const before = (await server.app.store.getSandbox(id))!.lastActivityAt;
    await new Promise((r) => setTimeout(r, 5));
    await edgeJson(server, host, '/echo');
    await server.app.edge.activity.flush();
    const after = (await server.app.store.getSandbox(id))!.lastActivityAt;
    expect(after > before).toBe(true);
  });
});
