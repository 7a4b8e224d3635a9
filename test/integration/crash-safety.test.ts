import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { releaseMounts } from '../helpers/mounts.js';
import { waitFor } from '../helpers/server.js';
import { docker, freePort, instanceContainers, ServerProcess } from '../helpers/server-process.js';

describe('crash safety: kill -9 in the middle of a create', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-crash-'));
  let server: ServerProcess;

  afterAll(async () => {
    server?.kill9();
    for (const c of await instanceContainers(dataDir))
      await docker.getContainer(c.Id).remove({ force: true });
    await releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('restarts with no orphan container and no sandbox stuck in creating or starting', async () => {
    server = new ServerProcess(dataDir, await freePort());
    await server.start();
    // Fire several creates and kill the process the moment the first one is answered. A create
    // answers once its row is written and before its container is provisioned in the background,
    // so the kill lands mid-create: that row is still `creating`, and the other creates are
    // somewhere between their workspace and their container. (The kill waits for that answer, not
    // for a fixed time: how long a create takes to answer depends on the host's load.)
    const created: string[] = [];
    let firstAnswer = (): void => undefined;
    const answered = new Promise<void>((resolve) => {
      firstAnswer = resolve;
    });
    const creates = Array.from({ length: 4 }, (_, i) =>
      server
        .call('POST', '/v1/sandboxes', {
          files: { 'keep.txt': `file ${i}` },
          runtime: { start: 'exec sleep infinity' },
        })
        .then((sb) => {
          if (typeof sb?.id !== 'string') return;
          created.push(sb.id);
          firstAnswer();
        })
        .catch(() => undefined),
    );
    await Promise.race([answered, Promise.allSettled(creates)]);
    server.kill9();
    await Promise.allSettled(creates);
    expect(created.length).toBeGreaterThan(0);
    // The kill really came mid-create: some rows were left half-way.
    const db = new SqliteStore(join(dataDir, 'previewd.db'));
    const halfway = await db.listSandboxes({ states: ['creating', 'starting'] });
    await db.close();
    expect(halfway.length).toBeGreaterThan(0);

    server = new ServerProcess(dataDir, server.port);
    await server.start();
    const settled = await waitFor(
      async () => {
        const { sandboxes } = await server.call('GET', '/v1/sandboxes');
        return sandboxes.every((s: { state: string }) => s.state === 'running') ? sandboxes : undefined;
      },
      30_000,
      'every sandbox running after restart',
    );
    // Every create the client saw answered is there, running, with its files.
    const ids = settled.map((s: { id: string }) => s.id);
    for (const id of created) expect(ids).toContain(id);
    for (const id of ids) {
      const keep = readFileSync(join(dataDir, 'sandboxes', id, 'workspace', 'keep.txt'), 'utf8');
      expect(keep).toMatch(/^file \d$/);
    }
    // No orphan: every container of this instance belongs to a live row, and each row has exactly one container.
    await waitFor(
      async () => {
        const containers = await instanceContainers(dataDir);
        const owners = containers.map((c) => c.Labels['previewd.sandbox']);
        return owners.length === ids.length && owners.every((o) => ids.includes(o)) ? true : undefined;
      },
      15_000,
      'no orphan containers',
    );

    // Delete everything, kill -9 again right away, and restart: nothing is left behind.
    await Promise.all(ids.map((id: string) => server.call('DELETE', `/v1/sandboxes/${id}`)));
    server.kill9();
    server = new ServerProcess(dataDir, server.port);
    await server.start();
    await waitFor(
      async () => ((await instanceContainers(dataDir)).length === 0 ? true : undefined),
      15_000,
      'no containers',
    );
    expect((await server.call('GET', '/v1/sandboxes')).sandboxes).toEqual([]);
  });

  it('adopts a container killed from outside: the row follows the engine', async () => {
    const sb = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    await waitFor(async () =>
      (await server.call('GET', `/v1/sandboxes/${sb.id}`)).state === 'running' ? true : undefined,
    );
    await docker.getContainer(`previewd-${sb.id}`).kill();
    const stopped = await waitFor(async () => {
      const now = await server.call('GET', `/v1/sandboxes/${sb.id}`);
      return now.state === 'stopped' ? now : undefined;
    });
    expect(stopped.error?.code).toBe('app_exited');
    await docker.getContainer(`previewd-${sb.id}`).remove({ force: true });
    const restarted = await server.call('POST', `/v1/sandboxes/${sb.id}/start`);
    expect(restarted.state).toBe('running');
    await server.call('DELETE', `/v1/sandboxes/${sb.id}`);
  });
});
