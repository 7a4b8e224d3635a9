import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { frontKeyMap, frontRouteValue } from '../../src/edge/front-access.js';
import { renderFrontConfig } from '../../src/edge/front-config.js';
import { probePort } from '../../src/edge/port-probe.js';
import { PreviewAccess } from '../../src/edge/preview-access.js';
import type { PreviewTarget } from '../../src/edge/preview-host.js';
import { PreviewTokens } from '../../src/edge/preview-tokens.js';
import type { Route } from '../../src/edge/route-table.js';

/**
 * The front's token check (front-access.ts) in a real HAProxy, against the built-in edge's own
 * check (PreviewAccess, the code the edge runs): for every request below, the front serves it
 * itself only when the built-in edge would have let it through, and the app then sees the same
 * headers the built-in edge would pass on. Everything else reaches the built-in edge (here a
 * stand-in that only says it was reached).
 */
const sid = '01jabcdefghjkmnpqrstvwxyz0';
const otherSid = '01jabcdefghjkmnpqrstvwxyz1';
const host = `3000-${sid}.preview.localhost`;
const host4000 = `4000-${sid}.preview.localhost`;
const keys = [
  { kid: 'k1', secret: Buffer.alloc(32, 7) },
  { kid: 'k2', secret: Buffer.alloc(32, 9) },
];
const tokens = new PreviewTokens(keys);
const second = new PreviewTokens([keys[1]!]);
const stranger = new PreviewTokens([{ kid: 'k1', secret: Buffer.alloc(32, 8) }]);
const validAfter = Date.now() - 60_000;
const access = new PreviewAccess(tokens, { edge: {} } as Config);

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

function listen(
  handler: (req: IncomingMessage, body: string) => unknown,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const body = JSON.stringify(handler(req, ''));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  // An upgrade is answered as a plain response: enough to tell who was reached.
  server.on('upgrade', (req: IncomingMessage, socket) => {
    socket.on('error', () => undefined);
    const body = JSON.stringify(handler(req, ''));
    socket.end(
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port })),
  );
}

interface Answer {
  by: 'app' | 'builtin';
  headers: Record<string, string | string[] | undefined>;
}

