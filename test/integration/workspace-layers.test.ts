import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountAt, mountsUnder, unmount } from '../../src/workspaces/mounts.js';
import { releaseMounts } from '../helpers/mounts.js';
import { startTestServer, type TestServer, waitFor, waitState } from '../helpers/server.js';
import { docker, freePort, instanceContainers, ServerProcess } from '../helpers/server-process.js';

/** A tree as the host sees it: every entry's path, type, mode, owner, size and content (or link target). */
function treeHash(root: string): { hash: string; files: number } {
  const hash = createHash('sha256');
  let files = 0;
  const walk = (rel: string) => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    hash.update(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0`);
    if (st.isSymbolicLink()) hash.update(`link ${readlinkSync(abs)}\0`);
    else if (st.isFile()) {
      files++;
      hash.update(`${st.size}\0`).update(readFileSync(abs));
    } else if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(join(rel, name));
  };
  walk('.');
  return { hash: hash.digest('hex'), files };
}

/** The same from inside a sandbox: paths and contents of every file under the given directories. */
const IN_SANDBOX_HASH =
  'for d in "$@"; do (cd "$d" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum; find . | sort); done | sha256sum | cut -c1-64';
const HASHED = ['/workspace/node_modules', '/home/user/.npm'];

/** Appends to every file it may write under node_modules and the caches, adds files, removes some. */
const POISON = `
for d in /workspace/node_modules /home/user/.npm /home/user/.cache/pip; do
  find "$d" -type f -writable -exec sh -c 'for f; do printf "pwned\\n" >> "$f"; done' _ {} + 2>/dev/null
  chmod -R a+w "$d" 2>/dev/null
  echo evil > "$d/evil.js" 2>/dev/null
done
rm -rf /workspace/node_modules/express/lib /workspace/node_modules/.bin 2>/dev/null
mkdir -p /home/user/.npm/_cacache && echo evil > /home/user/.npm/_cacache/index-evil
grep -rl pwned /workspace/node_modules /home/user/.npm 2>/dev/null | wc -l
`;

describe('template layers and caches a tenant cannot poison (real engine, real mounts, npm registry)', () => {
  let server: TestServer;
  const as = (owner: string) => ({ 'x-previewd-owner': owner });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const exec = async (id: string, script: string, args: string[] = []) => {
    const res = await server.app.provider.exec(id, {
      cmd: ['sh', '-c', script, 'sh', ...args],
      timeoutSec: 120,
    });
    return { code: res.exitCode, out: res.stdout.toString().trim(), err: res.stderr.toString() };
  };
  const createRunning = async (owner: string, body: Record<string, unknown>) => {
    const res = await server.call('POST', '/v1/sandboxes', body, as(owner));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await waitState(server, res.body.id, 'running', 120_000);
    return res.body.id as string;
  };

  it("a sandbox rewrites everything it can reach under node_modules and the caches; another tenant's sandbox finds every file as the build left it", async () => {
    // A cold template: previewd's own build fills the layer (and the host's download cache).
    const warm = await server.call('POST', '/v1/templates/express/warm');
    expect(warm.status, JSON.stringify(warm.body)).toBe(200);
    expect(warm.body.result).toBe('warmed');
    const key = readFileSync(join(server.dataDir, 'cache', 'templates', 'express', 'layer'), 'utf8').trim();
    const layer = join(server.dataDir, 'layers', key);
    // The download cache the build published as a layer (what every later sandbox mounts read-only).
    const npmKey = readFileSync(join(server.dataDir, 'cache', 'npm.layer'), 'utf8').trim();
    const npmCache = join(server.dataDir, 'layers', npmKey);
    const layerBefore = treeHash(layer);
    const cacheBefore = treeHash(npmCache);
    expect(layerBefore.files).toBeGreaterThan(100);
    expect(cacheBefore.files).toBeGreaterThan(10);

    // A reference sandbox, hashed from inside before anyone attacked.
    const ref = await createRunning('carol', { template: 'express' });
    const refHash = await exec(ref, IN_SANDBOX_HASH, HASHED);
    expect(refHash.code, refHash.err).toBe(0);

    const alice = await createRunning('alice', { template: 'express' });
    const attack = await exec(alice, POISON);
    // The attack reached the files: hundreds of them now carry its mark in alice's own view.
    expect(Number(attack.out.split('\n').at(-1))).toBeGreaterThan(100);
    const aliceHash = await exec(alice, IN_SANDBOX_HASH, HASHED);
    expect(aliceHash.out).not.toBe(refHash.out);
    expect((await exec(alice, 'tail -n1 /workspace/node_modules/express/package.json')).out).toBe('pwned');

    // The host's layer and shared cache are as the build left them, byte for byte and mode for mode.
    expect(treeHash(layer)).toEqual(layerBefore);
    expect(treeHash(npmCache)).toEqual(cacheBefore);
    // …and alice's writes are in her own upper layer, on her disk.
    const aliceUpper = join(server.dataDir, 'sandboxes', alice, 'disk', 'upper', 'node_modules');
    expect(readFileSync(join(aliceUpper, 'express', 'package.json'), 'utf8')).toContain('pwned');

    // Bob, another tenant, from the same template: every file as built, and the app serves.
    const bob = await createRunning('bob', { template: 'express' });
    const bobHash = await exec(bob, IN_SANDBOX_HASH, HASHED);
    expect(bobHash.out).toBe(refHash.out);
    const logs = await waitFor(
      async () => {
        const res = await server.call('GET', `/v1/sandboxes/${bob}/logs?tail=100`, undefined, as('bob'));
        const text = JSON.stringify(res.body);
        return text.includes('install skipped') ? text : undefined;
      },
      60_000,
      'bob to skip the install',
    );
    expect(logs).not.toContain('[previewd] install:');

    // The files API sees the merged view: the layer's files and the sandbox's own.
    const pkg = await server.call(
      'GET',
      `/v1/sandboxes/${bob}/files?path=node_modules/express/package.json`,
      undefined,
      as('bob'),
    );
    expect(pkg.status).toBe(200);
    expect(JSON.stringify(pkg.body)).not.toContain('pwned');

    // Only previewd's own build sandbox is ever read back into a layer.
    await expect(
      server.app.service.templates.build('express', alice, server.app.provider.files(alice).root),
    ).rejects.toThrow(/not previewd's build/);
  }, 600_000);

  it('delete unmounts the stack and the disk and detaches its loop device', async () => {
    const id = await createRunning('alice', { runtime: { start: 'exec sleep infinity' } });
    const base = join(server.dataDir, 'sandboxes', id);
    expect((await mountsUnder(base)).map((m) => m.fsType).sort()).toEqual([
      'ext4',
      'overlay',
      'overlay',
      'overlay',
    ]);
    const loops = execFileSync('losetup', ['-j', join(base, 'disk.img')]).toString();
    expect(loops).toMatch(/\/dev\/loop\d+/);
    expect((await server.call('DELETE', `/v1/sandboxes/${id}`, undefined, as('alice'))).status).toBe(204);
    expect(await mountsUnder(base)).toEqual([]);
    expect(existsSync(base)).toBe(false);
    expect(execFileSync('losetup', ['-a']).toString()).not.toContain(base);
  }, 120_000);
});

describe('disk quotas (real engine, loop-mounted ext4)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const sh = async (id: string, script: string) => {
    const res = await server.app.provider.exec(id, { cmd: ['sh', '-c', script], timeoutSec: 120 });
    return { code: res.exitCode, out: res.stdout.toString() + res.stderr.toString() };
  };

  it('refuses a diskMb above the maximum, and gives the default otherwise', async () => {
    const over = await server.call('POST', '/v1/sandboxes', { resources: { diskMb: 1024 * 1024 } });
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('resource_limit');
    const plain = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    expect(plain.status).toBe(201);
    expect(plain.body.resources.diskMb).toBe(1024);
    await server.call('DELETE', `/v1/sandboxes/${plain.body.id}`);
  });

  it('writing past diskMb fails with ENOSPC inside; the host lost at most diskMb; the sandbox keeps working', async () => {
    const diskMb = 128;
    const res = await server.call('POST', '/v1/sandboxes', {
      runtime: { start: 'exec sleep infinity' },
      resources: { diskMb, memoryMb: 256 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.id as string;
    await waitState(server, id, 'running');

    const big = await sh(id, `dd if=/dev/zero of=/workspace/big bs=1M count=${diskMb + 50} 2>&1`);
    expect(big.code).not.toBe(0);
    expect(big.out).toContain('No space left on device');
    // Everything the sandbox writes lands in its disk image, which never grows past diskMb.
    const image = statSync(join(server.dataDir, 'sandboxes', id, 'disk.img'));
    // (st_blocks also counts the host file system's extent blocks of the image: a few KiB.)
    expect(image.blocks * 512).toBeLessThanOrEqual((diskMb + 1) * 1024 * 1024);
    // (The host's free space is not compared: other work on this machine writes to the same file
    // system. The image's allocation above bounds what this sandbox can ever take from it.)

    // The home and the caches share the disk: full there too.
    const home = await sh(id, 'dd if=/dev/zero of=/home/user/more bs=1M count=8 2>&1');
    expect(home.out).toContain('No space left on device');
    // Deleting the file gives the room back.
    expect(
      (
        await sh(
          id,
          'rm -f /workspace/big /home/user/more && dd if=/dev/zero of=/workspace/ok bs=1M count=32 2>&1 && echo done',
        )
      ).out,
    ).toContain('done');
    const files = await server.call('GET', `/v1/sandboxes/${id}/files?path=ok`);
    expect(files.status).toBe(200);

    // /tmp is a tmpfs of a quarter of the memory limit (64 MB here); the root file system is read-only.
    const tmp = await sh(id, 'dd if=/dev/zero of=/tmp/big bs=1M count=80 2>&1');
    expect(tmp.out).toContain('No space left on device');
    const root = await sh(id, 'echo x > /big 2>&1; echo x > /usr/local/big 2>&1; echo x > /etc/big 2>&1');
    expect(root.out.match(/Read-only file system/g)?.length).toBe(3);
    expect(
      (await sh(id, 'rm -f /tmp/big; echo still > /workspace/alive && cat /workspace/alive')).out.trim(),
    ).toBe('still');
    await server.call('DELETE', `/v1/sandboxes/${id}`);
  }, 180_000);
});

describe('remount after kill -9 and after the mounts are gone (a reboot)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-layers-kill9-'));
  let server: ServerProcess;

  afterAll(async () => {
    server?.kill9();
    for (const c of await instanceContainers(dataDir))
      await docker.getContainer(c.Id).remove({ force: true });
    await releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const file = async (id: string, path: string) => {
    const res = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${path}`, {
      headers: { authorization: `Bearer ${(await import('../helpers/server.js')).TEST_KEY}` },
    });
    return { status: res.status, text: await res.text() };
  };
  const state = async (id: string) => (await server.call('GET', `/v1/sandboxes/${id}`)).state as string;

  it('keeps a running sandbox and its mounts across kill -9, and remounts a stopped one before starting it', async () => {
    server = new ServerProcess(dataDir, await freePort());
    await server.start();
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'keep.txt': 'kept' },
      runtime: { start: 'exec sleep infinity' },
      resources: { diskMb: 96 },
    });
    const id = created.id as string;
    await waitFor(async () => ((await state(id)) === 'running' ? true : undefined), 60_000, 'running');
    const base = join(dataDir, 'sandboxes', id);

    // kill -9: the kernel keeps the mounts; the new process finds them and the sandbox runs on.
    server.kill9();
    server = server.restarted();
    await server.start();
    expect(await state(id)).toBe('running');
    expect((await mountAt(join(base, 'workspace')))?.fsType).toBe('overlay');
    expect((await file(id, 'keep.txt')).text).toBe('kept');

    // A reboot: the container is gone from under it and every mount with it.
    server.kill9();
    const [container] = await instanceContainers(dataDir);
    await docker.getContainer(container!.Id).kill();
    for (const m of await mountsUnder(base)) await unmount(m.target);
    expect(await mountsUnder(base)).toEqual([]);
    // The bare mount point holds none of the sandbox's files.
    expect(existsSync(join(base, 'workspace', 'keep.txt'))).toBe(false);

    server = server.restarted();
    await server.start();
    // The reconciler remounted the stack before anything started: files are back, the disk too.
    await waitFor(
      async () => ((await mountAt(join(base, 'workspace'))) ? true : undefined),
      30_000,
      'remount',
    );
    expect((await mountAt(join(base, 'disk')))?.fsType).toBe('ext4');
    expect((await file(id, 'keep.txt')).text).toBe('kept');
    await waitFor(async () => ((await state(id)) === 'stopped' ? true : undefined), 30_000, 'stopped');
    await server.call('POST', `/v1/sandboxes/${id}/start`);
    await waitFor(async () => ((await state(id)) === 'running' ? true : undefined), 60_000, 'running again');
    const exec = await server.call('POST', `/v1/sandboxes/${id}/exec`, {
      cmd: [
        'sh',
        '-c',
        'cat /workspace/keep.txt; dd if=/dev/zero of=/workspace/big bs=1M count=200 2>&1 | grep -c "No space"',
      ],
    });
    expect(exec.stdout).toBe('kept1\n');
    await server.call('DELETE', `/v1/sandboxes/${id}`);
    expect(await mountsUnder(base)).toEqual([]);
  }, 240_000);
});
