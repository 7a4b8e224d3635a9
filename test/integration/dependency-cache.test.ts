import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const docker = createDockerClient({ docker: { network: 'previewd' } as never });

const project = {
  'package.json': `${JSON.stringify({ name: 'cache-probe', private: true, dependencies: { 'is-number': '^7.0.0' } }, null, 2)}\n`,
};
const runtime = { install: 'npm install', start: 'exec sleep infinity' };

async function createAndInstall(server: TestServer): Promise<string> {
  const created = await server.call('POST', '/v1/sandboxes', { files: project, runtime });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const files = server.app.provider.files(id);
  await waitFor(
    async () => {
      const res = await server.call('GET', `/v1/sandboxes/${id}`);
      if (res.body.state === 'error') throw new Error(`sandbox in error: ${JSON.stringify(res.body.error)}`);
      return res.body.state === 'running' && (await files.exists('node_modules/is-number/package.json'))
        ? true
        : undefined;
    },
    120_000,
    'npm install to finish',
  );
  return id;
}

/** npm's own account of its registry requests during the install, from its debug log in the sandbox. */
async function npmFetchLog(server: TestServer, id: string): Promise<string> {
  const res = await server.app.provider.exec(id, {
    cmd: ['sh', '-c', 'cat /home/user/.cache/npm-logs/*-debug-*.log'],
  });
  expect(res.exitCode).toBe(0);
  return res.stdout
    .toString('utf8')
    .split('\n')
    .filter((line) => /http fetch|tarball|cache/.test(line))
    .join('\n');
}

describe('per-host dependency cache (real engine, real npm registry)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('the second sandbox installs from the cache the first one filled', async () => {
    const cacheDir = join(server.dataDir, 'cache', 'npm');
    const first = await createAndInstall(server);
    const firstLog = await npmFetchLog(server, first);
    // The first install downloads the tarball from the registry…
    expect(firstLog).toMatch(/http fetch GET 200 \S+\/is-number-7\.0\.0\.tgz .*\(cache miss\)/);
    expect(readdirSync(join(cacheDir, '_cacache')).length).toBeGreaterThan(0);
    // npm's debug logs stay in the sandbox, not in the shared cache.
    expect(readdirSync(cacheDir)).not.toContain('_logs');

    const second = await createAndInstall(server);
    const secondLog = await npmFetchLog(server, second);
    // …the second takes it from the shared cache and downloads no tarball.
    expect(secondLog).toMatch(/is-number-7\.0\.0\.tgz .*\(cache hit\)/);
    expect(secondLog).not.toMatch(/http fetch GET \d+ \S+\.tgz/);
    expect(secondLog).not.toMatch(/no local data/);
  });

  it('~/.cache stays writable by the sandbox user; the caches are bind mounts', async () => {
    const sandboxes = await server.app.store.listSandboxes();
    const id = sandboxes[0]!.id;
    const res = await server.app.provider.exec(id, {
      cmd: ['sh', '-c', 'mkdir -p ~/.cache/probe && stat -c "%u:%g %n" ~/.cache ~/.cache/pip ~/.npm'],
    });
    expect(res.exitCode).toBe(0);
    expect(res.stdout.toString().trim().split('\n')).toEqual([
      '1000:1000 /home/user/.cache',
      '1000:1000 /home/user/.cache/pip',
      '1000:1000 /home/user/.npm',
    ]);
    const info = await docker.getContainer(`previewd-${id}`).inspect();
    const mounts = Object.fromEntries(info.Mounts.map((m) => [m.Destination, m.Source]));
    expect(mounts['/home/user/.npm']).toBe(join(server.dataDir, 'cache', 'npm'));
    expect(mounts['/home/user/.cache/pip']).toBe(join(server.dataDir, 'cache', 'pip'));
  });
});

describe('dependencyCache: false', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ dependencyCache: false });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('mounts no cache', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const id = created.body.id as string;
    await server.app.service.idle();
    const info = await docker.getContainer(`previewd-${id}`).inspect();
    expect(info.Mounts.map((m) => m.Destination).sort()).not.toContain('/home/user/.npm');
    expect(info.Mounts.some((m) => m.Destination.startsWith('/home/user'))).toBe(false);
  });
});
