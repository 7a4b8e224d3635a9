import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';

/** Two tiny real packages and the lockfile npm wrote for them. */
const DEPENDENCIES = { 'is-number': '^7.0.0', ms: '^2.1.3' };
const LOCK = {
  name: 'dl-probe',
  version: '1.0.0',
  lockfileVersion: 3,
  requires: true,
  packages: {
    '': { name: 'dl-probe', version: '1.0.0', dependencies: DEPENDENCIES },
    'node_modules/is-number': {
      version: '7.0.0',
      integrity:
        'sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==',
      license: 'MIT',
      engines: { node: '>=0.12.0' },
    },
    'node_modules/ms': {
      version: '2.1.3',
      integrity:
        'sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==',
      license: 'MIT',
    },
  },
};
const LOCKFILE = `${JSON.stringify(LOCK, null, 2)}\n`;
const SERVER_JS = `require('node:http').createServer((q, s) => s.end('ms ' + require('ms')(60000))).listen(process.env.PORT || 3000, '0.0.0.0');\n`;

/** A project with the lockfile: its own name, scripts and files around the same dependencies. */
function project(name: string, extra: Record<string, unknown> = {}): Record<string, string> {
  const manifest = {
    name,
    version: '1.0.0',
    scripts: { start: 'node server.js' },
    dependencies: DEPENDENCIES,
    ...extra,
  };
  return {
    'package.json': `${JSON.stringify(manifest, null, 2)}\n`,
    'package-lock.json': LOCKFILE,
    'server.js': SERVER_JS,
  };
}

/** Every entry under `root`: path, type, executable bit, size and sha256 of content, or link target. */
function treeSums(root: string, skip: (rel: string) => boolean): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    const exec = st.mode & 0o100 ? 'x' : '-';
    if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(abs)}`);
    else if (st.isFile())
      out.set(rel, `file ${exec} ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      for (const name of readdirSync(abs).sort()) {
        const child = rel ? `${rel}/${name}` : name;
        if (!skip(child)) walk(child);
      }
    } else out.set(rel, `other ${st.mode.toString(8)}`);
  };
  walk('');
  return out;
}

/** The stamp and the dev servers' caches are a sandbox's own; the rest is the install. */
const notInstalled = (rel: string) => rel === '.previewd-install-hash' || rel === '.vite' || rel === '.cache';

