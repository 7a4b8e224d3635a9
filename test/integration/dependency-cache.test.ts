import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const docker = createDockerClient({ docker: { network: 'previewd' } as never });

const runtime = { install: 'npm install', start: 'exec sleep infinity' };

async function createAndInstall(
  server: TestServer,
  dependencies: Record<string, string> = { 'is-number': '^7.0.0' },
): Promise<string> {
  const name = Object.keys(dependencies)[0]!;
  const files = {
    'package.json': `${JSON.stringify({ name: 'cache-probe', private: true, dependencies }, null, 2)}\n`,
  };
  const created = await server.call('POST', '/v1/sandboxes', { files, runtime });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const workspace = server.app.provider.files(id);
  await waitFor(
    async () => {
      const res = await server.call('GET', `/v1/sandboxes/${id}`);
      if (res.body.state === 'error') throw new Error(`sandbox in error: ${JSON.stringify(res.body.error)}`);
      return res.body.state === 'running' && (await workspace.exists(`node_modules/${name}/package.json`))
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

describe('per-host dependency cache (real engine, real mounts, real npm registry)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  /** The download-cache layer previewd published last (none before a build). */
  const cacheLayer = () => {
    const pointer = join(server.dataDir, 'cache', 'npm.layer');
    return existsSync(pointer)
      ? join(server.dataDir, 'layers', readFileSync(pointer, 'utf8').trim())
      : undefined;
  };

  it("a sandbox's install writes its own cache layer, never the shared cache", async () => {
    const first = await createAndInstall(server);
    const firstLog = await npmFetchLog(server, first);
    // The install downloads the tarball from the registry…
    expect(firstLog).toMatch(/http fetch GET 200 \S+\/is-number-7\.0\.0\.tgz .*\(cache miss\)/);
    // …into the sandbox's own upper layer (on its disk); the host's shared cache is unchanged.
    const own = join(server.dataDir, 'sandboxes', first, 'disk', 'npm-upper', '_cacache');
    expect(readdirSync(own).length).toBeGreaterThan(0);
    expect(cacheLayer()).toBeUndefined();
    expect(existsSync(join(server.dataDir, 'cache', 'npm'))).toBe(false);

    // So a second sandbox finds nothing the first one downloaded (nor anything it could plant).
    const second = await createAndInstall(server);
    expect(await npmFetchLog(server, second)).toMatch(/is-number-7\.0\.0\.tgz .*\(cache miss\)/);
  });

  it("previewd's template build publishes the next cache layer; a sandbox installs from it without downloading", async () => {
    const warm = await server.call('POST', '/v1/templates/express/warm');
    expect(warm.status, JSON.stringify(warm.body)).toBe(200);
    // Published as a new layer (nothing is written into a cache a mounted overlay reads).
    expect(readdirSync(join(cacheLayer()!, '_cacache')).length).toBeGreaterThan(0);
    // A package the build downloaded, at the version it did.
    const lock = JSON.parse(
      readFileSync(join(server.dataDir, 'cache', 'templates', 'express', 'package-lock.json'), 'utf8'),
    );
    const version = lock.packages['node_modules/ms'].version as string;
    const id = await createAndInstall(server, { ms: version });
    const log = await npmFetchLog(server, id);
    expect(log).toMatch(new RegExp(`ms-${version.replaceAll('.', '\\.')}\\.tgz .*\\(cache hit\\)`));
    expect(log).not.toMatch(/http fetch GET \d+ \S+\.tgz/);
  }, 300_000);

  it('~/.cache stays writable by the sandbox user; the caches are overlays of its own', async () => {
    const sandboxes = await server.app.store.listSandboxes();
    const id = sandboxes[0]!.id;
    const res = await server.app.provider.exec(id, {
      cmd: [
        'sh',
        '-c',
        'mkdir -p ~/.cache/probe && stat -c "%u:%g %n" ~/.cache ~/.cache/pip ~/.npm && id -u',
      ],
    });
    expect(res.exitCode).toBe(0);
    const lines = res.stdout.toString().trim().split('\n');
    const uid = lines.pop();
    expect(lines).toEqual([
      `${uid}:${uid} /home/user/.cache`,
      `${uid}:${uid} /home/user/.cache/pip`,
      `${uid}:${uid} /home/user/.npm`,
    ]);
    const info = await docker.getContainer(`previewd-${id}`).inspect();
    const mounts = Object.fromEntries(info.Mounts.map((m) => [m.Destination, m.Source]));
    expect(mounts['/home/user/.npm']).toBe(join(server.dataDir, 'sandboxes', id, 'npm'));
    expect(mounts['/home/user/.cache/pip']).toBe(join(server.dataDir, 'sandboxes', id, 'pip'));
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
    const destinations = info.Mounts.map((m) => m.Destination);
    expect(destinations).not.toContain('/home/user/.npm');
    expect(destinations).not.toContain('/home/user/.cache/pip');
    expect(info.Mounts.some((m) => m.Source.includes('/cache/'))).toBe(false);
  });
});
