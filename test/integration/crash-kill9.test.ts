import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { releaseMounts } from '../helpers/mounts.js';
import { waitFor } from '../helpers/server.js';
import { docker, freePort, instanceContainers, ServerProcess } from '../helpers/server-process.js';

const app = `require('http').createServer((q, s) => s.end('ok')).listen(3000);`;
const TRANSITIONAL = ['creating', 'starting', 'stopping'];
type Op = 'create' | 'stop' | 'wake' | 'delete';

describe('crash safety: kill -9 at 20 random moments during create, stop, wake and delete', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'previewd-kill9-'));
  let server: ServerProcess;
  /** Content of keep.txt of every sandbox whose create was answered. */
  const written = new Map<string, string>();
  let n = 0;

  afterAll(async () => {
    server?.kill9();
    for (const c of await instanceContainers(dataDir))
      await docker.getContainer(c.Id).remove({ force: true });
    await releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const list = async (): Promise<{ id: string; state: string }[]> =>
    (await server.call('GET', '/v1/sandboxes?limit=500')).sandboxes;

  const create = () => {
    const content = `file ${n++}`;
    return server
      .call('POST', '/v1/sandboxes', {
        files: { 'keep.txt': content, 'server.js': app },
        runtime: { start: 'node server.js', port: 3000 },
      })
      .then((sb) => {
        if (sb?.id) written.set(sb.id, content);
      });
  };

  const wake = (id: string) =>
    request(`${server.edgeUrl}/`, { headers: { host: `3000-${id}.preview.localhost` } }).then((r) =>
      r.body.text(),
    );

  /** Waits until the restarted previewd has settled every sandbox, then checks the promises. */
  async function checkInvariants(where: string): Promise<void> {
    const rows = await waitFor(
      async () => {
        const all = await list();
        return all.every((s) => !TRANSITIONAL.includes(s.state)) ? all : undefined;
      },
      30_000,
      `${where}: no sandbox in a transitional state`,
    );
    expect(
      rows.filter((r) => r.state === 'error'),
      where,
    ).toEqual([]);
    const live = new Set(rows.map((r) => r.id));
    // No workspace file lost: every sandbox still has what its create wrote.
    for (const row of rows) {
      const keep = readFileSync(join(dataDir, 'sandboxes', row.id, 'workspace', 'keep.txt'), 'utf8');
      if (written.has(row.id)) expect(keep, where).toBe(written.get(row.id));
      else expect(keep, where).toMatch(/^file \d+$/);
    }
    for (const id of written.keys()) if (!live.has(id)) written.delete(id);
    // No orphan: containers and workspaces belong to live sandboxes, one container each.
    await waitFor(
      async () => {
        const owners = (await instanceContainers(dataDir)).map((c) => c.Labels['previewd.sandbox']!);
        const dirs = existsSync(join(dataDir, 'sandboxes')) ? readdirSync(join(dataDir, 'sandboxes')) : [];
        const ok =
          owners.length === live.size &&
          owners.every((o) => live.has(o)) &&
          dirs.length === live.size &&
          dirs.every((d) => live.has(d));
        return ok ? true : undefined;
      },
      20_000,
      `${where}: containers and workspaces match the sandboxes`,
    );
  }

  it('restarts every time with no orphan, nothing stuck half-way, no file lost', async () => {
    server = new ServerProcess(dataDir, await freePort(), await freePort());
    await server.start();
    await Promise.all([create(), create()]);
    await checkInvariants('seed');

    const ops: Op[] = ['create', 'stop', 'wake', 'delete'];
    let halfway = 0;
    for (let i = 0; i < 20; i++) {
      let op = ops[i % 4]!;
      const rows = await list();
      const running = rows.filter((r) => r.state === 'running');
      const stopped = rows.filter((r) => r.state === 'stopped');
      if (op === 'stop' && running.length === 0) op = 'create';
      if (op === 'wake' && stopped.length === 0) {
        if (running.length === 0) op = 'create';
        else await server.call('POST', `/v1/sandboxes/${running[0]!.id}/stop`);
      }
      if (op === 'delete' && rows.length === 0) op = 'create';
      const pick = (from: { id: string }[]) => from[Math.floor(Math.random() * from.length)]!.id;
      const delayMs = Math.floor(Math.random() * 600);
      const where = `kill ${i + 1} during ${op} after ${delayMs} ms`;
      let work: Promise<unknown>;
      if (op === 'create') work = create();
      else if (op === 'stop') work = server.call('POST', `/v1/sandboxes/${pick(running)}/stop`);
      else if (op === 'wake') {
        const asleep = (await list()).filter((r) => r.state === 'stopped');
        work = wake(pick(asleep));
      } else work = server.call('DELETE', `/v1/sandboxes/${pick(rows)}`);
      await new Promise((r) => setTimeout(r, delayMs));
      server.kill9();
      await work.catch(() => undefined);
      // How many kills landed with an operation half-way (what the restart must finish).
      const db = new SqliteStore(join(dataDir, 'previewd.db'));
      if ((await db.listSandboxes({ states: TRANSITIONAL as never })).length > 0) halfway++;
      await db.close();
      server = server.restarted();
      await server.start();
      await checkInvariants(where);
    }

    expect(halfway).toBeGreaterThan(0);
    // Then everything goes, leaving nothing behind.
    const rows = await list();
    await Promise.all(rows.map((r) => server.call('DELETE', `/v1/sandboxes/${r.id}`)));
    await waitFor(
      async () => ((await instanceContainers(dataDir)).length === 0 ? true : undefined),
      15_000,
      'no containers',
    );
  }, 600_000);
});
