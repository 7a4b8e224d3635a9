import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/archives.js';
import { type RawAnswer, rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

/**
 * Seeded fuzzing of the API and the preview edge over real sockets: generated methods, paths
 * (the routes of /openapi.json, so routes added later are covered) with mutated parameters,
 * query strings, headers and bodies. No answer may be a 5xx or missing, the server must stay
 * ready, and a tenant key must not see or change another owner's sandbox.
 *
 * PREVIEWD_FUZZ_SEED and PREVIEWD_FUZZ_RUNS replay or widen a run; the seed is printed.
 */
const SEED = Number(process.env.PREVIEWD_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.PREVIEWD_FUZZ_RUNS ?? 10_500);
const IN_FLIGHT = 12;
const TENANT_KEY = 'tenant-key-alice-0123456789';

/** Bob's app: answers every request with a small page, refuses WebSockets, and writes nothing. */
const victimApp = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('victim ok'); });
});
server.on('upgrade', (req, socket) => {
  socket.on('error', () => {});
  socket.end('HTTP/1.1 426 Upgrade Required\\r\\ncontent-length: 0\\r\\nconnection: close\\r\\n\\r\\n');
});
server.listen(3000, '0.0.0.0');
`;

type Part = 'admin' | 'tenant' | 'anonymous' | 'edge';

const WEBSOCKET_HANDSHAKE = [
  'upgrade: websocket',
  'sec-websocket-version: 13',
  'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==',
];

interface FuzzRequest {
  part: Part;
  method: Buffer;
  target: Buffer;
  headers: Buffer[];
  body?: Buffer;
  /** Whether the target names bob's sandbox (tenant requests that must not succeed). */
  namesVictim: boolean;
  bodyKind: string;
}

interface Outcome {
  request: FuzzRequest;
  answer: RawAnswer;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

/** Percent-encodes every byte of a string taken as latin1. */
const encodeAll = (s: string) => [...latin1(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** A value as sent: raw bytes, URI-encoded, every byte encoded, or encoded twice. */
const spelled = (value: fc.Arbitrary<string>) =>
  fc
    .tuple(value, fc.constantFrom('raw', 'uri', 'all', 'twice', 'uri', 'uri'))
    .map(([v, how]) =>
      how === 'raw'
        ? v
        : how === 'uri'
          ? encodeURIComponent(v).replace(/%(?![0-9A-F]{2})/g, '%25')
          : how === 'all'
            ? encodeAll(v)
            : encodeURIComponent(encodeURIComponent(v)),
    )
    .map((v) => v.replace(/[ \r\n]/g, (c) => encodeURIComponent(c)));

const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '.',
    '..',
    '../../etc/passwd',
    '/workspace/../../',
    '%00',
    '%ff%fe',
    '%c0%ae%c0%ae',
    '\u0000',
    '\u00ff\u00fe',
    '%',
    '%zz',
    '{id}',
    '*',
    '-1',
    '0',
    '1e309',
    '99999999999999999999999',
    'NaN',
    'true',
    '[]',
    '{}',
  ),
  fc.integer({ min: 10, max: 6000 }).map((n) => 'a'.repeat(n)),
);

/** A well-formed sandbox id that names no sandbox (lowercase ULID alphabet). */
const randomId = fc
  .array(fc.constantFrom(...'0123456789abcdefghjkmnpqrstvwxyz'), { minLength: 25, maxLength: 25 })
  .map((chars) => `0${chars.join('')}`);

function paramValue(name: string, own: string[], part: Part): fc.Arbitrary<string> {
  const ulidLike = fc.oneof(
    randomId,
    randomId.map((id) => id.toUpperCase()),
    fc.constant('zzzzzzzzzzzzzzzzzzzzzzzzzz'),
  );
  if (name === 'id') {
    const mine = own.length > 0 ? fc.constantFrom(...own) : ulidLike;
    const variants = mine.chain((id) =>
      fc.constantFrom(id, id.toUpperCase(), `${id}%00`, `${id}.`, `${id}/..`, `${id}%2f..%2f`, ` ${id}`),
    );
    return fc.oneof(
      { weight: part === 'tenant' ? 8 : 6, arbitrary: mine },
      { weight: 2, arbitrary: variants },
      { weight: 1, arbitrary: ulidLike },
      { weight: 2, arbitrary: spelled(junk) },
    );
  }
  if (name === 'port') {
    return fc.oneof(
      fc.constantFrom('3000', '4000', '1', '65535', '0', '65536', '-1', '3000.5', '0x0bb8'),
      fc.integer().map(String),
      spelled(junk),
    );
  }
  if (name === 'pid') return fc.oneof(fc.constantFrom('1', '0', '-1', '4294967296'), spelled(junk));
  // Template names: never one whose warm-up installs dependencies (the host is shared).
  if (name === 'name') return fc.oneof(fc.constantFrom('static', 'nope', 'STATIC'), spelled(junk));
  return spelled(junk);
}

const queryKeys = [
  'path',
  'limit',
  'cursor',
  'recursive',
  'follow',
  'tail',
  'since',
  'state',
  'label',
  'pattern',
  'types',
  'sandboxId',
  'lastEventId',
  'encoding',
  'previewd_token',
  'token',
  'depth',
];

const queryPairs = fc
  .array(
    fc.tuple(
      fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...queryKeys) },
        { weight: 1, arbitrary: spelled(junk) },
      ),
      fc.oneof(
        fc.constantFrom('', 'true', 'false', '1', '500', '501', '-3', 'running', 'a=b', 'x/y', '.', '../..'),
        spelled(junk),
      ),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`);
