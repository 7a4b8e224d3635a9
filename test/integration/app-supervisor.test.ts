import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

/** Answers "hello <n>" (n = a counter in the workspace, one more per start); exits 3 on /crash and at start while `fail` exists. */
const app = `
const fs = require('node:fs');
if (fs.existsSync('fail')) { console.log('refusing to start: fail exists'); process.exit(3); }
const n = (Number(fs.existsSync('starts') ? fs.readFileSync('starts', 'utf8') : 0) || 0) + 1;
fs.writeFileSync('starts', String(n));
require('node:http').createServer((req, res) => {
  if (req.url === '/crash') { console.error('Error: crash requested'); res.end('bye'); setTimeout(() => process.exit(3), 20); return; }
  res.end('hello ' + n);
}).listen(3000, '0.0.0.0', () => console.log('listening ' + n));
`;

describe('the app supervisor (real engine)', () => {
  let server: TestServer;
  let id: string;
  let host: string;

  const put = (path: string, body: string) =>
    fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/octet-stream' },
      body,
    });
  const crashes = async () =>
    (await server.app.bus.history({ sandboxId: id })).filter((e) => e.type === 'app.crashed');
  const answer = (text: string) =>
    waitFor(
      async () => {
        const res = await edgeJson(server, host, '/');
        return res.status === 200 && res.text === text ? res : undefined;
      },
      30_000,
      text,
    );

  beforeAll(async () => {
    server = await startTestServer({ appRestarts: 1 });
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': app, 'requirements.txt': '' },
      runtime: { install: 'echo install >> installs.txt', start: 'node server.js', port: 3000 },
    });
    expect(created.status).toBe(201);
    id = created.body.id;
    host = previewHostOf(id);
    await waitState(server, id, 'running');
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it('installs, starts, and skips the install while the dependency files are unchanged', async () => {
    await answer('hello 1');
    const status = await server.call('GET', `/v1/sandboxes/${id}/app`);
    expect(status.body).toMatchObject({ supervised: true, state: 'running', crashes: 0 });
    const restarted = await server.call('POST', `/v1/sandboxes/${id}/restart-app`);
    expect(restarted.status).toBe(200);
    expect(restarted.body.state).toBe('running');
    await answer('hello 2');
    // Stop and wake: the same plan runs again, the install still skipped.
    expect((await server.call('POST', `/v1/sandboxes/${id}/stop`)).body.state).toBe('stopped');
    await answer('hello 3');
    let installs = await server.call('GET', `/v1/sandboxes/${id}/files?path=installs.txt`);
    expect(installs.body).toBe('install\n');
    const logs = await server.call('GET', `/v1/sandboxes/${id}/logs?tail=200`);
    expect(JSON.stringify(logs.body)).toContain('[previewd] dependencies unchanged: install skipped');
    // A changed dependency file: the next start installs again.
    expect((await put('requirements.txt', '# changed\n')).status).toBeLessThan(300);
    await server.call('POST', `/v1/sandboxes/${id}/restart-app`);
    await answer('hello 4');
    installs = await server.call('GET', `/v1/sandboxes/${id}/files?path=installs.txt`);
    expect(installs.body).toBe('install\ninstall\n');
  }, 90_000);

  it('reports a crash, restarts with backoff, gives up, shows the crashed page, and restarts on demand', async () => {
    const before = (await crashes()).length;
    expect((await put('fail', 'x')).status).toBeLessThan(300);
    expect((await edgeJson(server, host, '/crash')).text).toBe('bye');
    // The crash, then one restart (appRestarts: 1) that fails too.
    const events = await waitFor(
      async () => {
        const all = await crashes();
        return all.length >= before + 2 ? all.slice(before) : undefined;
      },
      30_000,
      'two app.crashed',
    );
    const [first, second] = events.map((e) => e.data as { exitCode: number; lastLines: string[] });
    expect(first).toMatchObject({ exitCode: 3, oomKilled: false });
    expect(first!.lastLines).toContain('Error: crash requested');
    expect(second!.lastLines.at(-1)).toBe('refusing to start: fail exists');
    expect(second!.lastLines.join('\n')).not.toContain('[previewd]');
    const status = await server.call('GET', `/v1/sandboxes/${id}/app`);
    expect(status.body).toMatchObject({ supervised: true, state: 'failed', exitCode: 3, restarts: 1 });
    // The container stays up; the sandbox stays running; the edge shows the crash.
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
    const res = await edgeJson(server, host, '/');
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('app_crashed');
    expect(res.body.error.details.exitCode).toBe(3);
    const page = await edgeJson(server, host, '/', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(502);
    expect(page.text).toContain('refusing to start');
    const polled = await edgeJson(server, host, '/__previewd/status');
    expect(polled.body).toMatchObject({ ready: false, crashed: { exitCode: 3 } });
    // Fixed, then restarted on demand.
    await server.call('DELETE', `/v1/sandboxes/${id}/files?path=fail`);
    expect((await server.call('POST', `/v1/sandboxes/${id}/restart-app`)).status).toBe(200);
    await answer('hello 5');
    expect((await server.call('GET', `/v1/sandboxes/${id}/app`)).body).toMatchObject({ state: 'running' });
  }, 90_000);
});
