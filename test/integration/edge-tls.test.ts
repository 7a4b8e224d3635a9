import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createAppSandbox, edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';
import { makeWildcardCert } from '../helpers/tls.js';

describe('edge TLS listener with a wildcard certificate (real engine)', () => {
  let server: TestServer;
  let dir: string;
  let ca: Buffer;
  let id: string;
  let host: string;

  function tlsGet(path: string, headers: Record<string, string> = {}) {
    const { hostname, port } = new URL(server.app.edge.tlsUrl!);
    return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const req = httpsRequest(
        { host: hostname, port, path, ca, servername: host, headers: { host, ...headers } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c) => parts.push(c));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString();
            let body: any = text;
            try {
              body = JSON.parse(text);
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode!, headers: res.headers, body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'previewd-tls-'));
    const { certFile, keyFile } = makeWildcardCert(dir);
    ca = readFileSync(certFile);
    server = await startTestServer({
      'edge.tls': { certFile, keyFile, addr: '127.0.0.1:0' },
      'edge.httpsRedirect': true,
    });
    ({ id } = await createAppSandbox(server, { visibility: 'private' }));
    host = previewHostOf(id);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds https preview URLs and redirects plain HTTP to https', async () => {
    const tlsPort = new URL(server.app.edge.tlsUrl!).port;
    const sb = await server.call('GET', `/v1/sandboxes/${id}`);
    expect(sb.body.previews).toEqual([{ port: 3000, url: `https://${host}:${tlsPort}` }]);
    const plain = await edgeJson(server, host, '/echo?x=1');
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe(`https://${host}:${tlsPort}/echo?x=1`);
  });

  it('serves the preview over TLS; the token cookie is SameSite=None; Secure (iframes)', async () => {
    const minted = await server.call('POST', `/v1/sandboxes/${id}/preview-tokens`, { port: 3000 });
    expect(minted.body.url.startsWith(`https://${host}:`)).toBe(true);
    const exchange = await tlsGet(`/echo?previewd_token=${minted.body.token}`, { accept: 'text/html' });
    expect(exchange.status).toBe(303);
    const cookie = String(exchange.headers['set-cookie']);
    expect(cookie).toContain('SameSite=None; Secure');
    expect(cookie).toContain('HttpOnly');
    const res = await waitFor(async () => {
      const r = await tlsGet('/echo', { cookie: `previewd_token=${minted.body.token}` });
      return r.status === 200 ? r : undefined;
    });
    expect(res.body.headers.host).toBe(host);
    expect(res.body.headers['x-forwarded-proto']).toBe('https');
  });

  it('proxies WebSockets over wss', async () => {
    const minted = await server.call('POST', `/v1/sandboxes/${id}/preview-tokens`, {});
    const { port } = new URL(server.app.edge.tlsUrl!);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, {
      ca,
      servername: host,
      headers: { host, 'x-previewd-token': minted.body.token },
    } as WebSocket.ClientOptions);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
    });
    expect(JSON.parse(first).host).toBe(host);
    ws.close();
  });
});