/** Mostly no query (most routes refuse unknown parameters, which would end the request early). */
const query = fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 2, arbitrary: queryPairs });

const bodyKeys = [
  'files',
  'runtime',
  'ports',
  'port',
  'cmd',
  'path',
  'from',
  'to',
  'mode',
  'ttlSec',
  'visibility',
  'env',
  'labels',
  'metadata',
  'template',
  'stdin',
  'timeoutSec',
  'signal',
  'encoding',
  'recursive',
  'resources',
  'idleTimeoutSec',
];

function bodies(tar: Buffer): fc.Arbitrary<{ kind: string; type?: string; bytes?: Buffer }> {
  const gz = gzipSync(tar);
  const json = (kind: string, value: fc.Arbitrary<unknown>) =>
    value.map((v) => ({ kind, type: 'application/json', bytes: Buffer.from(JSON.stringify(v) ?? 'null') }));
  return fc.oneof(
    { weight: 10, arbitrary: fc.constant({ kind: 'none' }) },
    { weight: 4, arbitrary: json('json', fc.jsonValue({ maxDepth: 4 })) },
    {
      weight: 6,
      arbitrary: json(
        'shaped-json',
        fc.dictionary(fc.constantFrom(...bodyKeys), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
      ),
    },
    {
      weight: 2,
      arbitrary: fc.integer({ min: 65, max: 200_000 }).map((n) => ({
        kind: 'deep-json',
        type: 'application/json',
        bytes: Buffer.from(`{"a":${'['.repeat(n)}${']'.repeat(n)}}`),
      })),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        kind: 'big-json',
        type: 'application/json',
        bytes: Buffer.from(JSON.stringify({ port: 3000, pad: 'x'.repeat(1_100_000) })),
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('{"a":"\u00ff\u00fe"}', '{"files":{"\u00ff":"\u0000"}}', '{"a":', '\u0000')
        .map((s) => ({ kind: 'bad-utf8-json', type: 'application/json', bytes: latin1(s) })),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.uint8Array({ maxLength: 4096 }),
          fc.constantFrom(undefined, 'application/octet-stream', 'text/plain'),
        )
        .map(([b, type]) => ({ kind: 'bytes', type, bytes: Buffer.from(b) })),
    },
    {
      weight: 3,
      arbitrary: fc.integer({ min: 0, max: tar.length - 1 }).map((n) => ({
        kind: 'truncated-tar',
        type: 'application/x-tar',
        bytes: tar.subarray(0, n),
      })),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.integer({ min: 0, max: gz.length - 1 }),
          fc.constantFrom('application/gzip', 'application/octet-stream'),
        )
        .map(([n, type]) => ({ kind: 'truncated-gzip', type, bytes: gz.subarray(0, n) })),
    },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => ({
        kind: 'gzip-garbage',
        type: 'application/gzip',
        bytes: Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from(b)]),
      })),
    },
  );
}