describe('dependency layers keyed by lockfile (real engine, real mounts, real npm registry)', () => {
  let server: TestServer;
  const as = (owner: string) => ({ 'x-previewd-owner': owner });

  beforeAll(async () => {
    server = await startTestServer({ 'dependencyLayers.enabled': true, 'dependencyLayers.shared': true });
  });
  afterAll(async () => {
    await server?.close();
  });

  const create = async (files: Record<string, string>, owner = 'tenant-a') => {
    const res = await server.call('POST', '/v1/sandboxes', { files }, as(owner));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; runtime: { dependencies?: string; install?: string } };
  };
  const logs = async (id: string) =>
    JSON.stringify((await server.call('GET', `/v1/sandboxes/${id}/logs?tail=200`)).body);
  const serves = (id: string) =>
    waitFor(
      async () => {
        const res = await server.app.provider.exec(id, {
          cmd: [
            'sh',
            '-c',
            'wget -qO- http://127.0.0.1:3000/ 2>/dev/null || node -e "fetch(\'http://127.0.0.1:3000/\').then(r=>r.text()).then(t=>process.stdout.write(t))"',
          ],
        });
        return res.stdout.toString().includes('ms 1m') ? true : undefined;
      },
      120_000,
      `sandbox ${id} to serve`,
    );
  const exec = async (id: string, script: string) => {
    const res = await server.app.provider.exec(id, { cmd: ['sh', '-c', script], timeoutSec: 60 });
    return { code: res.exitCode, out: res.stdout.toString().trim() };
  };
  const dependencyLayers = () =>
    readdirSync(join(server.dataDir, 'layers')).filter((k) =>
      existsSync(join(server.dataDir, 'layers', k, 'node_modules', 'ms', 'package.json')),
    );
  const modules = (id: string) => join(server.app.provider.files(id).root, 'node_modules');

  let first = '';
  let second = '';
  let layer = '';

  it('a first create installs; previewd then builds the layer in a sandbox of its own', async () => {
    const a = await create(project('dl-probe'));
    first = a.id;
    expect(a.runtime.dependencies).toBe('installed');
    await waitState(server, first, 'running', 60_000);
    await serves(first);
    expect(await logs(first)).toContain('[previewd] install: npm ci');
    const layers = await waitFor(
      async () => {
        const found = dependencyLayers();
        const builds = (await server.app.store.listSandboxes()).filter(
          (s) => s.labels['previewd.dependency-build'] !== undefined,
        );
        return found.length === 1 && builds.length === 0 ? found : undefined;
      },
      180_000,
      'the dependency layer',
    );
    layer = layers[0]!;
    // The layer's node_modules is the build's, not a copy of the user's sandbox: no stamp in it.
    expect(existsSync(join(server.dataDir, 'layers', layer, 'node_modules', '.previewd-install-hash'))).toBe(
      false,
    );
  }, 300_000);

  it('a second create with the same lockfile installs nothing; its node_modules equals a fresh install', async () => {
    const b = await create(
      {
        ...project('another-name', { scripts: { start: 'node server.js', lint: 'true' } }),
        'README.md': 'b\n',
      },
      'tenant-b',
    );
    second = b.id;
    expect(b.runtime.dependencies).toBe('layer');
    await waitState(server, second, 'running', 60_000);
    await serves(second);
    const log = await logs(second);
    expect(log).toContain('[previewd] dependencies unchanged: install skipped');
    expect(log).not.toContain('[previewd] install:');
    const stack = JSON.parse(readFileSync(join(server.dataDir, 'sandboxes', second, 'stack.json'), 'utf8'));
    expect(stack.layers).toEqual([layer]);
    const fresh = treeSums(modules(first), notInstalled);
    const fromLayer = treeSums(modules(second), notInstalled);
    expect(fresh.size).toBeGreaterThan(5);
    expect(Object.fromEntries(fromLayer)).toEqual(Object.fromEntries(fresh));
  }, 300_000);

  it('a write into node_modules in one sandbox shows in no other from the same layer', async () => {
    const c = await create(project('third'), 'tenant-c');
    await waitState(server, c.id, 'running', 60_000);
    expect(c.runtime.dependencies).toBe('layer');
    const wrote = await exec(
      second,
      'echo // planted >> node_modules/ms/index.js && echo x > node_modules/new.js && tail -1 node_modules/ms/index.js',
    );
    expect(wrote).toEqual({ code: 0, out: '// planted' });
    const other = await exec(
      c.id,
      'grep -c planted node_modules/ms/index.js; test -e node_modules/new.js && echo seen || echo absent',
    );
    expect(other.out.split('\n')).toEqual(['0', 'absent']);
    const inLayer = readFileSync(
      join(server.dataDir, 'layers', layer, 'node_modules', 'ms', 'index.js'),
      'utf8',
    );
    expect(inLayer).not.toContain('planted');
    await server.call('DELETE', `/v1/sandboxes/${c.id}`, undefined, as('tenant-c'));
  }, 180_000);

  it('a stop, an unmount and a start mount the same stack again (the layer included)', async () => {
    await server.app.service.stop(second);
    await (
      server.app.provider as unknown as { storage: { release(id: string): Promise<void> } }
    ).storage.release(second);
    expect(existsSync(join(modules(second), 'ms'))).toBe(false);
    await server.app.service.start(second);
    await waitState(server, second, 'running', 60_000);
    await serves(second);
    expect((await exec(second, 'tail -1 node_modules/ms/index.js')).out).toBe('// planted');
  }, 180_000);

  it('an ineligible project (a root postinstall script) installs as before', async () => {
    const d = await create(
      project('scripted', { scripts: { start: 'node server.js', postinstall: 'echo post > post.txt' } }),
    );
    expect(d.runtime.dependencies).toBe('installed');
    await waitState(server, d.id, 'running', 60_000);
    await serves(d.id);
    expect(await logs(d.id)).toContain('[previewd] install: npm ci');
    expect((await exec(d.id, 'cat post.txt')).out).toBe('post');
    const stack = JSON.parse(readFileSync(join(server.dataDir, 'sandboxes', d.id, 'stack.json'), 'utf8'));
    expect(stack.layers).toEqual([]);
  }, 180_000);
});

describe('dependencyLayers.shared: false', () => {
  let server: TestServer;
  const as = (owner: string) => ({ 'x-previewd-owner': owner });
  beforeAll(async () => {
    server = await startTestServer({ 'dependencyLayers.shared': false });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("keys layers by owner: one tenant's layer is never another's", async () => {
    const post = async (owner: string) => {
      const res = await server.call('POST', '/v1/sandboxes', { files: project('dl-probe') }, as(owner));
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body as { id: string; runtime: { dependencies?: string } };
    };
    const first = await post('tenant-a');
    expect(first.runtime.dependencies).toBe('installed');
    await waitFor(
      async () => {
        const layers = readdirSync(join(server.dataDir, 'layers')).filter((k) =>
          existsSync(join(server.dataDir, 'layers', k, 'node_modules', 'ms')),
        );
        const builds = (await server.app.store.listSandboxes()).filter(
          (s) => s.labels['previewd.dependency-build'] !== undefined,
        );
        return layers.length === 1 && builds.length === 0 ? true : undefined;
      },
      180_000,
      'the layer of tenant-a',
    );
    expect((await post('tenant-b')).runtime.dependencies).toBe('installed');
    expect((await post('tenant-a')).runtime.dependencies).toBe('layer');
  }, 300_000);
});
