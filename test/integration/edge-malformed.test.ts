import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppSandbox, previewHostOf } from '../helpers/edge.js';
import { errorCodeOf, rawHttp, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

/** Requests a browser would never send: the edge (front or built-in) answers 4xx with a code. */
const front = (process.env.PREVIEWD_TEST_EDGE_FRONT ?? 'haproxy') !== 'off';

describe('edge: malformed requests get a 4xx with a code (real engine)', () => {
  let server: TestServer;
  let host: string;
  const ask = (method: string, target: string, headers: string[], body?: Buffer) =>
    rawRequest(server.edgeUrl, rawHttp(method, Buffer.from(target, 'latin1'), headers, body));

  beforeAll(async () => {
    server = await startTestServer();
    const { id } = await createAppSandbox(server);
    host = previewHostOf(id);
    await waitFor(async () =>
      (await ask('GET', '/echo', [`host: ${host}`])).status === 200 ? true : undefined,
    );
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('forwards an absolute-form target to the app as a path', async () => {
    const res = await ask('GET', `http://${host}/echo?a=1`, [`host: ${host}`]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).url).toBe('/echo?a=1');
  });

  it('refuses targets that are no path and upgrades that are no WebSocket', async () => {
    // OPTIONS * concerns the server itself: HAProxy passes it to the app (a valid request) once
    // the sandbox's fast route is published — which may not have happened yet, or may have been
    // withdrawn by an event — and the built-in edge cannot forward it and refuses it.
    const star = await ask('OPTIONS', '*', [`host: ${host}`]);
    const passedByFront = front && star.status === 200;
    if (!passedByFront) expect([star.status, errorCodeOf(star)]).toEqual([400, 'bad_request']);
    const upgrades = [['upgrade: h2c'], ['upgrade: websocket', 'upgrade: h2c'], ['upgrade: websocket, h2c']];
    for (const extra of upgrades) {
      const bytes = rawHttp('GET', '/ws', [
        `host: ${host}`,
        ...extra,
        'sec-websocket-version: 13',
        'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==',
      ]);
      const res = await rawRequest(
        server.edgeUrl,
        Buffer.from(bytes.toString('latin1').replace('connection: close', 'connection: upgrade'), 'latin1'),
      );
      expect(res.status, extra.join(' + ')).toBe(400);
      expect(errorCodeOf(res), extra.join(' + ')).toBe('bad_request');
    }
  });

  it('answers unparsable requests and oversized Host headers with a 4xx (the error body where previewd parses)', async () => {
    for (const headers of [
      [`host: ${host}`, Buffer.from('x-a: a\0b', 'latin1').toString('latin1')],
      [`host: ${host}`, 'no colon here'],
    ]) {
      const res = await ask('GET', '/', headers);
      expect(res.status, headers.join(' ')).toBe(400);
      // With the front, HAProxy answers what it cannot parse with its own page (2.6 does not use
      // errorfile there), and passes a NUL in a value on to the app, which refuses it itself.
      if (!front) expect(errorCodeOf(res), headers.join(' ')).toBe('bad_request');
    }
    for (const n of [300, 2000, 12_000]) {
      const res = await ask('GET', '/', [`host: ${'a'.repeat(n)}.preview.localhost`]);
      expect(res.status, String(n)).toBe(404);
      expect(errorCodeOf(res), String(n)).toBe('not_a_preview_host');
    }
    const huge = await ask('GET', '/', [`host: ${host}`, `x-pad: ${'p'.repeat(40_000)}`]);
    if (front) expect(huge.status).toBe(400);
    else expect([huge.status, errorCodeOf(huge)]).toEqual([431, 'headers_too_large']);
  });
});
