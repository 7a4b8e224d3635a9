import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { startTestServer, type TestServer, waitState } from '../helpers/server.js';

const docker = createDockerClient({ docker: { network: 'previewd' } as never });

/**
 * Each sandbox has a uid of its own (docker.uidRange): its processes run as it, its workspace,
 * home and status folder on the host belong to it, and its container mounts only its own folders
 * (plus read-only shared ones), so there is no host path through which one sandbox could read
 * another's files.
 */
describe('a separate identity per sandbox (real engine)', () => {
  let server: TestServer;
  let a: string;
  let b: string;

  const exec = async (id: string, script: string) => {
    const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: script });
    return res.body as { exitCode: number; stdout: string; stderr: string };
  };
  const uidOf = async (id: string) => (await server.app.store.getSandbox(id))!.identity!.uid;
  const sandboxDir = (id: string) => join(server.dataDir, 'sandboxes', id);

  beforeAll(async () => {
    server = await startTestServer();
    const create = async () => {
      const res = await server.call('POST', '/v1/sandboxes', {
        files: { 'secret.txt': `secret of ${Math.random()}` },
        runtime: { start: 'exec sleep infinity' },
      });
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    [a, b] = [await create(), await create()];
    await Promise.all([waitState(server, a, 'running'), waitState(server, b, 'running')]);
  }, 180_000);

  afterAll(async () => {
    await server?.close();
  });

  it('runs each sandbox as its own uid from the range, with a home of its own and a user name', async () => {
    const [ua, ub] = [await uidOf(a), await uidOf(b)];
    expect(ua).not.toBe(ub);
    for (const [id, uid] of [
      [a, ua],
      [b, ub],
    ] as const) {
      expect(uid).toBeGreaterThanOrEqual(100_000);
      expect(uid).toBeLessThan(150_000);
      const res = await exec(id, 'id -u; id -g; whoami; echo $HOME; touch ~/probe && stat -c %u ~/probe');
      expect(res).toMatchObject({ exitCode: 0 });
      expect(res.stdout.split('\n')).toEqual([
        String(uid),
        String(uid),
        'user',
        '/home/user',
        String(uid),
        '',
      ]);
    }
  });

  it("owns its workspace, home and status folder on the host; another sandbox's are out of reach", async () => {
    for (const id of [a, b]) {
      const uid = await uidOf(id);
      expect(statSync(join(sandboxDir(id), 'workspace')).uid).toBe(uid);
      expect(statSync(join(sandboxDir(id), 'workspace', 'secret.txt')).uid).toBe(uid);
      // The host folders behind the home and the supervisor's status folder, wherever storage keeps them.
      const info = await docker.getContainer(`previewd-${id}`).inspect();
      const source = (dest: string) => info.Mounts.find((m) => m.Destination === dest)?.Source;
      for (const dest of ['/workspace', '/home/user', '/run/previewd']) {
        expect(source(dest), dest).toBeDefined();
        expect(statSync(source(dest)!).uid, dest).toBe(uid);
      }
    }
    // A knows where B's file lies on the host: nothing is mounted there in A.
    const theirs = join(sandboxDir(b), 'workspace', 'secret.txt');
    const tried = await exec(a, `cat ${theirs} || ls ${sandboxDir(b)} || ls ${server.dataDir}`);
    expect(tried.exitCode).not.toBe(0);
    expect(tried.stdout).not.toContain('secret of');
    // The positive control: B reads its own file.
    expect((await exec(b, 'cat secret.txt')).stdout).toContain('secret of');
  });

  it("mounts only the sandbox's own folders writable, and nothing of another sandbox", async () => {
    for (const [own, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const info = await docker.getContainer(`previewd-${own}`).inspect();
      expect(info.Config.User).toBe(`${await uidOf(own)}:${await uidOf(own)}`);
      const binds = info.Mounts.filter((m) => m.Type === 'bind');
      expect(binds.map((m) => m.Destination)).toContain('/workspace');
      for (const m of binds) {
        expect(m.Source.startsWith(`${sandboxDir(other)}/`), `${m.Source} → ${m.Destination}`).toBe(false);
        if (m.RW) {
          expect(m.Source.startsWith(`${sandboxDir(own)}/`), `${m.Source} → ${m.Destination}`).toBe(true);
        }
      }
      // No volume, no other kind of mount that could be shared.
      expect(info.Mounts.filter((m) => m.Type === 'volume')).toEqual([]);
    }
  });

  it('keeps its uid across a stop and start, and when the container is lost and made again', async () => {
    const uid = await uidOf(a);
    expect((await server.call('POST', `/v1/sandboxes/${a}/stop`)).body.state).toBe('stopped');
    expect((await server.call('POST', `/v1/sandboxes/${a}/start`)).body.state).toBe('running');
    expect((await exec(a, 'id -u')).stdout.trim()).toBe(String(uid));

    await docker.getContainer(`previewd-${a}`).remove({ force: true });
    await waitState(server, a, 'error');
    expect((await server.call('POST', `/v1/sandboxes/${a}/start`)).body.state).toBe('running');
    expect((await exec(a, 'id -u')).stdout.trim()).toBe(String(uid));
    expect(statSync(join(sandboxDir(a), 'workspace', 'secret.txt')).uid).toBe(uid);
  }, 120_000);
});
