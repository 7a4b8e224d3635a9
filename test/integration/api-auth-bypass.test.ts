import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOperations, fillPath } from '../helpers/openapi-routes.js';
import { errorCodeOf, rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

/** The routes that say they need no key; any other route that answers without one is a hole. */
const PUBLIC_ROUTES = new Set([
  'GET /healthz',
  'GET /readyz',
  'POST /v1/session',
  'DELETE /v1/session',
  'GET /v1/traefik/forward-auth',
]);

/** Ways to spell a path that a check on the raw URL would miss but a router may still match. */
const spellings: [name: string, spell: (path: string, base: string) => string][] = [
  ['plain', (p) => p],
  ['percent-encoded letter (%76)', (p) => p.replace('/v1', '/%761')],
  ['percent-encoded v1 (%76%31)', (p) => p.replace('/v1', '/%76%31')],
  [
    'percent-encoded segment',
    (p) =>
      p.replace(
        /^\/v1\/(\w+)/,
        (_, seg: string) => `/v1/${[...seg].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')}`,
      ),
  ],
  ['encoded slash %2f', (p) => p.replace('/v1/', '/v1%2f')],
  ['encoded slash %2F', (p) => p.replace('/v1/', '/v1%2F')],
  ['leading //', (p) => `/${p}`],
  ['inner //', (p) => p.replace('/v1/', '/v1//')],
  ['trailing /', (p) => `${p}/`],
  ['leading /./', (p) => `/.${p}`],
  ['inner /./', (p) => p.replace('/v1/', '/v1/./')],
  ['/x/../', (p) => `/x/..${p}`],
  ['%2e segment', (p) => `/%2e${p}`],
  ['%2e%2e segment', (p) => `/x/%2e%2e${p}`],
  ['%2E%2E segment', (p) => `/x/%2E%2E${p}`],
  ['; parameter in a segment', (p) => p.replace('/v1/', '/v1;x=1/')],
  ['; parameter at the end', (p) => `${p};jsessionid=1`],
  ['..;/ segment', (p) => `/v1/..;${p}`],
  ['trailing dot', (p) => `${p}.`],
  ['upper case', (p) => p.toUpperCase()],
  ['mixed case', (p) => p.replace('/v1/', '/V1/').replace('/sandboxes', '/Sandboxes')],
  ['overlong UTF-8 slash', (p) => p.replace('/v1/', '/v1%c0%af')],
  ['overlong UTF-8 dots', (p) => `/x/%c0%ae%c0%ae${p}`],
  ['fullwidth v', (p) => p.replace('/v1', '/%ef%bd%961')],
  ['double-encoded letter', (p) => p.replace('/v1', '/%25761')],
  ['? before the path', (p) => `?${p}`],
  ['encoded ? before the path', (p) => `/%3f${p}`],
  ['fragment', (p) => `${p}#x`],
  ['backslashes', (p) => p.replaceAll('/', '\\')],
  ['encoded backslash', (p) => p.replace('/v1/', '/v1%5c')],
  ['NUL at the end', (p) => `${p}%00`],
  ['encoded tab', (p) => `${p}%09`],
  ['encoded space', (p) => `${p}%20`],
  ['absolute-form, same host', (p, base) => `${base}${p}`],
  ['absolute-form, other host', (p) => `http://evil.example${p}`],
  ['key in ?access_token=', (p) => `${p}?access_token=${TEST_KEY}`],
  ['key in ?api_key=', (p) => `${p}?api_key=${TEST_KEY}`],
];

/** Credentials that are not a key, sent on the plain path. */
const headerTricks: [name: string, headers: string[]][] = [
  ['empty bearer', ['authorization: Bearer ']],
  ['basic with the key', [`authorization: Basic ${Buffer.from(`x:${TEST_KEY}`).toString('base64')}`]],
  ['key without scheme', [`authorization: ${TEST_KEY}`]],
  ['wrong bearer', ['authorization: Bearer not-a-key-0123456789']],
  ['owner header alone', ['x-previewd-owner: alice']],
  ['X-Original-URL to a public route', ['x-original-url: /healthz', 'x-rewrite-url: /healthz']],
  ['method override', ['x-http-method-override: GET']],
  ['forged session cookie', ['cookie: previewd_session=s2_forged']],
  ['forwarded from loopback', ['x-forwarded-for: 127.0.0.1', 'x-real-ip: 127.0.0.1']],
  ['key as a subprotocol without an upgrade', [`sec-websocket-protocol: previewd, previewd.key.${TEST_KEY}`]],
  [
    'forged node-to-node call (an admin caller)',
    [
      'x-previewd-node-auth: forged-node-credential',
      `x-previewd-node-caller: ${Buffer.from(JSON.stringify({ keyId: 'k', role: 'admin', via: 'key' })).toString('base64url')}`,
      'x-previewd-forwarded-by: other-node',
    ],
  ],
  [
    'node caller header alone',
    [
      `x-previewd-node-caller: ${Buffer.from('{"keyId":"k","role":"admin","via":"key"}').toString('base64url')}`,
    ],
  ],
];

describe('auth cannot be bypassed: every route in /openapi.json, every spelling, no key', () => {
  let server: TestServer;
  let id: string;
  beforeAll(async () => {
    // Thousands of keyless requests on purpose: the failed-auth limit would answer 429 first.
    server = await startTestServer({ 'api.rateLimit.authFailures': 100_000 });
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': "require('http').createServer((q, s) => s.end('hi')).listen(3000)" },
      runtime: { start: 'node server.js', port: 3000 },
    });
    expect(created.status).toBe(201);
    id = created.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('marks exactly the intended routes public', async () => {
    const ops = await apiOperations(server);
    expect(ops.length).toBeGreaterThan(30);
    const publicOps = ops.filter((o) => o.public).map((o) => `${o.method} ${o.template}`);
    expect(new Set(publicOps)).toEqual(PUBLIC_ROUTES);
  });

  it('answers 401, 404 or a router 400/421 to every spelling of every other route, never 2xx', async () => {
    const ops = (await apiOperations(server)).filter((o) => !o.public);
    const targets = [...ops.map((o) => ({ method: o.method, path: fillPath(o.template, { id }) }))];
    targets.push({ method: 'GET', path: '/metrics' });
    const seen = new Map<string, Map<number, number>>();
    const holes: string[] = [];
    const judge = (
      what: string,
      method: string,
      target: string,
      status: number,
      code: string | undefined,
    ) => {
      const row = seen.get(what) ?? new Map<number, number>();
      row.set(status, (row.get(status) ?? 0) + 1);
      seen.set(what, row);
      const routingOnly = status !== 404 || code === undefined || code === 'not_found';
      if (![400, 401, 404, 421].includes(status) || !routingOnly) {
        holes.push(`${what}: ${method} ${target} → ${status} ${code ?? ''}`);
      }
    };
    let sent = 0;
    for (const { method, path } of targets) {
      const body = method === 'POST' || method === 'PUT' ? Buffer.from('{}') : undefined;
      const type = body ? ['content-type: application/json'] : [];
      const host = `host: ${new URL(server.url).host}`;
      for (const [name, spell] of spellings) {
        const target = spell(path, server.url);
        const answer = await rawRequest(server.url, rawHttp(method, target, [host, ...type], body));
        sent++;
        judge(name, method, target, answer.status, errorCodeOf(answer));
      }
      for (const [name, headers] of headerTricks) {
        const answer = await rawRequest(server.url, rawHttp(method, path, [host, ...type, ...headers], body));
        sent++;
        judge(name, method, path, answer.status, errorCodeOf(answer));
      }
    }
    console.log(
      `auth bypass: ${sent} requests over ${targets.length} routes, ${spellings.length} spellings + ${headerTricks.length} header tricks`,
    );
    for (const [what, row] of seen) {
      console.log(`  ${what.padEnd(42)} ${[...row].map(([s, n]) => `${s}×${n}`).join(' ')}`);
    }
    expect(holes).toEqual([]);
  });

  it('refuses every spelling of the exec WebSocket upgrade without a key (never 101)', async () => {
    const path = `/v1/sandboxes/${id}/exec/ws`;
    const upgrade = [
      `host: ${new URL(server.url).host}`,
      'upgrade: websocket',
      'sec-websocket-version: 13',
      'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==',
    ];
    const statuses: number[] = [];
    for (const [, spell] of spellings) {
      const raw = rawHttp('GET', spell(path, server.url), upgrade)
        .toString('latin1')
        .replace('connection: close', 'connection: Upgrade');
      const answer = await rawRequest(server.url, Buffer.from(raw, 'latin1'), 5_000);
      statuses.push(answer.status);
    }
    // A wrong key offered as a subprotocol is refused too.
    const wrong = rawHttp('GET', path, [
      ...upgrade,
      'sec-websocket-protocol: previewd, previewd.key.nope-0123456789abcdef',
    ])
      .toString('latin1')
      .replace('connection: close', 'connection: Upgrade');
    statuses.push((await rawRequest(server.url, Buffer.from(wrong, 'latin1'), 5_000)).status);
    expect(statuses.filter((s) => s === 101 || (s >= 200 && s < 300))).toEqual([]);
    expect(statuses.every((s) => [400, 401, 404, 421].includes(s))).toBe(true);
    // The same upgrade with the key is accepted: the refusals above are about the key.
    const ok = rawHttp('GET', path, [
      ...upgrade,
      `sec-websocket-protocol: previewd, previewd.key.${TEST_KEY}`,
    ])
      .toString('latin1')
      .replace('connection: close', 'connection: Upgrade');
    const accepted = await rawRequest(server.url, Buffer.from(ok, 'latin1'), 2_000);
    expect(accepted.status).toBe(101);
    expect(accepted.head).toMatch(/sec-websocket-protocol: previewd\r?$/im);
    expect(accepted.head).not.toContain(TEST_KEY);
  });
});
