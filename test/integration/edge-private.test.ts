import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreviewdError } from '../../src/domain/errors.js';
import { createAppSandbox, edgeJson, previewHostOf, wsConnect } from '../helpers/edge.js';
import { rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';

describe('private previews (real engine)', () => {
  let server: TestServer;
  let id: string;
  let host: string;

  async function mint(body: Record<string, unknown> = {}) {
    const res = await server.call('POST', `/v1/sandboxes/${id}/preview-tokens`, body);
    expect(res.status).toBe(201);
    return res.body as { token: string; url: string; expiresAt: string };
  }

  /** Requests HAProxy served itself so far (0 without a front: the edge-builtin project). */
  const fastCount = async () => (await server.app.edge.front?.serverTotals())?.['fast/app'] ?? 0;

  /**
   * With the front: until HAProxy serves `h` itself for this token (the built-in edge published
   * the private route once it let a request through). Without: the token is accepted.
   */
  async function servedByFront(token: string, h = host) {
    await waitFor(async () => {
      const before = await fastCount();
      const res = await edgeJson(server, h, '/echo', { headers: { 'x-previewd-token': token } });
      expect(res.status).toBe(200);
      if (!server.app.edge.front) return true;
      return (await fastCount()) > before && server.app.edge.front.routes(h) ? true : undefined;
    });
  }

  /** A refusal exactly as the built-in edge gives it; with the front on, not served by HAProxy. */
  async function refusedByEdge(headers: Record<string, string>, reason: string, message: string) {
    const before = await fastCount();
    const res = await edgeJson(server, host, '/echo', { headers });
    expect(res.status, reason).toBe(401);
    expect(res.headers['x-previewd-error'], reason).toBe('preview_token_invalid');
    expect(res.headers['content-type'], reason).toBe('application/json; charset=utf-8');
    expect(res.body, reason).toEqual(
      new PreviewdError('preview_token_invalid', message, { details: { reason } }).toBody(),
    );
    expect(await fastCount(), reason).toBe(before);
  }

  beforeAll(async () => {
    server = await startTestServer();
    ({ id } = await createAppSandbox(server, { visibility: 'private', ports: [3000, 4000] }));
    host = previewHostOf(id);
    const { token } = await mint();
    await waitFor(async () =>
      (await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': token } })).status === 200
        ? true
        : undefined,
    );
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('refuses requests without a token: JSON for programs, a 401 page for browsers', async () => {
    const json = await edgeJson(server, host, '/echo');
    expect(json.status).toBe(401);
    expect(json.body.error.code).toBe('preview_token_required');
    const html = await edgeJson(server, host, '/', { headers: { accept: 'text/html' } });
    expect(html.status).toBe(401);
    expect(html.headers['content-type']).toContain('text/html');
    await expect(wsConnect(server, host, '/ws')).rejects.toThrow(/401/);
  });

  it('exchanges ?previewd_token= for an HttpOnly cookie on that host, then redirects without it', async () => {
    const minted = await mint({ port: 3000, ttlSec: 600 });
    const port = new URL(server.edgeUrl).port;
    expect(minted.url).toBe(`http://${host}:${port}/?previewd_token=${encodeURIComponent(minted.token)}`);
    expect(Date.parse(minted.expiresAt) - Date.now()).toBeGreaterThan(590_000);

    const first = await edgeJson(server, host, `/echo?a=1&previewd_token=${minted.token}&b=2`, {
      headers: { accept: 'text/html' },
    });
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/echo?a=1&b=2');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toContain(`previewd_token=${minted.token}`);
    expect(cookie).toContain('HttpOnly');
    // *.localhost is a trustworthy origin even over http: a partitioned SameSite=None cookie, so the
    // preview also works inside the dashboard's (cross-site) iframe.
    expect(cookie).toContain('SameSite=None; Secure; Partitioned');
    expect(cookie).not.toContain('Domain=');

    const withCookie = await edgeJson(server, host, '/echo?a=1&b=2', {
      headers: { cookie: `theme=dark; previewd_token=${minted.token}` },
    });
    expect(withCookie.status).toBe(200);
    // The app never sees the token, only its own cookies.
    expect(withCookie.body.headers.cookie).toBe('theme=dark');
    const ws = await wsConnect(server, host, '/ws', { cookie: `previewd_token=${minted.token}` });
    ws.ws.close();
  });

  it('accepts the X-Previewd-Token header and a bearer token, and strips them', async () => {
    const { token } = await mint();
    const header = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': token } });
    expect(header.status).toBe(200);
    expect(header.body.headers['x-previewd-token']).toBeUndefined();
    const bearer = await edgeJson(server, host, '/echo', { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(200);
    expect(bearer.body.headers.authorization).toBeUndefined();
    // A POST with the parameter is authorized in place, never redirected, body intact.
    const post = await edgeJson(server, host, `/echo?previewd_token=${token}`, {
      method: 'POST',
      body: 'kept',
    });
    expect(post.status).toBe(200);
    expect(post.body).toMatchObject({ body: 'kept', url: '/echo' });
  });

  it('never opens port 4000 with a token for port 3000', async () => {
    const { token } = await mint({ port: 3000 });
    const res = await edgeJson(server, previewHostOf(id, 4000), '/echo', {
      headers: { 'x-previewd-token': token },
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({
      code: 'preview_token_invalid',
      details: { reason: 'wrong_port' },
    });
    const cookie = await edgeJson(server, previewHostOf(id, 4000), '/echo', {
      headers: { cookie: `previewd_token=${token}` },
    });
    expect(cookie.status).toBe(401);
    const unscoped = await mint();
    const ok = await edgeJson(server, previewHostOf(id, 4000), '/echo', {
      headers: { 'x-previewd-token': unscoped.token },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.port).toBe(4000);
  });

  it('refuses expired tokens, tokens of other sandboxes and forged ones', async () => {
    const { token } = await mint({ ttlSec: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': token } });
    expect(expired.status).toBe(401);
    expect(expired.body.error.details.reason).toBe('expired');

    const other = await createAppSandbox(server, { visibility: 'private' });
    const foreign = await server.call('POST', `/v1/sandboxes/${other.id}/preview-tokens`, {});
    const wrong = await edgeJson(server, host, '/echo', {
      headers: { 'x-previewd-token': foreign.body.token },
    });
    expect(wrong.body.error.details.reason).toBe('wrong_sandbox');

    const good = (await mint()).token;
    const forged = `${good.slice(0, -4)}AAAA`;
    const bad = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': forged } });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('preview_token_invalid');
  });

  it('with the front on, HAProxy serves accepted requests itself (header, bearer, cookie), token stripped', async () => {
    const { token } = await mint();
    await servedByFront(token);
    const one = server.app.edge.front ? 1 : 0;
    for (const [label, headers] of [
      ['header', { 'x-previewd-token': token }],
      ['bearer', { authorization: `Bearer ${token}` }],
      ['cookie', { cookie: `theme=dark; previewd_token=${token}` }],
    ] as const) {
      const before = await fastCount();
      const res = await edgeJson(server, host, '/echo?via=front', { headers });
      expect(res.status, label).toBe(200);
      expect(await fastCount(), label).toBe(before + one);
      expect(res.body.url, label).toBe('/echo?via=front');
      expect(res.body.headers['x-previewd-token'], label).toBeUndefined();
      expect(res.body.headers.authorization, label).toBeUndefined();
      expect(res.body.headers.cookie, label).toBe(label === 'cookie' ? 'theme=dark' : undefined);
    }
    // The exchange stays the built-in edge's: a redirect setting the cookie.
    const before = await fastCount();
    const exchange = await edgeJson(server, host, `/echo?previewd_token=${token}`, {
      headers: { accept: 'text/html' },
    });
    expect(exchange.status).toBe(303);
    expect(await fastCount()).toBe(before);
  });

  it("refuses expired, other sandboxes', tampered and wrong-port tokens identically while the route is on the front", async () => {
    const { token } = await mint();
    await servedByFront(token);
    const tokens = server.app.edge.tokens;
    const now = Date.now();
    const expired = tokens.issue({ sid: id, iat: now, exp: now - 1 });
    const foreign = tokens.issue({ sid: '01jzzzzzzzzzzzzzzzzzzzzzzz', iat: now, exp: now + 60_000 });
    const [p, kid, , sig] = token.split('.');
    const longer = Buffer.from(JSON.stringify({ sid: id, iat: now, exp: now + 9e9 })).toString('base64url');
    const tamperedClaims = `${p}.${kid}.${longer}.${sig}`;
    // One character inside the signature (the last one carries unused bits).
    const at = token.length - 10;
    const tamperedSig = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
    const port4000 = tokens.issue({ sid: id, port: 4000, iat: now, exp: now + 60_000 });
    const cases: [string, string, string][] = [
      [expired, 'expired', 'the preview token has expired'],
      [foreign, 'wrong_sandbox', 'the preview token is for another sandbox'],
      [tamperedClaims, 'bad_signature', 'the preview token is not valid'],
      [tamperedSig, 'bad_signature', 'the preview token is not valid'],
      [port4000, 'wrong_port', 'the preview token is not valid for port 3000'],
    ];
    for (const [t, reason, message] of cases) {
      await refusedByEdge({ 'x-previewd-token': t }, reason, message);
      await refusedByEdge({ cookie: `previewd_token=${t}` }, reason, message);
      await refusedByEdge({ authorization: `Bearer ${t}` }, reason, message);
    }
    // The route stayed on the front all along, and the good token is still served there.
    if (server.app.edge.front) expect(server.app.edge.front.routes(host)).toBe(true);
    await servedByFront(token);
  });

  it('an expiring token stops being served (by the front too) the moment it expires', async () => {
    const { token } = await mint();
    await servedByFront(token);
    const now = Date.now();
    const short = server.app.edge.tokens.issue({ sid: id, iat: now, exp: now + 1500 });
    const first = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': short } });
    expect(first.status).toBe(200);
    await waitFor(async () => {
      const res = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': short } });
      return res.status === 401 ? true : undefined;
    }, 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(now + 1500);
    await refusedByEdge({ 'x-previewd-token': short }, 'expired', 'the preview token has expired');
    await refusedByEdge({ cookie: `previewd_token=${short}` }, 'expired', 'the preview token has expired');
  });

  it('a revoked token is refused by the built-in edge as soon as the revoke answered, even while the front served it', async () => {
    const { token } = await mint();
    await servedByFront(token);
    expect((await server.call('DELETE', `/v1/sandboxes/${id}/preview-tokens`)).status).toBe(204);
    await refusedByEdge({ 'x-previewd-token': token }, 'revoked', 'the preview token was revoked');
    await refusedByEdge({ cookie: `previewd_token=${token}` }, 'revoked', 'the preview token was revoked');
    // A token minted afterwards is served by the front again (the route is published anew).
    await servedByFront((await mint()).token);
    await refusedByEdge({ 'x-previewd-token': token }, 'revoked', 'the preview token was revoked');
  });

  it('revokes every token at once; tokens minted afterwards work', async () => {
    const a = await mint();
    const b = await mint({ port: 3000 });
    expect((await server.call('DELETE', `/v1/sandboxes/${id}/preview-tokens`)).status).toBe(204);
    for (const t of [a.token, b.token]) {
      const res = await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': t } });
      expect(res.status).toBe(401);
      expect(res.body.error.details.reason).toBe('revoked');
    }
    const fresh = await mint();
    expect(
      (await edgeJson(server, host, '/echo', { headers: { 'x-previewd-token': fresh.token } })).status,
    ).toBe(200);
  });

  it('sends browsers without a token to the configured login URL', async () => {
    server.app.config.edge.loginUrl = 'https://login.example/preview';
    try {
      const res = await edgeJson(server, host, '/page?x=1', { headers: { accept: 'text/html' } });
      expect(res.status).toBe(302);
      const location = new URL(String(res.headers.location));
      expect(location.origin + location.pathname).toBe('https://login.example/preview');
      expect(location.searchParams.get('return_to')).toBe(`http://${host}/page?x=1`);
      expect(location.searchParams.get('sandbox')).toBe(id);
      // Programs still get the JSON 401.
      expect((await edgeJson(server, host, '/echo')).status).toBe(401);
    } finally {
      server.app.config.edge.loginUrl = undefined;
    }
  });

  it('redirects the token exchange only to a path on the same host, however the target is spelled', async () => {
    const { token } = await mint();
    const spellings = [
      '//evil.example/',
      '///evil.example/x',
      '/\\evil.example/',
      '/\\/evil.example/',
      '/%2f%2fevil.example/',
      '/%5c%5cevil.example/',
      'http://evil.example/',
      `http://${host}//evil.example/`,
      '/\t/evil.example/',
      '/.//evil.example/',
    ];
    const redirected: string[] = [];
    for (const spelling of spellings) {
      const target = `${spelling}${spelling.includes('?') ? '&' : '?'}previewd_token=${token}`;
      const res = await rawRequest(
        server.edgeUrl,
        rawHttp('GET', Buffer.from(target, 'latin1'), [`host: ${host}`, 'accept: text/html']),
      );
      // Some spellings are refused outright (by HAProxy or Node's parser): fine, as long as no
      // answer is a 5xx and no redirect leaves the preview host.
      expect(res.status, spelling).toBeLessThan(500);
      if (res.status !== 303) continue;
      redirected.push(spelling);
      const location = /\r\nlocation: ([^\r]*)/i.exec(`\r\n${res.head}`)?.[1] ?? '';
      expect(location, spelling).toMatch(/^\/(?![/\\])/);
      expect(location, spelling).not.toContain('previewd_token');
      expect(new URL(location, `http://${host}/`).host, spelling).toBe(host);
    }
    // The classic spellings do reach the exchange (and so prove the Location is built safely).
    expect(redirected).toEqual(
      expect.arrayContaining(['//evil.example/', '/\\evil.example/', '/%2f%2fevil.example/']),
    );
  });

  it('tells a request without a token nothing: the same answer for any port, path and state', async () => {
    // One private sandbox whose app never listens, one whose app crashes with a telling log line.
    const quiet = await server.call('POST', '/v1/sandboxes', {
      visibility: 'private',
      ports: [3000, 4000],
      runtime: { start: 'exec sleep infinity', port: 3000 },
    });
    const crashing = await server.call('POST', '/v1/sandboxes', {
      visibility: 'private',
      ports: [3000],
      runtime: { start: 'echo secret-log-line-4711; exit 3', port: 3000 },
    });
    expect(quiet.status).toBe(201);
    expect(crashing.status).toBe(201);
    await waitState(server, quiet.body.id, 'running');
    await waitState(server, crashing.body.id, 'running');

    const answers = new Map<string, string>();
    const ask = async (label: string, sandbox: string, port: number, path: string, html: boolean) => {
      const res = await rawRequest(
        server.edgeUrl,
        rawHttp('GET', path, [
          `host: ${previewHostOf(sandbox, port)}`,
          ...(html ? ['accept: text/html'] : []),
        ]),
      );
      const type = /\r\ncontent-type: ([^\r]*)/i.exec(`\r\n${res.head}`)?.[1];
      const body = res.body.toString('utf8').replaceAll(sandbox, '<id>');
      expect(body, label).not.toContain('secret-log-line');
      answers.set(label, JSON.stringify({ status: res.status, type, body }));
    };
    const sweep = async (state: string) => {
      for (const [name, sandbox] of [
        ['quiet', quiet.body.id],
        ['crashing', crashing.body.id],
      ]) {
        for (const port of [3000, 4000, 5555, 65535]) {
          for (const path of ['/', '/__previewd/status', '/app.js?x=1']) {
            for (const html of [false, true]) {
              await ask(
                `${state} ${name} :${port} ${path} ${html ? 'html' : 'json'}`,
                sandbox,
                port,
                path,
                html,
              );
            }
          }
        }
      }
    };
    await sweep('running');
    await server.call('POST', `/v1/sandboxes/${quiet.body.id}/stop`);
    await waitState(server, quiet.body.id, 'stopped');
    await sweep('stopped');
    // Nothing woke the stopped sandbox.
    expect((await server.call('GET', `/v1/sandboxes/${quiet.body.id}`)).body.state).toBe('stopped');

    const json = new Set([...answers].filter(([k]) => k.endsWith('json')).map(([, v]) => v));
    const html = new Set([...answers].filter(([k]) => k.endsWith('html')).map(([, v]) => v));
    expect(json.size, [...json].join('\n')).toBe(1);
    expect(html.size, [...html].join('\n')).toBe(1);
    const one = JSON.parse([...json][0]!);
    expect(one.status).toBe(401);
    expect(JSON.parse(one.body).error.code).toBe('preview_token_required');
    expect(JSON.parse([...html][0]!).status).toBe(401);
    // WebSockets too, on an exposed port and on one that is not.
    for (const port of [3000, 5555]) {
      await expect(
        wsConnect(server, previewHostOf(quiet.body.id, port), '/ws'),
        String(port),
      ).rejects.toThrow(/401/);
    }
    // The control: with a token, the same requests do tell (the crash and its log line, the
    // exposed ports), so the silence above is the token check's.
    const crashToken = (await server.call('POST', `/v1/sandboxes/${crashing.body.id}/preview-tokens`, {}))
      .body.token as string;
    const told = await waitFor(
      async () => {
        const res = await rawRequest(
          server.edgeUrl,
          rawHttp('GET', '/', [
            `host: ${previewHostOf(crashing.body.id)}`,
            'accept: text/html',
            `x-previewd-token: ${crashToken}`,
          ]),
        );
        return res.body.toString('utf8').includes('secret-log-line-4711') ? res : undefined;
      },
      30_000,
      'the crash page with the log line',
    );
    expect(told.status).toBeGreaterThanOrEqual(500);
    const quietToken = (await server.call('POST', `/v1/sandboxes/${quiet.body.id}/preview-tokens`, {})).body
      .token as string;
    const ports = await rawRequest(
      server.edgeUrl,
      rawHttp('GET', '/', [`host: ${previewHostOf(quiet.body.id, 5555)}`, `x-previewd-token: ${quietToken}`]),
    );
    expect(ports.status).toBe(404);
    expect(JSON.parse(ports.body.toString()).error).toMatchObject({
      code: 'port_not_exposed',
      details: { exposed: [3000, 4000] },
    });
  });

  it('keeps public sandboxes public', async () => {
    const pub = await createAppSandbox(server);
    const res = await waitFor(async () => {
      const r = await edgeJson(server, previewHostOf(pub.id), '/echo');
      return r.status === 200 ? r : undefined;
    });
    expect(res.status).toBe(200);
  });
});