const contentTypes = fc.constantFrom(
  'application/json',
  'application/json; charset=latin1',
  'application/x-tar',
  'application/gzip',
  'text/plain',
  'multipart/form-data; boundary=zz',
  'application/x-www-form-urlencoded',
  'application/xml',
  '*/*',
  'garbage',
  '',
);

const methods = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'PROPFIND',
  'TRACE',
);

/** Headers anyone may send: cookies, origins, forwarded-for, junk values, now and then a huge one. */
const extraHeaders = fc.array(
  fc.oneof(
    {
      weight: 16,
      arbitrary: fc.constantFrom(
        'accept: text/html',
        'accept: */*',
        'cookie: previewd_session=garbage; previewd_token=pvt1.a.b.c',
        'cookie: =;;;==',
        'origin: http://evil.example',
        'origin: null',
        'x-forwarded-for: 10.0.0.1, 127.0.0.1',
        'x-forwarded-proto: https',
        'forwarded: for=1.2.3.4',
        'x-previewd-token: pvt1.nope.nope.nope',
        'authorization: Bearer pvt1.x.y.z',
        'expect: 100-continue',
        'range: bytes=0-10',
        'if-none-match: *',
        'last-event-id: 99999999999999999999',
        'connection: x-previewd-owner',
        'transfer-encoding: chunked',
        'upgrade: h2c',
      ),
    },
    { weight: 6, arbitrary: fc.string({ maxLength: 60 }).map((v) => `x-fuzz: ${v.replace(/[\r\n]/g, ' ')}`) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('x-nul: a\u0000b', 'x-high: \u00ff\u00fe', 'bad header', ': empty-name', 'x-cr: a\rb')
        .map(latin1),
    },
    { weight: 1, arbitrary: fc.integer({ min: 9_000, max: 40_000 }).map((n) => `x-pad: ${'p'.repeat(n)}`) },
  ),
  { maxLength: 3 },
);