describe('front token check = the built-in edge token check (real HAProxy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'previewd-front-access-'));
  let haproxy: ChildProcess;
  let app: Server;
  let builtin: Server;
  let frontPort: number;

  beforeAll(async () => {
    const a = await listen((req) => ({ by: 'app', headers: req.headers }));
    const b = await listen((req) => ({ by: 'builtin', headers: req.headers }));
    app = a.server;
    builtin = b.server;
    frontPort = await freePort();
    const mapFile = join(dir, 'routes.map');
    const keysFile = join(dir, 'keys.map');
    const upstream = { host: '127.0.0.1', port: a.port };
    writeFileSync(
      mapFile,
      `${host} ${frontRouteValue(upstream, { sandboxId: sid, port: 3000, validAfter })}\n` +
        `${host4000} ${frontRouteValue(upstream, { sandboxId: sid, port: 4000, validAfter })}\n`,
    );
    writeFileSync(keysFile, frontKeyMap(keys), { mode: 0o600 });
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      renderFrontConfig({
        plain: { host: '127.0.0.1', port: frontPort },
        httpsRedirect: false,
        builtin: { host: '127.0.0.1', port: b.port },
        socketPath: join(dir, 'haproxy.sock'),
        mapFile,
        keysFile,
        logRate: 1000,
      }),
    );
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(await probePort('127.0.0.1', frontPort, 100)); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  });
  afterAll(async () => {
    haproxy?.kill('SIGTERM');
    await Promise.all([app, builtin].map((s) => new Promise((r) => s?.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Raw header lines, so duplicates reach HAProxy as sent. */
  function ask(path: string, headers: [string, string][], onHost = host): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: frontPort,
          path,
          method: 'GET',
          headers: [['host', onHost], ...headers].flat(),
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            try {
              resolve(JSON.parse(text) as Answer);
            } catch {
              reject(new Error(`not an answer of app or builtin: ${res.statusCode} ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** What the built-in edge decides for the same request, and the headers it passes on. */
  function edgeVerdict(path: string, headers: [string, string][], port = 3000) {
    const merged: Record<string, string> = {};
    for (const [name, value] of headers) {
      const n = name.toLowerCase();
      if (merged[n] === undefined) merged[n] = value;
      else if (n === 'cookie') merged[n] = `${merged[n]}; ${value}`;
      else if (n !== 'authorization') merged[n] = `${merged[n]}, ${value}`;
    }
    const req = { url: path, method: 'GET', headers: merged } as unknown as IncomingMessage;
    const route = { id: sid, visibility: 'private', tokensValidAfter: validAfter } as Route;
    const target: PreviewTarget = { sandboxId: sid, port };
    const ok = access.authorize(req, undefined, route, target, false);
    return { ok, headers: merged };
  }

  const now = Date.now();
  const good = tokens.issue({ sid, iat: now, exp: now + 600_000 });
  const [, kid, body, sig] = good.split('.') as [string, string, string, string];
  const forgedBody = Buffer.from(JSON.stringify({ sid, iat: now, exp: now + 9e9 })).toString('base64url');
  const cases: [string, string, [string, string][], 'app' | 'builtin', string?][] = [
    ['no token', '/', [], 'builtin'],
    ['header', '/x?a=1', [['x-previewd-token', good]], 'app'],
    ['bearer', '/', [['authorization', `Bearer ${good}`]], 'app'],
    ['cookie among others', '/', [['cookie', `theme=dark; previewd_token=${good}; b=2`]], 'app'],
    ['cookie alone, spaced', '/', [['cookie', ` previewd_token = ${good} `]], 'app'],
    ['cookie first', '/', [['cookie', `previewd_token=${good};theme=dark`]], 'app'],
    [
      'second key verifies',
      '/',
      [['x-previewd-token', second.issue({ sid, iat: now, exp: now + 60_000 })]],
      'app',
    ],
    [
      'scoped to the port',
      '/',
      [['x-previewd-token', tokens.issue({ sid, port: 3000, iat: now, exp: now + 60_000 })]],
      'app',
    ],
    [
      'scoped to another port',
      '/',
      [['x-previewd-token', tokens.issue({ sid, port: 4000, iat: now, exp: now + 60_000 })]],
      'builtin',
    ],
    ['query exchange', `/?previewd_token=${good}`, [], 'builtin'],
    ['query plus header', `/?previewd_token=${good}`, [['x-previewd-token', good]], 'builtin'],
    ['expired', '/', [['x-previewd-token', tokens.issue({ sid, iat: now, exp: Date.now() - 1 })]], 'builtin'],
    [
      'revoked',
      '/',
      [['x-previewd-token', tokens.issue({ sid, iat: validAfter, exp: now + 60_000 })]],
      'builtin',
    ],
    [
      'other sandbox',
      '/',
      [['x-previewd-token', tokens.issue({ sid: otherSid, iat: now, exp: now + 60_000 })]],
      'builtin',
    ],
    ['tampered claims', '/', [['x-previewd-token', `pvt1.${kid}.${forgedBody}.${sig}`]], 'builtin'],
    [
      'tampered signature',
      '/',
      [['x-previewd-token', `pvt1.${kid}.${body}.${sig.slice(0, -3)}AAA`]],
      'builtin',
    ],
    ['unknown key', '/', [['x-previewd-token', `pvt1.zz.${body}.${sig}`]], 'builtin'],
    [
      'another secret',
      '/',
      [['x-previewd-token', stranger.issue({ sid, iat: now, exp: now + 60_000 })]],
      'builtin',
    ],
    ['garbage', '/', [['x-previewd-token', 'pvt1.a.b.c']], 'builtin'],
    [
      'two token headers',
      '/',
      [
        ['x-previewd-token', good],
        ['x-previewd-token', good],
      ],
      'builtin',
    ],
    [
      'bad header, good cookie',
      '/',
      [
        ['x-previewd-token', 'nope'],
        ['cookie', `previewd_token=${good}`],
      ],
      'builtin',
    ],
    [
      'bad bearer, good cookie',
      '/',
      [
        ['authorization', 'Bearer pvt1.x.y.z'],
        ['cookie', `previewd_token=${good}`],
      ],
      'builtin',
    ],
    [
      'header wins, bearer and cookie stripped',
      '/',
      [
        ['x-previewd-token', good],
        ['authorization', 'Bearer pvt1.x.y.z'],
        ['cookie', 'a=1; previewd_token=junk'],
      ],
      'app',
    ],
    ['cookie twice', '/', [['cookie', `previewd_token=${good}; previewd_token=${good}`]], 'builtin'],
    ['cookie after a comma', '/', [['cookie', `a=b, previewd_token=${good}`]], 'builtin'],
    ['cookie name longer', '/', [['cookie', `xprevieWd=1; previewd_tokens=${good}`]], 'builtin'],
    [
      'two cookie headers',
      '/',
      [
        ['cookie', 'a=1'],
        ['cookie', `previewd_token=${good}`],
      ],
      'builtin',
    ],
    ['status poll', '/__previewd/status', [['x-previewd-token', good]], 'builtin'],
    [
      'upgrade',
      '/',
      [
        ['x-previewd-token', good],
        ['connection', 'upgrade'],
        ['upgrade', 'websocket'],
        ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
        ['sec-websocket-version', '13'],
      ],
      'builtin',
    ],
  ];

  it.each(cases)('%s', async (_label, path, headers, expected) => {
    const answer = await ask(path, headers);
    expect(answer.by).toBe(expected);
    const edge = edgeVerdict(path, headers);
    if (answer.by === 'app') {
      // Served by the front: the built-in edge lets it through too, and the app sees what it would.
      expect(edge.ok).toBe(true);
      for (const name of ['cookie', 'authorization', 'x-previewd-token']) {
        expect(answer.headers[name], name).toBe(name === 'x-previewd-token' ? undefined : edge.headers[name]);
      }
    }
  });

  it('checks the port of the host: a token for 3000 does not open 4000', async () => {
    const scoped = tokens.issue({ sid, port: 3000, iat: now, exp: now + 60_000 });
    expect((await ask('/', [['x-previewd-token', scoped]], host4000)).by).toBe('builtin');
    expect(edgeVerdict('/', [['x-previewd-token', scoped]], 4000).ok).toBe(false);
    expect((await ask('/', [['x-previewd-token', good]], host4000)).by).toBe('app');
  });
});
