import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { FrozenLayers } from '../../src/snapshots/layer-collection.js';
import { LayerStore } from '../../src/workspaces/layers.js';
import { edge, previewHostOf, upstreamApp } from '../helpers/edge.js';
import { releaseMounts } from '../helpers/mounts.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';
import { freePort, ServerProcess } from '../helpers/server-process.js';

const as = (owner: string): Record<string, string> => (owner ? { 'x-previewd-owner': owner } : {});

describe('snapshots and fork (real engine, real overlay stacks)', () => {
  let server: TestServer;
  const call = (owner: string, method: string, path: string, body?: unknown) =>
    server.call(method, path, body, as(owner));
  const sh = async (owner: string, id: string, script: string) => {
    const res = await call(owner, 'POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', script] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { exitCode: number; stdout: string; stderr: string };
  };
  const read = async (owner: string, id: string, path: string) => {
    const res = await call(owner, 'GET', `/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`);
    return res.status === 200 ? String(res.body) : `(${res.status})`;
  };
  const create = async (owner: string, body: Record<string, unknown>) => {
    const res = await call(owner, 'POST', '/v1/sandboxes', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await waitState(server, res.body.id, 'running');
    return res.body.id as string;
  };
  const snapshot = async (owner: string, id: string, body: Record<string, unknown> = {}) => {
    const res = await call(owner, 'POST', `/v1/sandboxes/${id}/snapshots`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const layerDir = (key: string) => join(server.dataDir, 'layers', key);
  /** One pass of the layer collection, as the server runs it after each deletion. */
  const collectNow = () =>
    new FrozenLayers({
      dataDir: server.dataDir,
      store: server.app.store,
      layers: new LayerStore(server.dataDir),
      storage: (server.app.provider as DockerProvider).storage,
      nodeId: () => server.app.service.nodeId,
      log: pino({ level: 'silent' }),
    }).collect();

  beforeAll(async () => {
    server = await startTestServer({ 'quotas.maxSnapshotsPerOwner': 3 });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  }, 120_000);

  let base: string;
  let first: any;
  let fromA: string;
  let fromB: string;
  let second: any;
  let deeper: string;

  it('a sandbox made from a snapshot has its files; writes in it reach neither the snapshotted sandbox nor another made from it', async () => {
    base = await create('alice', {
      files: { 'a.txt': 'one', 'dir/b.txt': 'two', 'dir2/old.txt': 'old' },
      runtime: { start: 'sleep infinity' },
    });
    // Written from inside (the sandbox's own uid, its upper layer), not only through the files API.
    await sh('alice', base, 'echo three > c.txt && mkdir -p deep/er && echo x > deep/er/x.txt');
    first = await snapshot('alice', base, { name: 'start', labels: { kind: 'base' } });
    expect(first).toMatchObject({
      sandboxId: base,
      name: 'start',
      labels: { kind: 'base' },
      owner: 'alice',
      node: 'local',
      runtime: { start: 'sleep infinity' },
    });
    expect(first.sizeMb).toBeGreaterThanOrEqual(1);
    // The snapshotted sandbox runs on (it was paused for the copy only).
    expect((await call('alice', 'GET', `/v1/sandboxes/${base}`)).body.state).toBe('running');
    await sh('alice', base, 'echo after > after.txt');

    fromA = await create('alice', { snapshot: first.id });
    fromB = await create('alice', { snapshot: first.id });
    const sb = (await call('alice', 'GET', `/v1/sandboxes/${fromA}`)).body;
    expect(sb.runtime.start).toBe('sleep infinity');
    for (const id of [fromA, fromB]) {
      expect(await read('alice', id, 'a.txt')).toBe('one');
      expect(await read('alice', id, 'c.txt')).toBe('three\n');
      expect(await read('alice', id, 'deep/er/x.txt')).toBe('x\n');
      expect(await read('alice', id, 'after.txt')).toBe('(404)');
    }
    // Changes in one: a write, a delete (a whiteout), a directory replaced (an opaque directory).
    const changed = await sh(
      'alice',
      fromA,
      'echo changed > a.txt && rm dir/b.txt && rm -rf dir2 && mkdir dir2 && echo new > dir2/new.txt && id -u',
    );
    expect(changed.exitCode, changed.stderr).toBe(0);
    expect(await read('alice', fromA, 'a.txt')).toBe('changed\n');
    expect(await read('alice', fromB, 'a.txt')).toBe('one');
    expect(await read('alice', fromB, 'dir/b.txt')).toBe('two');
    expect(await read('alice', fromB, 'dir2/old.txt')).toBe('old');
    expect(await read('alice', base, 'a.txt')).toBe('one');
    expect(await read('alice', base, 'dir/b.txt')).toBe('two');

    // A snapshot of a sandbox made from a snapshot: one more layer, whiteouts and opaque
    // directories of the middle layer honoured.
    second = await snapshot('alice', fromA);
    expect(second.id).not.toBe(first.id);
    deeper = await create('alice', { snapshot: second.id });
    expect(await read('alice', deeper, 'a.txt')).toBe('changed\n');
    expect(await read('alice', deeper, 'dir/b.txt')).toBe('(404)');
    expect(await read('alice', deeper, 'dir2/old.txt')).toBe('(404)');
    expect(await read('alice', deeper, 'dir2/new.txt')).toBe('new\n');
    expect(await read('alice', deeper, 'c.txt')).toBe('three\n');

    const list = await call('alice', 'GET', '/v1/snapshots');
    expect(list.body.snapshots.map((s: any) => s.id)).toEqual([second.id, first.id]);
    expect((await call('alice', 'GET', `/v1/snapshots?sandboxId=${base}`)).body.snapshots).toHaveLength(1);
  }, 180_000);

  it('keeps every snapshot route of one tenant away from another', async () => {
    const notFound = { error: { code: 'snapshot_not_found' } };
    const get = await call('bob', 'GET', `/v1/snapshots/${first.id}`);
    expect([get.status, get.body]).toMatchObject([404, notFound]);
    const missing = await call('bob', 'GET', '/v1/snapshots/01jzzzzzzzzzzzzzzzzzzzzzzz');
    expect(missing.body.error.message.replace(/\w{26}/, 'ID')).toBe(
      get.body.error.message.replace(/\w{26}/, 'ID'),
    );
    const del = await call('bob', 'DELETE', `/v1/snapshots/${first.id}`);
    expect([del.status, del.body]).toMatchObject([404, notFound]);
    const made = await call('bob', 'POST', '/v1/sandboxes', { snapshot: first.id });
    expect([made.status, made.body]).toMatchObject([404, notFound]);
    const snap = await call('bob', 'POST', `/v1/sandboxes/${base}/snapshots`, {});
    expect([snap.status, snap.body]).toMatchObject([404, { error: { code: 'sandbox_not_found' } }]);
    const fork = await call('bob', 'POST', `/v1/sandboxes/${base}/fork`, {});
    expect([fork.status, fork.body]).toMatchObject([404, { error: { code: 'sandbox_not_found' } }]);
    expect((await call('bob', 'GET', '/v1/snapshots')).body.snapshots).toEqual([]);
    // Still there for its owner, and for an admin acting for no owner.
    expect((await call('alice', 'GET', `/v1/snapshots/${first.id}`)).status).toBe(200);
    expect((await server.call('GET', `/v1/snapshots/${first.id}`)).status).toBe(200);
    // A create from a snapshot goes to the node keeping it: naming another node cannot be met,
    // and a snapshot kept on another node is placed there (no such node here).
    const elsewhere = await call('alice', 'POST', '/v1/sandboxes', {
      snapshot: first.id,
      placement: { node: 'n-other' },
    });
    expect([elsewhere.status, elsewhere.body.error.code]).toEqual([409, 'placement_unsatisfiable']);
    const row = (await server.app.store.getSnapshot(first.id))!;
    const remote = { ...row, id: '01jzzzzzzzzzzzzzzzzzzzzzz0', node: 'n-2' };
    await server.app.store.insertSnapshot(remote, 100);
    const placed = await call('alice', 'POST', '/v1/sandboxes', { snapshot: remote.id });
    expect([placed.status, placed.body.error.code]).toEqual([409, 'placement_unsatisfiable']);
    await server.app.store.deleteSnapshot(remote.id);
    // Template and snapshot together are refused before anything is made.
    const both = await call('alice', 'POST', '/v1/sandboxes', { snapshot: first.id, template: 'static' });
    expect([both.status, both.body.error.code]).toEqual([400, 'invalid_request']);
  });

  it('deletes a snapshot in use at once and frees its layer when the last sandbox using it is gone', async () => {
    const rows = await server.app.store.listSnapshots({ owner: 'alice' });
    const firstLayer = rows.find((r) => r.id === first.id)!.layers[0]!;
    const secondLayer = rows.find((r) => r.id === second.id)!.layers[0]!;
    expect(rows.find((r) => r.id === second.id)!.layers).toEqual([secondLayer, firstLayer]);
    const del = await call('alice', 'DELETE', `/v1/snapshots/${first.id}`);
    expect(del.status).toBe(200);
    expect((await call('alice', 'GET', `/v1/snapshots/${first.id}`)).status).toBe(404);
    const again = await call('alice', 'POST', '/v1/sandboxes', { snapshot: first.id });
    expect(again.body.error.code).toBe('snapshot_not_found');
    // Sandboxes made from it keep their files, the layer stays.
    expect(existsSync(layerDir(firstLayer))).toBe(true);
    expect(await read('alice', fromB, 'c.txt')).toBe('three\n');
    await call('alice', 'DELETE', `/v1/snapshots/${second.id}`);
    for (const id of [fromA, fromB])
      expect((await call('alice', 'DELETE', `/v1/sandboxes/${id}`)).status).toBe(204);
    // `deeper` still stacks both layers: a collection (as after every delete) keeps them.
    expect(await collectNow()).toEqual([]);
    expect(existsSync(layerDir(firstLayer))).toBe(true);
    expect(existsSync(layerDir(secondLayer))).toBe(true);
    expect(await read('alice', deeper, 'c.txt')).toBe('three\n');
    expect((await call('alice', 'DELETE', `/v1/sandboxes/${deeper}`)).status).toBe(204);
    await waitFor(
      async () =>
        !existsSync(layerDir(firstLayer)) && !existsSync(layerDir(secondLayer)) ? true : undefined,
      20_000,
      'the layers freed',
    );
  }, 120_000);

  it('counts snapshots against the owner quota; the same files make the same layer', async () => {
    const id = await create('carol', { files: { 'q.txt': 'q' }, runtime: { start: 'sleep infinity' } });
    const taken = [];
    for (let i = 0; i < 3; i++) taken.push(await snapshot('carol', id, { name: `n${i}` }));
    // Nothing changed in between: one layer for the three.
    const layers = await Promise.all(
      taken.map(async (s) => (await server.app.store.getSnapshot(s.id))!.layers[0]),
    );
    expect(new Set(layers).size).toBe(1);
    const over = await call('carol', 'POST', `/v1/sandboxes/${id}/snapshots`, {});
    expect([over.status, over.body.error.code]).toEqual([429, 'snapshot_quota_exceeded']);
    expect(over.body.error.hint).toContain('PREVIEWD_QUOTA_MAX_SNAPSHOTS');
    // Another owner is not counted with carol.
    expect((await call('dave', 'GET', '/v1/snapshots')).body.snapshots).toEqual([]);
    expect((await call('carol', 'DELETE', `/v1/snapshots/${taken[0].id}`)).status).toBe(200);
    await snapshot('carol', id);
    // Bounds: a name too long, an unknown field, a label key out of rule.
    for (const body of [{ name: 'x'.repeat(129) }, { nope: 1 }, { labels: { 'a b': 'c' } }]) {
      const res = await call('carol', 'POST', `/v1/sandboxes/${id}/snapshots`, body);
      expect([res.status, res.body.error.code]).toEqual([400, 'invalid_request']);
    }
    await call('carol', 'DELETE', `/v1/sandboxes/${id}`);
  }, 120_000);

  it('previewd snapshot, snapshots ls|rm and fork (the CLI)', async () => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'src/cli/main.ts', ...args],
          { env: { ...clean, NO_COLOR: '1', PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY } },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        );
      });
    const json = async (...args: string[]) => {
      const res = await cli(...args, '--json');
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout);
    };
    const sb = await server.call('POST', '/v1/sandboxes', {
      files: { 'c.txt': 'cli' },
      runtime: { start: 'sleep infinity' },
    });
    await waitState(server, sb.body.id, 'running');
    const snap = await json('snapshot', sb.body.id, '--name', 'from-cli', '--label', 'via=cli');
    expect(snap).toMatchObject({ sandboxId: sb.body.id, name: 'from-cli', labels: { via: 'cli' } });
    const listed = await json('snapshots', 'ls', '--sandbox', sb.body.id);
    expect(listed.map((s: any) => s.id)).toEqual([snap.id]);
    const plain = await cli('snapshots', 'ls');
    expect(plain.stdout).toContain('from-cli');
    const fork = await json('fork', sb.body.id);
    await waitState(server, fork.id, 'running');
    expect(await read('', fork.id, 'c.txt')).toBe('cli');
    expect(await json('snapshots', 'rm', snap.id)).toEqual({ deleted: [snap.id] });
    const gone = await cli('snapshots', 'rm', snap.id);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('snapshot_not_found');
    for (const id of [sb.body.id, fork.id]) await server.call('DELETE', `/v1/sandboxes/${id}`);
  }, 120_000);

  it('the Python SDK: snapshot, create from it, fork, list, delete', async () => {
    const root = join(import.meta.dirname, '..', '..');
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        'python3',
        ['-m', 'unittest', '-v', 'test_snapshots'],
        {
          cwd: join(root, 'packages/sdk-python/tests'),
          env: {
            ...process.env,
            PYTHONPATH: join(root, 'packages/sdk-python/src'),
            PYTHONDONTWRITEBYTECODE: '1',
            PREVIEWD_URL: server.url,
            PREVIEWD_API_KEY: TEST_KEY,
          },
          timeout: 120_000,
        },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            output: `${stdout}${stderr}`,
          }),
      );
    });
    expect(code, output).toBe(0);
    expect(output).toMatch(/test_snapshot_create_from_it_fork_and_delete .*\.\.\. ok/);
  }, 150_000);

  it('forks a running app: the fork serves its preview from the files as they were, its app started fresh', async () => {
    const app = await create('erin', {
      files: { 'server.js': upstreamApp },
      runtime: { start: 'node server.js', port: 3000 },
    });
    const answers = async (id: string) =>
      waitFor(
        async () => {
          const res = await edge(server, previewHostOf(id), '/echo');
          const body = await res.body.text();
          return res.statusCode === 200 ? JSON.parse(body) : undefined;
        },
        30_000,
        `preview of ${id}`,
      );
    expect((await answers(app)).sandbox).toBe(app);
    await sh('erin', app, 'echo forked-state > state.txt');
    const t0 = performance.now();
    const res = await call('erin', 'POST', `/v1/sandboxes/${app}/fork`, { labels: { fork: 'yes' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const fork = res.body.id as string;
    const tAnswer = performance.now();
    const echoed = await answers(fork);
    const t1 = performance.now();
    console.log(
      `fork → 201 in ${Math.round(tAnswer - t0)} ms; fork → preview answers in ${Math.round(t1 - t0)} ms`,
    );
    expect(echoed.sandbox).toBe(fork);
    expect(res.body).toMatchObject({
      owner: 'erin',
      labels: { fork: 'yes' },
      runtime: { start: 'node server.js' },
    });
    expect(await read('erin', fork, 'state.txt')).toBe('forked-state\n');
    // The fork's writes stay its own; no snapshot row is left behind.
    await sh('erin', fork, 'echo mine > state.txt');
    expect(await read('erin', app, 'state.txt')).toBe('forked-state\n');
    expect((await call('erin', 'GET', '/v1/snapshots')).body.snapshots).toEqual([]);
    expect((await answers(app)).sandbox).toBe(app);
    // Its frozen layer goes with it.
    const stack = await server.app.service
      .get(fork)
      .then(() =>
        import('node:fs').then((fs) =>
          JSON.parse(fs.readFileSync(join(server.dataDir, 'sandboxes', fork, 'stack.json'), 'utf8')),
        ),
      );
    const key = stack.layers[0] as string;
    expect(existsSync(layerDir(key))).toBe(true);
    await call('erin', 'DELETE', `/v1/sandboxes/${fork}`);
    await waitFor(async () => (!existsSync(layerDir(key)) ? true : undefined), 20_000, 'fork layer freed');
    await call('erin', 'DELETE', `/v1/sandboxes/${app}`);
  }, 180_000);

  it('forks an app whose workspace holds a node_modules-sized tree (12 000 files, 48 MB) and measures it', async () => {
    const app = await create('erin', {
      files: { 'server.js': upstreamApp },
      runtime: { start: 'node server.js', port: 3000 },
    });
    // What an installed Vite project's node_modules looks like to the copy: many small files.
    const made = await sh(
      'erin',
      app,
      `node -e 'const fs=require("fs");const b=Buffer.alloc(4096,97);for(let d=0;d<400;d++){const p="node_modules/pkg"+d+"/lib";fs.mkdirSync(p,{recursive:true});for(let f=0;f<30;f++)fs.writeFileSync(p+"/f"+f+".js",b)}' && du -sm node_modules | cut -f1`,
    );
    expect(made.exitCode, made.stderr).toBe(0);
    const t0 = performance.now();
    const res = await call('erin', 'POST', `/v1/sandboxes/${app}/fork`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const t201 = performance.now();
    const fork = res.body.id as string;
    await waitFor(
      async () => ((await edge(server, previewHostOf(fork), '/echo')).statusCode === 200 ? true : undefined),
      30_000,
      `preview of ${fork}`,
    );
    const t1 = performance.now();
    console.log(
      `fork of a ${made.stdout.trim()} MB / 12 000-file workspace: → 201 in ${Math.round(t201 - t0)} ms; → preview answers in ${Math.round(t1 - t0)} ms`,
    );
    expect(await read('erin', fork, 'node_modules/pkg399/lib/f29.js')).toHaveLength(4096);
    for (const id of [fork, app]) await call('erin', 'DELETE', `/v1/sandboxes/${id}`);
  }, 180_000);
});

describe('snapshots survive a restart of previewd', () => {
  let proc: ServerProcess;
  let dataDir: string;
  const headers = { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'previewd-snap-'));
    proc = new ServerProcess(dataDir, await freePort());
    await proc.start();
  }, 120_000);
  afterAll(async () => {
    for (const s of (await proc.call('GET', '/v1/sandboxes').catch(() => ({ sandboxes: [] }))).sandboxes ??
      []) {
      await proc.call('DELETE', `/v1/sandboxes/${s.id}`).catch(() => undefined);
    }
    proc.child?.kill('SIGTERM');
    await new Promise((r) => (proc.child?.exitCode !== null ? r(undefined) : proc.child?.once('exit', r)));
    await releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  const running = (id: string) =>
    waitFor(
      async () => ((await proc.call('GET', `/v1/sandboxes/${id}`)).state === 'running' ? true : undefined),
      60_000,
      `${id} running`,
    );

  it('lists and creates from a snapshot taken before a SIGKILL', async () => {
    const sb = await proc.call('POST', '/v1/sandboxes', {
      files: { 'kept.txt': 'kept' },
      runtime: { start: 'sleep infinity' },
    });
    await running(sb.id);
    const snap = await proc.call('POST', `/v1/sandboxes/${sb.id}/snapshots`, { name: 'before' });
    expect(snap.name).toBe('before');
    await proc.call('DELETE', `/v1/sandboxes/${sb.id}`);
    proc.kill9();
    await new Promise((r) => (proc.child?.exitCode !== null ? r(undefined) : proc.child?.once('exit', r)));
    proc = proc.restarted();
    await proc.start();
    expect(await proc.call('GET', `/v1/snapshots/${snap.id}`)).toMatchObject({ id: snap.id, name: 'before' });
    const made = await proc.call('POST', '/v1/sandboxes', { snapshot: snap.id });
    expect(made.id, JSON.stringify(made)).toBeDefined();
    await running(made.id);
    const res = await fetch(`${proc.url}/v1/sandboxes/${made.id}/files?path=kept.txt`, { headers });
    expect(await res.text()).toBe('kept');
  }, 180_000);
});
