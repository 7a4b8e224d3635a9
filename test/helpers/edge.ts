import { request as httpRequest } from 'node:http';
import { request } from 'undici';
import WebSocket from 'ws';
import type { TestServer } from './server.js';
import { waitState } from './server.js';

/**
 * The upstream app the edge tests proxy to (test data, runs with `node server.js` in the sandbox):
 * an HTTP echo, an upload digest, gated chunked and SSE streams (the stream only ends after
 * /release, so receiving its first part proves the edge does not buffer), a CORS header and a
 * tiny hand-written WebSocket echo. Listens on 3000 and 4000.
 */
export const upstreamApp = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const gates = new Map();
function gate(name) { return new Promise((r) => gates.set(name, r)); }
function json(res, status, value, headers = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
function handler(port) {
  return (req, res) => {
    const url = new URL(req.url, 'http://app');
    if (url.pathname === '/echo') {
      const parts = [];
      req.on('data', (c) => parts.push(c));
      req.on('end', () => json(res, 200, { port, sandbox: process.env.PREVIEWD_SANDBOX_ID, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(parts).toString() }));
      return;
    }
    if (url.pathname === '/upload') {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      req.on('data', (c) => { bytes += c.length; hash.update(c); });
      req.on('end', () => json(res, 200, { bytes, sha256: hash.digest('hex') }));
      return;
    }
    if (url.pathname === '/chunked') {
      const name = url.searchParams.get('gate');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first-chunk\n');
      gate(name).then(() => res.end('last-chunk\n'));
      return;
    }
    if (url.pathname === '/sse') {
      const name = url.searchParams.get('gate');
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      gate(name).then(() => { res.write('data: two\n\n'); res.end(); });
      return;
    }
    if (url.pathname === '/release') {
      const open = gates.get(url.searchParams.get('gate'));
      if (open) open();
      return json(res, open ? 200 : 404, { released: !!open });
    }
    if (url.pathname === '/download') {
      const mb = Number(url.searchParams.get('mb') || 1);
      const chunk = Buffer.alloc(1024 * 1024, 97);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mb * chunk.length });
      let sent = 0;
      const pump = () => { while (sent < mb) { sent++; if (!res.write(chunk)) return res.once('drain', pump); } res.end(); };
      pump();
      return;
    }
    if (url.pathname === '/bounce') {
      // A dev server restarting itself: the port closes for a while, then opens again.
      const ms = Number(url.searchParams.get('ms') || 1000);
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end('{"bouncing":true}', () => {
        servers.get(port).close();
        setTimeout(() => listen(port), ms);
      });
      return;
    }
    if (url.pathname === '/cors') {
      return json(res, 200, { ok: true }, { 'access-control-allow-origin': 'https://app.example', 'access-control-allow-credentials': 'true' });
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>app</title><h1 id="app">hello from the app on ' + port + '</h1>');
  };
}
function frame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : Buffer.from([0x80 | opcode, 126, len >> 8, len & 255]);
  return Buffer.concat([head, payload]);
}
function upgrade(req, socket) {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  socket.write(frame(1, Buffer.from(JSON.stringify({ host: req.headers.host, forwardedHost: req.headers['x-forwarded-host'], url: req.url }))));
  let buf = Buffer.alloc(0);
  socket.on('data', (data) => {
    buf = Buffer.concat([buf, data]);
    while (buf.length >= 2) {
      const opcode = buf[0] & 15;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      const masked = (buf[1] & 128) !== 0;
      const total = off + (masked ? 4 : 0) + len;
      if (buf.length < total) return;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      const payload = Buffer.from(buf.subarray(off + (masked ? 4 : 0), total));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(total);
      if (opcode === 8) { socket.end(frame(8, payload)); return; }
      if (opcode === 9) { socket.write(frame(10, payload)); continue; }
      socket.write(frame(opcode, payload));
    }
  });
  socket.on('error', () => {});
}
const servers = new Map();
function listen(port) {
  const server = http.createServer(handler(port));
  server.on('upgrade', upgrade);
  server.listen(port, '0.0.0.0', () => console.log('listening on ' + port));
  servers.set(port, server);
}
for (const port of [3000, 4000]) listen(port);
`;

/** Creates a sandbox running the upstream app and waits until it is running. */
export async function createAppSandbox(
  server: TestServer,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; body: any }> {
  const res = await server.call('POST', '/v1/sandboxes', {
    files: { 'server.js': upstreamApp },
    runtime: { start: 'node server.js', port: 3000 },
    ...extra,
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  const id = res.body.id as string;
  await waitState(server, id, 'running');
  return { id, body: res.body };
}

export { waitState };

export function previewHostOf(id: string, port = 3000, domain = 'preview.localhost'): string {
  return `${port}-${id}.${domain}`;
}

/** A request to the edge with a preview Host header (undici: the Host header is ours to set). */
export async function edge(
  server: TestServer,
  host: string,
  path = '/',
  opts: { method?: string; headers?: Record<string, string>; body?: any } = {},
) {
  const res = await request(`${server.edgeUrl}${path}`, {
    method: (opts.method ?? 'GET') as never,
    headers: { host, ...opts.headers },
    body: opts.body,
  });
  return res;
}

export async function edgeJson(
  server: TestServer,
  host: string,
  path = '/',
  opts: { method?: string; headers?: Record<string, string>; body?: any } = {},
) {
  const res = await edge(server, host, path, opts);
  const text = await res.body.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

/** Opens a WebSocket through the edge; resolves with the socket and its first message. */
export function wsConnect(
  server: TestServer,
  host: string,
  path = '/ws',
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket; first: string }> {
  const url = `${server.edgeUrl.replace('http', 'ws')}${path}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { host, ...headers } });
    ws.once('message', (data) => resolve({ ws, first: data.toString() }));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

export function wsRoundTrip(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(data.toString()));
    ws.once('error', reject);
    ws.send(text);
  });
}

/**
 * A request through the edge with node:http (undici refuses to send hop-by-hop headers such as
 * Keep-Alive or a Connection naming others); the answer parsed as JSON.
 */
export function rawJson(server: TestServer, host: string, path: string, headers: Record<string, string>) {
  const { hostname, port } = new URL(server.edgeUrl);
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, headers: { ...headers, host } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString()) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
