import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppSandbox, edgeJson, previewHostOf, wsConnect, wsRoundTrip } from '../helpers/edge.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

describe('edge through loopback-published ports (the Docker Desktop mode, real engine)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'edge.useLoopbackPorts': true });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('reaches the app on 127.0.0.1, HTTP and WebSocket, and survives a stop/wake', async () => {
    const { id } = await createAppSandbox(server);
    const addr = await server.app.provider.address(id, 3000);
    expect(addr.host).toBe('127.0.0.1');
    expect(addr.port).not.toBe(3000);
    const host = previewHostOf(id);
    const res = await waitFor(async () => {
      const r = await edgeJson(server, host, '/echo');
      return r.status === 200 ? r : undefined;
    });
    expect(res.body.headers.host).toBe(host);
    const { ws } = await wsConnect(server, host, '/ws');
    expect(await wsRoundTrip(ws, 'loop')).toBe('loop');
    ws.close();
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const woken = await edgeJson(server, host, '/echo', { method: 'POST', body: 'after wake' });
    expect(woken.body.body).toBe('after wake');
  });
});
