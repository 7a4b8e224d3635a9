import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

describe('API errors: stable codes, never a 500', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ maxBodyMb: 1 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 401 without a key and with a wrong key', async () => {
    const none = await fetch(`${server.url}/v1/sandboxes`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).error).toMatchObject({
      code: 'unauthorized',
      hint: expect.stringContaining('Bearer'),
    });
    const wrong = await server.call('GET', '/v1/sandboxes', undefined, {
      authorization: 'Bearer not-the-key',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('unauthorized');
    const basic = await server.call('GET', '/v1/sandboxes', undefined, {
      authorization: `Basic ${TEST_KEY}`,
    });
    expect(basic.status).toBe(401);
  });

  it('serves health, readiness and OpenAPI without a key, metrics with one', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, store: { ok: true }, engine: { ok: true } });
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/sandboxes',
        '/v1/sandboxes/{id}',
        '/v1/sandboxes/{id}/start',
        '/v1/sandboxes/{id}/stop',
      ]),
    );
    const createBody = doc.paths['/v1/sandboxes'].post.requestBody.content['application/json'].schema;
    expect(createBody.additionalProperties).toBe(false);
    expect(Object.keys(createBody.properties)).toEqual(
      expect.arrayContaining(['files', 'runtime', 'ports', 'resources', 'visibility']),
    );
    // Metrics need a key (or the metrics token: api-auth.test.ts).
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const metrics = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEY}` } })
    ).text();
    expect(metrics).toContain('previewd_api_requests_total');
    expect(metrics).toContain('previewd_sandboxes{state="running"}');
  });

  const bad: [string, string, unknown, string][] = [
    ['malformed JSON', 'POST /v1/sandboxes', '{"files": ', 'invalid_json'],
    ['an unknown field', 'POST /v1/sandboxes', { imagee: 'x' }, 'invalid_request'],
    ['an unknown nested field', 'POST /v1/sandboxes', { runtime: { strat: 'x' } }, 'invalid_request'],
    ['a port out of range', 'POST /v1/sandboxes', { ports: [70000] }, 'invalid_request'],
    ['a wrong type', 'POST /v1/sandboxes', { files: ['a'] }, 'invalid_request'],
    ['a bad visibility', 'POST /v1/sandboxes', { visibility: 'secret' }, 'invalid_request'],
    ['a negative size', 'POST /v1/sandboxes', { resources: { memoryMb: -1 } }, 'invalid_request'],
    [
      'a size above the host maximum',
      'POST /v1/sandboxes',
      { resources: { memoryMb: 100000 } },
      'resource_limit',
    ],
    ['a bad env name', 'POST /v1/sandboxes', { env: { 'A-B': '1' } }, 'invalid_request'],
    [
      'a path that leaves the workspace',
      'POST /v1/sandboxes',
      { files: { '../escape.txt': 'x' } },
      'invalid_path',
    ],
    ['an absolute host path', 'POST /v1/sandboxes', { files: { '/etc/passwd': 'x' } }, 'invalid_path'],
    ['a NUL byte in a path', 'POST /v1/sandboxes', { files: { 'a\u0000b': 'x' } }, 'invalid_path'],
    ['an unknown template', 'POST /v1/sandboxes', { template: 'nope' }, 'invalid_request'],
    ['a bad id', 'GET /v1/sandboxes/not-an-id', undefined, 'invalid_id'],
    ['a bad id on an action', 'POST /v1/sandboxes/zzz/start', undefined, 'invalid_id'],
    ['a bad list filter', 'GET /v1/sandboxes?state=sleeping', undefined, 'invalid_request'],
    ['a bad limit', 'GET /v1/sandboxes?limit=0', undefined, 'invalid_request'],
    ['a bad label filter', 'GET /v1/sandboxes?label=novalue', undefined, 'invalid_request'],
  ];

  it.each(bad)('answers 400 with a code for %s', async (_what, route, body, code) => {
    const [method, path] = route.split(' ') as [string, string];
    const res = await server.call(method, path, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toBeTruthy();
    expect(res.body.error.hint).toBeTruthy();
  });

  it('names the offending field in validation messages', async () => {
    const res = await server.call('POST', '/v1/sandboxes', { runtime: { port: 'x' } });
    expect(res.body.error.message).toMatch(/body\.runtime\.port/);
  });

  it('answers 404 sandbox_not_found for a well-formed unknown id (any case)', async () => {
    const res = await server.call('GET', '/v1/sandboxes/01HZX3J6Q8K9M2N4P5R7S8T9VW');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('sandbox_not_found');
  });

  it('answers 413 payload_too_large above maxBodyMb', async () => {
    const res = await server.call('POST', '/v1/sandboxes', {
      files: { 'big.txt': 'x'.repeat(2 * 1024 * 1024) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });

  it('answers 415 for a media type it does not read, 400 for text where JSON is due', async () => {
    const xml = await server.call('POST', '/v1/sandboxes', '<a/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
    expect(xml.body.error.code).toBe('unsupported_media_type');
    const text = await server.call('POST', '/v1/sandboxes', 'hello', { 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    expect(text.body.error).toMatchObject({
      code: 'invalid_request',
      message: expect.stringMatching(/^body: .*object/),
    });
  });

  it('answers 404 not_found with a code for an unknown route', async () => {
    const res = await server.call('GET', '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('leaves no sandbox behind from refused creates', async () => {
    const res = await server.call('GET', '/v1/sandboxes');
    expect(res.body.sandboxes).toEqual([]);
  });
});
