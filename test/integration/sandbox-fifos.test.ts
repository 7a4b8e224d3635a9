import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readyzSeen, whileWatched } from '../helpers/readyz-watch.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

/**
 * FIFOs (and links) that code inside a sandbox puts where previewd reads: each read must fail with a
 * clear code for that sandbox alone, at once, while /readyz and another sandbox's files keep
 * answering. A FIFO opened the old way blocked one of libuv's four threads for good; four of them
 * stopped every file operation of the process.
 */
describe('FIFOs where previewd reads sandbox files (real engine)', () => {
  let server: TestServer;
  let id: string;
  let other: string;

  const sh = async (sandbox: string, script: string) => {
    const res = await server.call('POST', `/v1/sandboxes/${sandbox}/exec`, { cmd: script });
    expect(res.body).toMatchObject({ exitCode: 0 });
    return res.body as { stdout: string };
  };
  const raw = (sandbox: string, path: string, init: RequestInit = {}) =>
    fetch(`${server.url}/v1/sandboxes/${sandbox}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TEST_KEY}`, ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(20_000),
    }).then(async (res) => ({ status: res.status, text: await res.text() }));
  const code = (res: { text: string }) => (JSON.parse(res.text) as { error?: { code?: string } }).error?.code;
  /** The other sandbox's files answer: a read, a list, a write. */
  const otherAnswers = async () => {
    const [read, list, write] = await Promise.all([
      raw(other, '/files?path=hello.txt'),
      raw(other, '/files/list'),
      raw(other, '/files?path=w.txt', {
        method: 'PUT',
        body: 'w',
        headers: { 'content-type': 'application/octet-stream' },
      }),
    ]);
    expect(read).toEqual({ status: 200, text: 'hello' });
    expect(list.status).toBe(200);
    expect(write.status).toBe(200);
  };

  beforeAll(async () => {
    server = await startTestServer();
    const a = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const b = await server.call('POST', '/v1/sandboxes', {
      files: { 'hello.txt': 'hello' },
      runtime: { start: 'exec sleep infinity' },
    });
    id = a.body.id;
    other = b.body.id;
    await Promise.all([waitState(server, id, 'running'), waitState(server, other, 'running')]);
  }, 120_000);

  afterAll(async () => {
    console.log(`[readyz] longest wait of all: ${readyzSeen.longest.toFixed(1)} ms (${readyzSeen.label})`);
    await server?.close();
  });

  it('a FIFO as the supervisor status file fails that sandbox status with not_a_regular_file', async () => {
    // The supervisor has written "running" and will not write again while the app runs.
    await waitFor(async () => {
      const res = await server.call('GET', `/v1/sandboxes/${id}/app`);
      return res.body?.state === 'running' ? true : undefined;
    });
    await sh(id, 'rm -f /run/previewd/status && mkfifo /run/previewd/status');
    const res = await whileWatched(server.url, 'status file is a FIFO', async () => {
      const [status] = await Promise.all([raw(id, '/app'), otherAnswers()]);
      return status;
    });
    expect(res.status).toBe(409);
    expect(code(res)).toBe('not_a_regular_file');
    expect((await server.call('GET', `/v1/sandboxes/${other}/app`)).body).toMatchObject({ state: 'running' });
  });

  it('FIFOs in the workspace: reads, downloads, writes and chmod answer at once; six at a time hang nothing', async () => {
    await sh(id, 'mkfifo f1 f2 f3 f4 f5 f6 && mkdir pipes && mkfifo pipes/p1 && echo x > pipes/x.txt');
    const results = await whileWatched(server.url, 'six FIFO reads at once, and the rest', async () => {
      const reads = await Promise.all(
        ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'].map((f) => raw(id, `/files?path=${f}`)),
      );
      // libuv's threads are free: the other sandbox's files answer while and after.
      await otherAnswers();
      const write = await raw(id, '/files?path=f1', {
        method: 'PUT',
        body: 'x',
        headers: { 'content-type': 'application/octet-stream' },
      });
      const chmod = await server.call('POST', `/v1/sandboxes/${id}/files/chmod`, {
        path: 'f2',
        mode: '0600',
      });
      const stat = await server.call('GET', `/v1/sandboxes/${id}/files/stat?path=f3`);
      const archive = await raw(id, '/files/archive?path=pipes');
      const glob = await server.call('GET', `/v1/sandboxes/${id}/files/glob?pattern=f*`);
      await otherAnswers();
      return { reads, write, chmod, stat, archive, glob };
    });
    for (const read of results.reads) {
      expect(read.status).toBe(409);
      expect(code(read)).toBe('not_a_regular_file');
    }
    expect(results.write.status).toBe(409);
    expect(code(results.write)).toBe('not_a_regular_file');
    expect(results.chmod.body).toMatchObject({ path: 'f2', type: 'other', mode: '0600' });
    expect(results.stat.body).toMatchObject({ path: 'f3', type: 'other' });
    // The archive holds the regular file and leaves the FIFO out.
    expect(results.archive.status).toBe(200);
    expect(results.archive.text).toContain('x.txt');
    expect(results.archive.text).not.toContain('p1');
    expect(results.glob.body.entries.map((e: { path: string }) => e.path)).toEqual([
      'f1',
      'f2',
      'f3',
      'f4',
      'f5',
      'f6',
    ]);
  });

  it('the template build reads the lockfile and stamp without following links or blocking on FIFOs', async () => {
    const root = server.app.provider.files(id).root;
    // A build sandbox runs the template's install scripts: its files are read as a sandbox's.
    server.app.service.templates.markBuild(id, 'vite-react');
    const harvest = () => server.app.service.templates.build('vite-react', id, root);
    const refusal = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (err: { code?: string }) => err.code,
      );

    await sh(id, 'mkfifo package-lock.json');
    expect(await whileWatched(server.url, 'harvest: lockfile is a FIFO', () => refusal(harvest()))).toBe(
      'not_a_regular_file',
    );

    // A link to a host file: not followed (the old read followed it on the host).
    await sh(id, 'rm package-lock.json && ln -s /etc/hostname package-lock.json');
    expect(await refusal(harvest())).toBe('not_a_regular_file');

    // A real lockfile, node_modules a link: nothing harvested.
    await sh(id, 'rm package-lock.json && echo {} > package-lock.json && ln -s /etc node_modules');
    expect(await harvest()).toBe(false);

    // A real node_modules whose stamp is a FIFO: nothing harvested, at once.
    await sh(id, 'rm node_modules && mkdir node_modules && mkfifo node_modules/.previewd-install-hash');
    expect(await whileWatched(server.url, 'harvest: stamp is a FIFO', () => harvest())).toBe(false);
    await otherAnswers();
  });
});
