import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFixtureProject } from '../helpers/fixture-projects.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

/** Asks the app inside the sandbox (loopback of the container) until it answers. */
async function appAnswers(server: TestServer, id: string, port: number, path = '/'): Promise<string> {
  const probe = `import urllib.request as u; print(u.urlopen('http://127.0.0.1:${port}${path}', timeout=2).read().decode())`;
  const nodeProbe = `fetch('http://127.0.0.1:${port}${path}').then(r => r.text()).then(t => console.log(t), () => process.exit(1))`;
  return waitFor(
    async () => {
      const res = await server.app.provider.exec(id, {
        cmd: [
          'sh',
          '-c',
          'if command -v python3 >/dev/null; then python3 -c "$1"; else node -e "$2"; fi',
          'sh',
          probe,
          nodeProbe,
        ],
      });
      return res.exitCode === 0 ? res.stdout.toString('utf8') : undefined;
    },
    60_000,
    `the app on port ${port}`,
  );
}

describe('runtime detection through the API (real engine)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a FastAPI project runs as detected: python image, uvicorn on 0.0.0.0:8000, port exposed', async () => {
    const created = await server.call('POST', '/v1/sandboxes', {
      files: readFixtureProject('fastapi-requirements'),
    });
    expect(created.status).toBe(201);
    expect(created.body.image).toBe('previewd/runtime-python:3');
    expect(created.body.ports).toEqual([8000]);
    expect(created.body.runtime).toMatchObject({ source: 'detected', framework: 'fastapi', port: 8000 });
    expect(await appAnswers(server, created.body.id, 8000)).toContain('"ok":true');
  });

  it('a bare Node server and a static site run as detected', async () => {
    const node = await server.call('POST', '/v1/sandboxes', {
      files: readFixtureProject('node-bare-server'),
    });
    expect(node.body).toMatchObject({ image: 'previewd/runtime-node:22', ports: [3000] });
    const site = await server.call('POST', '/v1/sandboxes', { files: readFixtureProject('static-html') });
    expect(site.body).toMatchObject({ image: 'previewd/runtime-node:22', ports: [8080] });
    expect(await appAnswers(server, node.body.id, 3000)).toBe('bare\n');
    expect(await appAnswers(server, site.body.id, 8080)).toContain('<h1>Hello</h1>');
  });

  it('detected Vite projects install from the npm registry and answer on their preview host (npm, pnpm)', async () => {
    const react = await server.call('POST', '/v1/sandboxes', { files: readFixtureProject('vite-react') });
    const vue = await server.call('POST', '/v1/sandboxes', { files: readFixtureProject('vite-vue-pnpm') });
    expect(react.body.runtime).toMatchObject({ framework: 'vite-react', packageManager: 'npm', port: 5173 });
    expect(vue.body.runtime).toMatchObject({ framework: 'vite-vue', packageManager: 'pnpm', port: 4000 });
    for (const [sb, marker] of [
      [react.body, '/@react-refresh'],
      [vue.body, '/@vite/client'],
    ] as const) {
      // Vite refuses unknown Host headers; the preview host must be accepted.
      const host = `${sb.runtime.port}-${sb.id}.preview.localhost:8080`;
      const probe = `fetch('http://127.0.0.1:${sb.runtime.port}/', { headers: { host: '${host}' } }).then(async (r) => { if (!r.ok) process.exit(1); console.log(await r.text()); }, () => process.exit(1))`;
      const page = await waitFor(
        async () => {
          const res = await server.app.provider.exec(sb.id, { cmd: ['node', '-e', probe] });
          return res.exitCode === 0 ? res.stdout.toString() : undefined;
        },
        180_000,
        `vite in ${sb.runtime.framework}`,
      );
      expect(page).toContain(marker);
    }
    // pnpm's store stays out of the user's files.
    expect(await server.app.provider.files(vue.body.id).exists('.pnpm-store')).toBe(false);
  }, 300_000);

  it('unrecognisable files without runtime.start → 422 runtime_unknown, nothing left behind', async () => {
    const before = (await server.app.store.listSandboxes()).length;
    const res = await server.call('POST', '/v1/sandboxes', { files: readFixtureProject('unknown-notes') });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({
      code: 'runtime_unknown',
      hint: expect.stringContaining('runtime.start'),
    });
    expect((await server.app.store.listSandboxes()).length).toBe(before);
  });

  it('the same files with runtime.start are accepted; a bad path still reports invalid_path', async () => {
    const res = await server.call('POST', '/v1/sandboxes', {
      files: readFixtureProject('unknown-notes'),
      runtime: { start: 'exec sleep infinity' },
    });
    expect(res.status).toBe(201);
    expect(res.body.runtime).toMatchObject({ source: 'overrides', start: 'exec sleep infinity' });
    const bad = await server.call('POST', '/v1/sandboxes', { files: { '../notes.txt': 'x' } });
    expect(bad.body.error.code).toBe('invalid_path');
  });
});
