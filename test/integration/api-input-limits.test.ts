import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_BODY_BYTES, MAX_JSON_DEPTH } from '../../src/api/body-limits.js';
import { tarOf } from '../helpers/archives.js';
import { errorCodeOf, rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

describe('API input limits: malformed input gets a 4xx with a code (real engine)', () => {
  let server: TestServer;
  let id: string;
  const auth = { authorization: `Bearer ${TEST_KEY}` };

  const upload = (body: Buffer, type: string) =>
    fetch(`${server.url}/v1/sandboxes/${id}/files/batch?path=up`, {
      method: 'POST',
      headers: { ...auth, 'content-type': type },
      body,
    });
  /** A workspace file's content, or undefined when it does not exist. */
  const read = async (path: string) => {
    const res = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`, {
      headers: auth,
    });
    return res.status === 200 ? await res.text() : undefined;
  };

  beforeAll(async () => {
    server = await startTestServer({ maxBodyMb: 4 });
    const res = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    expect(res.status).toBe(201);
    id = res.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses truncated and corrupt tar and gzip uploads with invalid_archive, writing nothing', async () => {
    const before = await upload(await tarOf({ 'keep.txt': 'kept', 'a.txt': 'old a' }), 'application/x-tar');
    expect(before.status).toBe(200);
    const archive = await tarOf({ 'a.txt': 'new a '.repeat(200), 'b.txt': 'new b', 'c.txt': 'new c' });
    const gz = gzipSync(archive);
    const cases: [string, Buffer, string][] = [
      ['a tar cut inside its first entry', archive.subarray(0, 700), 'application/x-tar'],
      ['a tar cut after two entries', archive.subarray(0, archive.length - 1100), 'application/x-tar'],
      ['bytes that are no tar', Buffer.from('not a tar at all '.repeat(64)), 'application/x-tar'],
      ['a gzip cut short', gz.subarray(0, Math.floor(gz.length / 2)), 'application/gzip'],
      [
        'a gzip header over garbage',
        Buffer.concat([gz.subarray(0, 2), Buffer.alloc(64, 7)]),
        'application/gzip',
      ],
      ['a cut gzip sent as octet-stream', gz.subarray(0, gz.length - 8), 'application/octet-stream'],
    ];
    for (const [what, body, type] of cases) {
      const res = await upload(body, type);
      expect(res.status, what).toBe(400);
      expect(((await res.json()) as any).error.code, what).toBe('invalid_archive');
    }
    // Nothing of the refused archives landed; the files that were there are intact.
    expect(await read('up/a.txt')).toBe('old a');
    expect(await read('up/keep.txt')).toBe('kept');
    expect(await read('up/b.txt')).toBeUndefined();
    // The same archive, complete and gzipped, is extracted.
    const ok = await upload(gz, 'application/gzip');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).written.map((e: any) => e.path).sort()).toEqual([
      'up/a.txt',
      'up/b.txt',
      'up/c.txt',
    ]);
    expect(await read('up/b.txt')).toBe('new b');
    expect(await read('up/keep.txt')).toBe('kept');
  });

  it('refuses an archive naming a path outside the workspace before writing any entry', async () => {
    const evil = await tarOf({ 'first.txt': 'x', '../../escape.txt': 'y' });
    const res = await upload(evil, 'application/x-tar');
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe('invalid_path');
    expect(await read('up/first.txt')).toBeUndefined();
  });

  it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} with json_too_deep, at once`, async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    for (const path of ['/v1/sandboxes', `/v1/sandboxes/${id}/ports`, `/v1/sandboxes/${id}/exec`]) {
      const res = await server.call('POST', path, deep);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code, path).toBe('json_too_deep');
    }
    const nested = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    const objects = await server.call('POST', '/v1/sandboxes', {
      metadata: JSON.parse(nested(MAX_JSON_DEPTH + 5)),
    });
    expect(objects.body.error.code).toBe('json_too_deep');
    // Brackets inside strings do not count; a document at the limit is parsed (and validated).
    const inString = await server.call('POST', `/v1/sandboxes/${id}/ports`, {
      port: 3000,
      x: '[[[['.repeat(50),
    });
    expect(inString.status).toBe(400);
    expect(inString.body.error.code).toBe('invalid_request');
    const atLimit = await server.call('POST', '/v1/sandboxes', `{"metadata":${nested(MAX_JSON_DEPTH - 2)}}`);
    expect(atLimit.body.error?.code).not.toBe('json_too_deep');
  });

  it('keeps control routes to a small body, uploads to maxBodyMb', async () => {
    const big = JSON.stringify({ port: 3000, pad: 'x'.repeat(CONTROL_BODY_BYTES) });
    const control = await server.call('POST', `/v1/sandboxes/${id}/ports`, big);
    expect(control.status).toBe(413);
    expect(control.body.error.code).toBe('payload_too_large');
    const tokens = await server.call('POST', `/v1/sandboxes/${id}/keepalive`, big);
    expect(tokens.status).toBe(413);
    // 2 MB of files in one JSON batch is an upload: allowed (maxBodyMb 4).
    const batch = await server.call('POST', `/v1/sandboxes/${id}/files/batch`, {
      files: { 'big/one.txt': 'y'.repeat(2 * 1024 * 1024) },
    });
    expect(batch.status).toBe(200);
    const tooBig = await server.call('POST', `/v1/sandboxes/${id}/files/batch`, {
      files: { 'big/two.txt': 'y'.repeat(5 * 1024 * 1024) },
    });
    expect(tooBig.status).toBe(413);
  });

  it('bounds the number of entries in a batch and the size of maps in a create', async () => {
    const many = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`m/${i}.txt`, '']));
    const batch = await server.call('POST', `/v1/sandboxes/${id}/files/batch`, { files: many });
    expect(batch.status).toBe(400);
    expect(batch.body.error.code).toBe('invalid_request');
    const create = await server.call('POST', '/v1/sandboxes', { files: many });
    expect(create.status).toBe(400);
    expect(create.body.error.code).toBe('invalid_request');
    const env = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`V${i}`, '1']));
    const withEnv = await server.call('POST', '/v1/sandboxes', { env });
    expect(withEnv.status).toBe(400);
    expect(withEnv.body.error.code).toBe('invalid_request');
  });

  it('writes a file uploaded as application/json byte for byte (deep or not valid JSON at all)', async () => {
    const bodies = [
      Buffer.from('{ "a": 1,\n  "b": [1, 2] }\n'),
      Buffer.from(`${'['.repeat(500)}${']'.repeat(500)}`),
      Buffer.from('not json {'),
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
    ];
    for (const [i, body] of bodies.entries()) {
      const put = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=json/${i}.json`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body,
      });
      expect(put.status, String(i)).toBe(200);
      const got = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=json/${i}.json`, {
        headers: auth,
      });
      expect(Buffer.from(await got.arrayBuffer()).equals(body), String(i)).toBe(true);
    }
  });

  it('answers wrong content types with a code: 415 for types it does not read, 400 for text', async () => {
    const post = (path: string, type: string, body: string) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { ...auth, 'content-type': type }, body });
    for (const type of [
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
    ]) {
      const res = await post(`/v1/sandboxes/${id}/ports`, type, '{"port":3000}');
      expect(res.status, type).toBe(415);
      expect(((await res.json()) as any).error.code, type).toBe('unsupported_media_type');
    }
    const text = await post(`/v1/sandboxes/${id}/ports`, 'text/plain', '{"port":3000}');
    expect(text.status).toBe(400);
    expect(((await text.json()) as any).error.code).toBe('invalid_request');
    const batch = await post(`/v1/sandboxes/${id}/files/batch`, 'image/png', 'x');
    expect(batch.status).toBe(415);
    expect(((await batch.json()) as any).error.code).toBe('unsupported_media_type');
  });

  it('answers requests Node cannot parse with a code: huge headers 431, bad bytes 400', async () => {
    const huge = await rawRequest(
      server.url,
      rawHttp('GET', '/v1/sandboxes', ['host: 127.0.0.1', `x-pad: ${'a'.repeat(64 * 1024)}`]),
    );
    expect(huge.status).toBe(431);
    expect(errorCodeOf(huge)).toBe('headers_too_large');
    const cases: [string, Buffer][] = [
      ['NUL in a header value', rawHttp('GET', '/healthz', ['host: 127.0.0.1', Buffer.from('x-a: a\0b')])],
      ['a header without a colon', rawHttp('GET', '/healthz', ['host: 127.0.0.1', 'nonsense'])],
      ['a space in the target', rawHttp('GET', '/v1/sand boxes', ['host: 127.0.0.1'])],
      ['NUL in the target', rawHttp('GET', Buffer.from('/v1/\0'), ['host: 127.0.0.1'])],
      [
        'a bad Content-Length',
        Buffer.from('POST /v1/sandboxes HTTP/1.1\r\nhost: x\r\ncontent-length: zz\r\n\r\n'),
      ],
    ];
    for (const [what, bytes] of cases) {
      const res = await rawRequest(server.url, bytes);
      expect(res.status, what).toBe(400);
      expect(errorCodeOf(res), what).toBe('bad_request');
    }
  });

  it('answers invalid UTF-8, NUL and junk in paths and queries with a 4xx', async () => {
    const targets = [
      `/v1/sandboxes/%ff%fe`,
      `/v1/sandboxes/${id}/files?path=%ff%fe`,
      `/v1/sandboxes/${id}/files?path=a%00b`,
      `/v1/sandboxes/${id}/files/list?path=%c0%ae%c0%ae/`,
      `/v1/sandboxes/${id}%00`,
      `/v1/sandboxes/${'a'.repeat(5000)}`,
      `/v1/sandboxes?limit=%ff&state=%00`,
      `/v1/sandboxes/${id}/files?path=${'%2e%2e%2f'.repeat(10)}etc/passwd`,
      Buffer.from(`/v1/sandboxes/${id}/files?path=\xff\xfe`, 'latin1').toString('latin1'),
    ];
    for (const target of targets) {
      const res = await rawRequest(
        server.url,
        rawHttp('GET', Buffer.from(target, 'latin1'), [
          'host: 127.0.0.1',
          `authorization: Bearer ${TEST_KEY}`,
        ]),
      );
      expect(res.status, target).toBeGreaterThanOrEqual(400);
      expect(res.status, target).toBeLessThan(500);
      expect(errorCodeOf(res), target).toBeTruthy();
    }
  });
});
