import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract, pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

describe('sandbox files over the API (real engine)', () => {
  let server: TestServer;
  let id: string;
  let other: string;
  const put = (
    sandbox: string,
    path: string,
    body: RequestInit['body'],
    query = '',
    headers: Record<string, string> = {},
  ) =>
    fetch(`${server.url}/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(path)}${query}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        'content-type': 'application/octet-stream',
        ...headers,
      },
      body,
      duplex: 'half',
    } as RequestInit);
  const get = (sandbox: string, path: string) =>
    fetch(`${server.url}/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(path)}`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
  const sh = async (script: string) => {
    const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: script });
    expect(res.status).toBe(200);
    return res.body as { exitCode: number; stdout: string; stderr: string };
  };

  beforeAll(async () => {
    server = await startTestServer({ maxBodyMb: 2 });
    const a = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    const b = await server.call('POST', '/v1/sandboxes', {
      files: { 'secret.txt': 'b-secret' },
      runtime: { start: 'exec sleep infinity' },
    });
    id = a.body.id;
    other = b.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('writes, reads, stats, lists, globs, moves, chmods, makes directories and deletes', async () => {
    const w = await put(id, 'src/app/index.html', '<h1>hi</h1>', '&mode=0640');
    expect(w.status).toBe(200);
    expect(await w.json()).toMatchObject({
      path: 'src/app/index.html',
      type: 'file',
      size: 11,
      mode: '0640',
    });
    const r = await get(id, 'src/app/index.html');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await r.text()).toBe('<h1>hi</h1>');
    // written through the API, owned by the sandbox's user, visible inside
    const host = join(server.dataDir, 'sandboxes', id, 'workspace', 'src/app/index.html');
    const { uid } = (await server.app.store.getSandbox(id))!.identity!;
    expect(uid).toBeGreaterThanOrEqual(100_000);
    expect(statSync(host).uid).toBe(uid);
    expect(statSync(join(server.dataDir, 'sandboxes', id, 'workspace', 'src')).uid).toBe(uid);
    expect((await sh('stat -c %u:%a src/app/index.html; cat src/app/index.html')).stdout).toBe(
      `${uid}:640\n<h1>hi</h1>`,
    );

    await put(id, 'src/lib/a.ts', 'export const a = 1;');
    await put(id, 'src/lib/b.js', 'b');
    await put(id, 'README.md', '# r');

    const stat = await server.call('GET', `/v1/sandboxes/${id}/files/stat?path=src/lib/a.ts`);
    expect(stat.body).toMatchObject({ path: 'src/lib/a.ts', name: 'a.ts', type: 'file', size: 19 });
    expect(Date.parse(stat.body.mtime)).toBeGreaterThan(0);

    const top = await server.call('GET', `/v1/sandboxes/${id}/files/list?path=`);
    expect(top.body.entries.map((e: { path: string }) => e.path)).toEqual(['README.md', 'src']);
    const deep = await server.call('GET', `/v1/sandboxes/${id}/files/list?path=src&recursive=true`);
    expect(deep.body.entries.map((e: { path: string; type: string }) => `${e.type}:${e.path}`)).toEqual([
      'directory:src/app',
      'file:src/app/index.html',
      'directory:src/lib',
      'file:src/lib/a.ts',
      'file:src/lib/b.js',
    ]);
    for (const e of deep.body.entries) expect(e).toHaveProperty('mode');

    const glob = await server.call(
      'GET',
      `/v1/sandboxes/${id}/files/glob?pattern=${encodeURIComponent('**/*.{ts,js}')}`,
    );
    expect(glob.body.entries.map((e: { path: string }) => e.path)).toEqual(['src/lib/a.ts', 'src/lib/b.js']);
    const glob2 = await server.call('GET', `/v1/sandboxes/${id}/files/glob?pattern=src/*/index.*`);
    expect(glob2.body.entries.map((e: { path: string }) => e.path)).toEqual(['src/app/index.html']);

    const moved = await server.call('POST', `/v1/sandboxes/${id}/files/move`, {
      from: 'src/lib/b.js',
      to: 'dist/b.js',
    });
    expect(moved.status).toBe(200);
    expect(moved.body.path).toBe('dist/b.js');
    expect((await get(id, 'src/lib/b.js')).status).toBe(404);

    const chmod = await server.call('POST', `/v1/sandboxes/${id}/files/chmod`, {
      path: 'dist/b.js',
      mode: '0755',
    });
    expect(chmod.body.mode).toBe('0755');
    expect((await sh('test -x dist/b.js && echo exec')).stdout).toBe('exec\n');

    const mkdir = await server.call('POST', `/v1/sandboxes/${id}/files/mkdir`, { path: 'empty/nested' });
    expect(mkdir.body).toMatchObject({ path: 'empty/nested', type: 'directory' });

    const notEmpty = await server.call('DELETE', `/v1/sandboxes/${id}/files?path=src`);
    expect(notEmpty.status).toBe(400);
    expect(notEmpty.body.error.code).toBe('invalid_path');
    expect((await server.call('DELETE', `/v1/sandboxes/${id}/files?path=README.md`)).status).toBe(204);
    expect((await server.call('DELETE', `/v1/sandboxes/${id}/files?path=src&recursive=true`)).status).toBe(
      204,
    );
    expect((await sh('ls')).stdout).toBe('dist\nempty\n');
    const missing = await server.call('GET', `/v1/sandboxes/${id}/files/stat?path=nope`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('file_not_found');
  });

  it('round-trips binary content byte for byte', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const blob = Buffer.concat([all, randomBytes(1024 * 1024), all]);
    expect((await put(id, 'bin/blob.bin', blob)).status).toBe(200);
    const back = Buffer.from(await (await get(id, 'bin/blob.bin')).arrayBuffer());
    expect(back.equals(blob)).toBe(true);
    const sum = (await sh('sha256sum bin/blob.bin | cut -d" " -f1')).stdout.trim();
    const { createHash } = await import('node:crypto');
    expect(sum).toBe(createHash('sha256').update(blob).digest('hex'));
  });

  it('lands 100 concurrent writes', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => put(id, `many/f-${i}.txt`, `content ${i}`).then((r) => r.status)),
    );
    expect(results.every((s) => s === 200)).toBe(true);
    const out = await sh('ls many | wc -l; cat many/f-42.txt many/f-99.txt');
    expect(out.stdout).toBe('100\ncontent 42content 99');
  });

  it('refuses bodies above maxBodyMb with 413 payload_too_large', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 1);
    const res = await put(id, 'big.bin', big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.code).toBe('payload_too_large');
    // without a length up front (chunked), the limit still holds
    const chunked = await put(
      id,
      'big2.bin',
      Readable.toWeb(Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)])) as never,
    );
    expect(chunked.status).toBe(413);
    const batch = await server.call('POST', `/v1/sandboxes/${id}/files/batch`, {
      files: { 'x.txt': 'x'.repeat(3 * 1024 * 1024) },
    });
    expect(batch.status).toBe(413);
    expect(batch.body.error.code).toBe('payload_too_large');
  });

  it('writes many files in one request (JSON map and tar) and streams a directory as tar', async () => {
    const json = await server.call('POST', `/v1/sandboxes/${id}/files/batch`, {
      files: { 'site/index.html': '<p>i</p>', 'site/css/a.css': 'p{}' },
    });
    expect(json.status).toBe(200);
    expect(json.body.written.map((e: { path: string }) => e.path)).toEqual([
      'site/index.html',
      'site/css/a.css',
    ]);
    const b64 = await server.call('POST', `/v1/sandboxes/${id}/files/batch?path=site`, {
      files: { 'img/dot.bin': Buffer.from([0, 255, 1]).toString('base64') },
      encoding: 'base64',
    });
    expect(b64.body.written[0].path).toBe('site/img/dot.bin');

    const tar = pack();
    tar.entry({ name: 'app/main.js', mode: 0o755 }, 'console.log(1)');
    tar.entry({ name: 'app/lib', type: 'directory' });
    tar.entry({ name: 'app/lib/x.txt' }, 'x');
    tar.entry({ name: 'app/evil', type: 'symlink', linkname: '/etc/passwd' });
    tar.entry({ name: '../escape.txt' }, 'no');
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    const tarred = await fetch(`${server.url}/v1/sandboxes/${id}/files/batch?path=up`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/x-tar' },
      body: Buffer.concat(chunks),
    });
    // the ../ entry is refused: the whole request fails with invalid_path, nothing escapes
    expect(tarred.status).toBe(400);
    expect(((await tarred.json()) as any).error.code).toBe('invalid_path');
    expect(existsSync(join(server.dataDir, 'sandboxes', id, 'escape.txt'))).toBe(false);

    const good = pack();
    good.entry({ name: 'app/main.js', mode: 0o755 }, 'console.log(1)');
    good.entry({ name: 'app/lib', type: 'directory' });
    good.entry({ name: 'app/lib/x.txt' }, 'x');
    good.entry({ name: 'app/evil', type: 'symlink', linkname: '/etc/passwd' });
    good.finalize();
    const goodChunks: Buffer[] = [];
    for await (const c of good) goodChunks.push(c as Buffer);
    const res = await fetch(`${server.url}/v1/sandboxes/${id}/files/batch?path=up`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/x-tar' },
      body: Readable.toWeb(Readable.from(goodChunks)) as never,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    const report = (await res.json()) as any;
    expect(report.written.map((e: { path: string }) => e.path)).toEqual([
      'up/app/main.js',
      'up/app/lib/x.txt',
    ]);
    expect(report.skipped).toEqual([{ path: 'app/evil', reason: 'symlink entries are not extracted' }]);
    const { uid } = (await server.app.store.getSandbox(id))!.identity!;
    expect((await sh('stat -c %a:%u up/app/main.js; cat up/app/lib/x.txt')).stdout).toBe(`755:${uid}\nx`);

    const archive = await fetch(`${server.url}/v1/sandboxes/${id}/files/archive?path=site`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    expect(archive.headers.get('content-type')).toBe('application/x-tar');
    const seen: Record<string, string> = {};
    const ex = extract();
    const done = (async () => {
      for await (const entry of ex) {
        const parts: Buffer[] = [];
        for await (const c of entry) parts.push(c as Buffer);
        seen[`${entry.header.type}:${entry.header.name}`] = Buffer.concat(parts).toString('hex');
      }
    })();
    Readable.fromWeb(archive.body as never).pipe(ex);
    await done;
    expect(Object.keys(seen).sort()).toEqual([
      'directory:css',
      'directory:img',
      'file:css/a.css',
      'file:img/dot.bin',
      'file:index.html',
    ]);
    expect(seen['file:img/dot.bin']).toBe('00ff01');
  });

  it('works while paused and while stopped, without waking the sandbox', async () => {
    expect((await server.call('POST', `/v1/sandboxes/${id}/pause`)).body.state).toBe('paused');
    expect((await put(id, 'while-paused.txt', 'p')).status).toBe(200);
    expect(await (await get(id, 'while-paused.txt')).text()).toBe('p');
    expect((await server.call('GET', `/v1/sandboxes/${id}/files/list?path=`)).status).toBe(200);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('paused');

    expect((await server.call('POST', `/v1/sandboxes/${id}/stop`)).body.state).toBe('stopped');
    expect((await put(id, 'while-stopped.txt', 's')).status).toBe(200);
    expect(await (await get(id, 'while-stopped.txt')).text()).toBe('s');
    expect(
      (
        await server.call('POST', `/v1/sandboxes/${id}/files/move`, {
          from: 'while-stopped.txt',
          to: 'moved.txt',
        })
      ).status,
    ).toBe(200);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('stopped');

    expect((await server.call('POST', `/v1/sandboxes/${id}/start`)).body.state).toBe('running');
    expect((await sh('cat while-paused.txt moved.txt')).stdout).toBe('ps');
  });

  describe('path safety', () => {
    const otherHostDir = () => join(server.dataDir, 'sandboxes', other, 'workspace');
    const code = async (res: Response | Promise<Response>) => {
      const r = await res;
      const body = (await r.json().catch(() => ({}))) as any;
      return `${r.status}:${body?.error?.code}`;
    };

    it('refuses .. and absolute paths that leave the workspace, and NUL bytes', async () => {
      expect(await code(get(id, '../../../../etc/passwd'))).toBe('400:invalid_path');
      expect(await code(get(id, 'a/../../x'))).toBe('400:invalid_path');
      expect(await code(get(id, '/etc/passwd'))).toBe('400:invalid_path');
      expect(await code(put(id, '../outside.txt', 'x'))).toBe('400:invalid_path');
      expect(await code(put(id, '/tmp/outside.txt', 'x'))).toBe('400:invalid_path');
      expect(await code(get(id, 'a\0b'))).toBe('400:invalid_path');
      expect(await code(put(id, 'nul\0.txt', 'x'))).toBe('400:invalid_path');
      const move = await server.call('POST', `/v1/sandboxes/${id}/files/move`, {
        from: 'moved.txt',
        to: '../x',
      });
      expect(move.body.error.code).toBe('invalid_path');
      const glob = await server.call('GET', `/v1/sandboxes/${id}/files/glob?pattern=../*`);
      expect(glob.body.error.code).toBe('invalid_path');
      // absolute paths under /workspace are fine
      expect(await (await get(id, '/workspace/moved.txt')).text()).toBe('s');
      expect(existsSync(join(server.dataDir, 'sandboxes', id, 'outside.txt'))).toBe(false);
    });

    it('never follows a link planted inside the sandbox to a host path', async () => {
      await sh('ln -s /etc /workspace/etc-link && ln -s /etc/passwd /workspace/passwd-link');
      expect(await code(get(id, 'etc-link/passwd'))).toBe('400:invalid_path');
      expect(await code(get(id, 'passwd-link'))).toBe('400:invalid_path');
      expect(await code(put(id, 'etc-link/previewd-evil', 'x'))).toBe('400:invalid_path');
      expect(await code(put(id, 'passwd-link', 'x'))).toBe('400:invalid_path');
      expect(existsSync('/etc/previewd-evil')).toBe(false);
      expect(readFileSync('/etc/passwd', 'utf8')).toContain('root:');
      const chmod = await server.call('POST', `/v1/sandboxes/${id}/files/chmod`, {
        path: 'passwd-link',
        mode: '0777',
      });
      expect(chmod.body.error.code).toBe('invalid_path');
      expect(statSync('/etc/passwd').mode & 0o777).toBe(0o644);
      // stat and list show the link itself; deleting it removes the link, not the target
      const st = await server.call('GET', `/v1/sandboxes/${id}/files/stat?path=etc-link`);
      expect(st.body).toMatchObject({ type: 'symlink', target: '/etc' });
      expect(
        (await server.call('DELETE', `/v1/sandboxes/${id}/files?path=etc-link&recursive=true`)).status,
      ).toBe(204);
      expect(existsSync('/etc/passwd')).toBe(true);
    });

    it("never reaches another sandbox's workspace through a planted link", async () => {
      const theirs = otherHostDir();
      expect(readFileSync(join(theirs, 'secret.txt'), 'utf8')).toBe('b-secret');
      // by host path, and by a relative path that is right on the host (but not in the container)
      await sh(
        `ln -s ${theirs} /workspace/abs-other && ln -s ${theirs}/secret.txt /workspace/abs-secret && ln -s ../../${other}/workspace /workspace/rel-other`,
      );
      for (const path of ['abs-other/secret.txt', 'abs-secret', 'rel-other/secret.txt']) {
        expect(await code(get(id, path))).toBe('400:invalid_path');
      }
      for (const path of ['abs-other/planted.txt', 'rel-other/planted.txt', 'abs-secret']) {
        expect(await code(put(id, path, 'x'))).toBe('400:invalid_path');
      }
      const list = await server.call('GET', `/v1/sandboxes/${id}/files/list?path=rel-other`);
      expect(list.body.error.code).toBe('invalid_path');
      const archive = await fetch(`${server.url}/v1/sandboxes/${id}/files/archive?path=rel-other`, {
        headers: { authorization: `Bearer ${TEST_KEY}` },
      });
      expect(archive.status).toBe(400);
      expect(existsSync(join(theirs, 'planted.txt'))).toBe(false);
      expect(readFileSync(join(theirs, 'secret.txt'), 'utf8')).toBe('b-secret');
    });

    it('never writes through a symlinked parent directory', async () => {
      await sh(
        'ln -s /tmp /workspace/tmp-link && ln -s .. /workspace/up-link && mkdir -p real && ln -s /home/user real/home',
      );
      for (const path of [
        'tmp-link/evil.txt',
        'up-link/evil.txt',
        'real/home/evil.txt',
        'tmp-link/deep/er/evil.txt',
      ]) {
        expect(await code(put(id, path, 'x'))).toBe('400:invalid_path');
      }
      const mkdir = await server.call('POST', `/v1/sandboxes/${id}/files/mkdir`, { path: 'tmp-link/newdir' });
      expect(mkdir.body.error.code).toBe('invalid_path');
      const mv = await server.call('POST', `/v1/sandboxes/${id}/files/move`, {
        from: 'moved.txt',
        to: 'tmp-link/moved.txt',
      });
      expect(mv.body.error.code).toBe('invalid_path');
      expect(existsSync('/tmp/evil.txt')).toBe(false);
      expect(existsSync('/tmp/deep')).toBe(false);
      expect(existsSync(join(server.dataDir, 'sandboxes', id, 'evil.txt'))).toBe(false);
      // nothing landed inside the container's own /tmp or home either
      expect((await sh('ls /tmp /home/user 2>/dev/null | grep -c evil || true')).stdout.trim()).toBe('0');
      // a link that stays inside the workspace is followed like the container would
      await sh('mkdir -p target && ln -s target inside-link');
      expect((await put(id, 'inside-link/ok.txt', 'ok')).status).toBe(200);
      expect((await sh('cat target/ok.txt')).stdout).toBe('ok');
    });
  });
});