describe('fuzz: the API and the edge answer every request with less than 500', () => {
  let server: TestServer;
  let victim: string;
  let throwaway: string;
  let routes: { path: string; methods: string[] }[];
  let tar: Buffer;

  const snapshot = async () => {
    const view = await server.call('GET', `/v1/sandboxes/${victim}`);
    const sums = await server.call('POST', `/v1/sandboxes/${victim}/exec`, {
      cmd: 'find /workspace -type f -print0 | sort -z | xargs -0 sha256sum',
    });
    expect(view.status).toBe(200);
    expect(sums.status).toBe(200);
    const { state, ports, visibility, owner, labels, metadata, previews } = view.body;
    return { state, ports, visibility, owner, labels, metadata, previews, files: sums.body.stdout };
  };

  beforeAll(async () => {
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${TENANT_KEY}:alice`],
      // The anonymous part fails authentication by design; past the limit every request from
      // loopback would be a 429 and the rest of the run would test nothing.
      'api.rateLimit.authFailures': 100_000,
      'api.rateLimit.creates': 100_000,
    });
    const bob = await server.call(
      'POST',
      '/v1/sandboxes',
      {
        files: { 'server.js': victimApp, 'notes/readme.md': '# bob\n', 'data.json': '{"n":1}' },
        runtime: { start: 'node server.js', port: 3000 },
        labels: { who: 'bob' },
      },
      { 'x-previewd-owner': 'bob' },
    );
    expect(bob.status, JSON.stringify(bob.body)).toBe(201);
    victim = bob.body.id;
    const spare = await server.call('POST', '/v1/sandboxes', {
      visibility: 'private',
      ports: [3000],
      runtime: { start: 'exec sleep infinity', port: 3000 },
    });
    expect(spare.status).toBe(201);
    throwaway = spare.body.id;
    await waitState(server, victim, 'running');
    await waitState(server, throwaway, 'running');
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    routes = Object.entries(doc.paths).map(([path, ops]) => ({
      path,
      methods: Object.keys(ops).map((m) => m.toUpperCase()),
    }));
    for (const extra of [
      '/',
      '/healthz',
      '/readyz',
      '/metrics',
      '/openapi.json',
      '/v1',
      '/v1/nope',
      '/index.html',
    ]) {
      routes.push({ path: extra, methods: ['GET'] });
    }
    tar = await tarOf({ 'a.txt': 'a'.repeat(3000), 'dir/b.txt': 'b', 'c.txt': 'c'.repeat(700) });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  function apiRequest(part: Exclude<Part, 'edge'>): fc.Arbitrary<FuzzRequest> {
    // The admin key works on the throwaway sandbox only; tenant and anonymous requests aim at bob's.
    const own = part === 'admin' ? [throwaway] : [victim];
    const auth = {
      admin: fc.constantFrom(`authorization: Bearer ${TEST_KEY}`),
      tenant: fc.constantFrom(`authorization: Bearer ${TENANT_KEY}`),
      anonymous: fc.constantFrom(
        '',
        'authorization: Bearer wrong-key',
        `authorization: Basic ${TEST_KEY}`,
        `authorization: Bearer ${TEST_KEY.slice(0, -1)}`,
        'authorization: ',
        `authorization: bearer  ${TENANT_KEY}x`,
      ),
    }[part];
    return fc
      .record({
        route: fc.oneof(
          { weight: 40, arbitrary: fc.constantFrom(...routes) },
          // The exec WebSocket (not in the OpenAPI document): always as a handshake.
          {
            weight: 1,
            arbitrary: fc.constant({ path: '/v1/sandboxes/{id}/exec/ws', methods: ['GET'], ws: true }),
          },
        ),
        methodChoice: fc.nat(9),
        otherMethod: methods,
        auth,
        owner:
          part === 'admin'
            ? fc.constantFrom('', 'x-previewd-owner: carol', 'x-previewd-owner: \u00ff')
            : fc.constant(''),
        query,
        body: bodies(tar),
        contentType: fc.oneof(
          { weight: 3, arbitrary: fc.constant('from-body') },
          { weight: 1, arbitrary: contentTypes },
        ),
        extra: extraHeaders,
        garbageMethod: fc.oneof(
          { weight: 40, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: fc.constantFrom('G\u0000T', 'GET /', '') },
        ),
        // Now and then a WebSocket handshake (the exec session, or a route that has none).
        upgrade: fc.oneof(
          { weight: 25, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
        ),
      })
      .chain((r) => {
        const names = [...r.route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
        const values =
          names.length === 0
            ? fc.constant([] as string[])
            : fc.tuple(...names.map((n) => paramValue(n, own, part)));
        return values.map((vals) => {
          let i = 0;
          const path = r.route.path.replace(/\{(\w+)\}/g, () => vals[i++]!);
          const method =
            r.garbageMethod ||
            (r.methodChoice < 7 ? r.route.methods[r.methodChoice % r.route.methods.length]! : r.otherMethod);
          const type = r.contentType === 'from-body' ? r.body.type : r.contentType;
          const headers = ['host: 127.0.0.1', r.auth, r.owner, type ? `content-type: ${type}` : ''].filter(
            Boolean,
          );
          const upgrade = r.upgrade || 'ws' in r.route;
          if (upgrade) headers.push(...WEBSOCKET_HANDSHAKE);
          return {
            part,
            method: latin1(upgrade ? 'GET' : method),
            target: latin1(`${path}${r.query}`),
            headers: [...headers.map(latin1), ...r.extra.map((h) => (typeof h === 'string' ? latin1(h) : h))],
            body: r.body.bytes,
            namesVictim: vals.some((v) => v.toLowerCase().includes(victim)),
            bodyKind: r.body.kind,
          };
        });
      });
  }

  function edgeRequest(): fc.Arbitrary<FuzzRequest> {
    const hosts = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          `3000-${victim}.preview.localhost`,
          `3000-${victim.toUpperCase()}.PREVIEW.localhost`,
        ),
      },
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          `3000-${throwaway}.preview.localhost`,
          `4000-${throwaway}.preview.localhost`,
        ),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            fc.constantFrom('3000', '4000', '0', '65536', '99999999', 'x'),
            fc.oneof(fc.constantFrom(victim, throwaway), randomId),
          )
          .map(([p, id]) => `${p}-${id}.preview.localhost`),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(`3000-${victim}.preview.localhost:1`, `3000-${victim}.preview.localhost.`),
      },
      {
        weight: 3,
        arbitrary: fc.oneof(
          fc.constantFrom(
            '',
            'evil.example',
            'preview.localhost',
            '3000-.preview.localhost',
            `-${victim}.preview.localhost`,
            `3000-${victim}.preview.localhost@evil.example`,
            `3000-${victim}..preview.localhost`,
            '[::1]',
            '127.0.0.1:99999',
            '\u00ff\u00fe.preview.localhost',
            `3000-${victim}\u0000.preview.localhost`,
          ),
          fc.string({ maxLength: 80 }).map((s) => s.replace(/[\r\n]/g, '')),
          fc.integer({ min: 300, max: 20_000 }).map((n) => `${'a'.repeat(n)}.preview.localhost`),
        ),
      },
    );
    const paths = fc.oneof(
      fc.constantFrom(
        '/',
        '/index.html',
        '/__previewd/status',
        '/__previewd/status?x=1',
        '/?previewd_token=pvt1.a.b.c',
        '//evil.example/',
        '/\\evil',
        '/%2f%2fevil',
        '*',
      ),
      fc.constantFrom('http://evil.example/', `http://3000-${victim}.preview.localhost/x`),
      spelled(junk).map((s) => `/${s}`),
      query.map((q) => `/x${q}`),
    );
    return fc
      .record({
        host: hosts,
        hostHeader: fc.constantFrom('host', 'host', 'host', 'HOST', 'none', 'twice'),
        method: methods,
        path: paths,
        extra: extraHeaders,
        body: fc.oneof(
          { weight: 4, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)) },
        ),
        upgrade: fc.oneof(
          { weight: 12, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
        ),
      })
      .map((r) => {
        const hostLines =
          r.hostHeader === 'none'
            ? []
            : r.hostHeader === 'twice'
              ? [`host: ${r.host}`, 'host: evil.example']
              : [`${r.hostHeader}: ${r.host}`];
        const upgrade = r.upgrade ? WEBSOCKET_HANDSHAKE : [];
        return {
          part: 'edge' as const,
          method: latin1(r.upgrade ? 'GET' : r.method),
          target: latin1(r.path),
          headers: [
            ...[...hostLines, ...upgrade].map(latin1),
            ...r.extra.map((h) => (typeof h === 'string' ? latin1(h) : h)),
          ],
          body: r.body,
          namesVictim: false,
          bodyKind: r.body ? 'bytes' : 'none',
        };
      });
  }

  it(`survives ${RUNS} generated requests (seed ${SEED})`, async () => {
    const before = await snapshot();
    const share = (part: Part) => ({ admin: 0.38, tenant: 0.28, anonymous: 0.06, edge: 0.28 })[part];
    const plan: FuzzRequest[] = [];
    // PREVIEWD_FUZZ_PARTS=admin,edge leaves the other parts out (to tell their effects apart).
    const parts = (process.env.PREVIEWD_FUZZ_PARTS ?? 'admin,tenant,anonymous,edge').split(',');
    for (const [i, part] of (['admin', 'tenant', 'anonymous', 'edge'] as const).entries()) {
      if (!parts.includes(part)) continue;
      const arb = part === 'edge' ? edgeRequest() : apiRequest(part);
      plan.push(...fc.sample(arb, { seed: SEED + i, numRuns: Math.round(RUNS * share(part)) }));
    }
    // Interleaved (deterministically), so parts run side by side.
    const order = fc.sample(fc.integer(), { seed: SEED, numRuns: plan.length });
    const queue = plan.map((request, i) => ({ request, key: order[i]! })).sort((a, b) => a.key - b.key);

    const outcomes: Outcome[] = [];
    const readiness: number[] = [];
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const { request } = queue[next++]!;
        const base = request.part === 'edge' ? server.edgeUrl : server.url;
        // A chunked request carries its body chunked, and ends: a server rightly waits for the rest
        // of a body that was announced and not sent, so no request here announces one.
        const chunked = request.headers.some((h) => h.toString() === 'transfer-encoding: chunked');
        const bytes = chunked
          ? Buffer.concat([
              rawHttp(request.method, request.target, request.headers),
              request.body?.length
                ? Buffer.concat([
                    Buffer.from(`${request.body.length.toString(16)}\r\n`),
                    request.body,
                    Buffer.from('\r\n'),
                  ])
                : Buffer.alloc(0),
              Buffer.from('0\r\n\r\n'),
            ])
          : rawHttp(request.method, request.target, request.headers, request.body);
        const upgrading = request.headers.some((h) => h.toString() === WEBSOCKET_HANDSHAKE[0]);
        // Lifecycle requests on one sandbox queue behind its lock, and the engine is shared with
        // other suites: slow is allowed, unanswered (past a minute) is not.
        const answer = await rawRequest(base, upgrading ? upgradeBytes(bytes) : bytes, 60_000);
        outcomes.push({ request, answer });
        if (outcomes.length % 1000 === 0) readiness.push((await fetch(`${server.url}/readyz`)).status);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const seconds = (performance.now() - started) / 1000;

    const byStatus = new Map<string, number>();
    for (const { request, answer } of outcomes) {
      const key = `${request.part === 'edge' ? 'edge' : 'api'} ${answer.status || answer.error}`;
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    }
    const figures = [...byStatus].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    console.log(
      `fuzz seed ${SEED}: ${outcomes.length} requests in ${seconds.toFixed(1)} s (${IN_FLIGHT} in flight)\n  ${figures.join('\n  ')}`,
    );

    const describeOne = ({ request, answer }: Outcome) =>
      `${request.part} ${JSON.stringify(request.method.toString('latin1'))} ${JSON.stringify(request.target.toString('latin1').slice(0, 160))} ` +
      `[${request.headers.map((h) => JSON.stringify(h.toString('latin1').slice(0, 60))).join(', ')}] body=${request.bodyKind}` +
      ` → ${answer.status || answer.error} ${answer.body.toString('utf8').slice(0, 160)}`;
    // PREVIEWD_FUZZ_SHOW="edge 400,api 404" prints some requests of those answers.
    for (const wanted of (process.env.PREVIEWD_FUZZ_SHOW ?? '').split(',').filter(Boolean)) {
      const some = outcomes.filter(
        ({ request, answer }) =>
          `${request.part === 'edge' ? 'edge' : 'api'} ${answer.status || answer.error}` === wanted,
      );
      console.log(`${wanted}:\n${some.slice(0, 25).map(describeOne).join('\n')}`);
    }
    const failed = outcomes.filter(({ answer }) => answer.status >= 500 || answer.status === 0);
    expect(failed.length, `answers ≥ 500 or none:\n${failed.slice(0, 60).map(describeOne).join('\n')}`).toBe(
      0,
    );

    // Still alive and ready, the front and bob's app still serving.
    expect(readiness.every((s) => s === 200)).toBe(true);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const edgeOk = await rawRequest(
      server.edgeUrl,
      rawHttp('GET', '/', [`host: 3000-${victim}.preview.localhost`]),
    );
    expect(edgeOk.status).toBe(200);

    // Another owner's sandbox: never answered with success to the tenant, and unchanged.
    const leaks = outcomes.filter(
      ({ request, answer }) =>
        request.part === 'tenant' &&
        answer.status >= 101 &&
        answer.status < 300 &&
        (request.namesVictim || answer.body.toString('latin1').includes(victim)),
    );
    expect(
      leaks.length,
      `tenant requests that reached bob's sandbox:\n${leaks.slice(0, 40).map(describeOne).join('\n')}`,
    ).toBe(0);
    expect(await snapshot()).toEqual(before);
  }, 300_000);
});

/** The same request with `Connection: Upgrade` in place of `close`, so it is taken as an upgrade. */
function upgradeBytes(bytes: Buffer): Buffer {
  return latin1(bytes.toString('latin1').replace('connection: close\r\n', 'connection: Upgrade\r\n'));
}
