import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkGitUrl } from '../../src/sources/git-url.js';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';
import {
  makePng,
  makeRepository,
  sha256,
  startGitDaemon,
  startGitHttp,
  type TarEntry,
  tarOfEntries,
  zipOf,
} from '../helpers/source-fixtures.js';

/** Reads logo.png once, at boot, and answers its sha256 ("missing" when it was not there then). */
const APP = `
const fs = require('node:fs');
const digest = fs.existsSync('logo.png')
  ? require('node:crypto').createHash('sha256').update(fs.readFileSync('logo.png')).digest('hex')
  : 'missing';
require('node:http').createServer((req, res) => res.end(digest)).listen(3000, '0.0.0.0');
`;
const RUNTIME = { install: '', start: 'node server.js', port: 3000 };

/** Runs the real CLI (TypeScript entry) against the test server. */
const cli = (server: () => TestServer) => (args: string[]) => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { env: { ...clean, NO_COLOR: '1', PREVIEWD_URL: server().url, PREVIEWD_API_KEY: TEST_KEY } },
      (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
};
const CLI_RUNTIME = ['--start', 'node server.js', '--install', '', '--port', '3000', '--json'];

describe('any source at create (real engine)', () => {
  let server: TestServer;
  const run = cli(() => server);
  const png = makePng();
  const digest = sha256(png);

  beforeAll(async () => {
    server = await startTestServer({ 'sources.allowPrivateGit': true });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  const archiveCreate = (body: Buffer, type: string, options: unknown, encode = false) => {
    const json = JSON.stringify(options);
    return fetch(`${server.url}/v1/sandboxes`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        'content-type': type,
        'x-previewd-create': encode ? Buffer.from(json).toString('base64url') : json,
      },
      body,
    });
  };

  /** The sandbox's app answers the digest of the logo it read at start. */
  const servesDigest = async (id: string) => {
    await waitState(server, id, 'running', 60_000);
    const answer = await waitFor(
      async () => {
        const res = await edgeJson(server, previewHostOf(id), '/');
        return res.status === 200 ? res.text : undefined;
      },
      60_000,
      'the app to answer',
    );
    expect(answer).toBe(digest);
  };

  const sandboxCount = async () => (await server.app.store.listSandboxes()).length;
  /** Every file under the data dir, to show a refused archive left nothing behind. */
  const filesNamed = (name: string) =>
    execFileSync('find', [server.dataDir, '-name', name], { encoding: 'utf8' }).trim();

  it('JSON files may be { base64 }: the binary is in place when the app starts', async () => {
    const res = await server.call('POST', '/v1/sandboxes', {
      files: { 'server.js': APP, 'logo.png': { base64: png.toString('base64') } },
      runtime: RUNTIME,
    });
    expect(res.status).toBe(201);
    await servesDigest(res.body.id);
    const onDisk = await server.app.provider.files(res.body.id).read('logo.png');
    expect(onDisk.equals(png)).toBe(true);
  }, 120_000);

  it('refuses malformed base64 with invalid_base64 and makes no sandbox', async () => {
    const before = await sandboxCount();
    const res = await server.call('POST', '/v1/sandboxes', { files: { 'a.bin': { base64: 'not base64!' } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_base64');
    expect(res.body.error.details).toEqual({ path: 'a.bin' });
    expect(await sandboxCount()).toBe(before);
  });

  it('a tar.gz body with the options in X-Previewd-Create (base64url)', async () => {
    const tar = await tarOfEntries([
      { name: 'server.js', content: APP },
      { name: 'assets/', type: 'directory' },
      { name: 'logo.png', content: png },
    ]);
    const res = await archiveCreate(
      gzipSync(tar),
      'application/gzip',
      { runtime: RUNTIME, labels: { kind: 'tgz' } },
      true,
    );
    const body = (await res.json()) as any;
    expect(res.status).toBe(201);
    expect(body.labels).toEqual({ kind: 'tgz' });
    await servesDigest(body.id);
  }, 120_000);

  it('a plain tar body, and JSON files in the header go on top of it', async () => {
    const tar = await tarOfEntries([
      { name: 'server.js', content: 'process.exit(1)' },
      { name: 'logo.png', content: png },
    ]);
    const res = await archiveCreate(tar, 'application/x-tar', {
      runtime: RUNTIME,
      files: { 'server.js': APP },
    });
    expect(res.status).toBe(201);
    await servesDigest(((await res.json()) as any).id);
  }, 120_000);

  it('a zip body', async () => {
    const zip = zipOf([
      { name: 'server.js', content: APP },
      { name: 'img/', type: 'directory' },
      { name: 'logo.png', content: png },
    ]);
    const res = await archiveCreate(zip, 'application/zip', { runtime: RUNTIME });
    const body = (await res.json()) as any;
    expect(res.status).toBe(201);
    await servesDigest(body.id);
  }, 120_000);

  it('detects the runtime from an archive’s package.json', async () => {
    const pkg = JSON.stringify({ name: 'x', scripts: { start: 'node server.js' } });
    const tar = await tarOfEntries([
      { name: 'package.json', content: pkg },
      { name: 'server.js', content: APP },
    ]);
    const res = await archiveCreate(tar, 'application/x-tar', {});
    const body = (await res.json()) as any;
    expect(res.status).toBe(201);
    expect(body.runtime.source).toBe('detected');
    expect(body.runtime.start).toContain('start');
  });

  const refused: Array<[string, TarEntry[], string]> = [
    [
      'a ".." entry',
      [
        { name: 'ok.txt', content: 'x' },
        { name: '../escaped-entry.txt', content: 'x' },
      ],
      'escaped-entry.txt',
    ],
    [
      'an absolute entry',
      [
        { name: 'ok.txt', content: 'x' },
        { name: '/escaped-abs.txt', content: 'x' },
      ],
      'escaped-abs.txt',
    ],
    [
      'a symlink pointing out',
      [
        { name: 'ok.txt', content: 'x' },
        { name: 'out', type: 'symlink', linkname: '../../../../etc' },
      ],
      'out',
    ],
    [
      'an absolute symlink',
      [
        { name: 'ok.txt', content: 'x' },
        { name: 'abs-link', type: 'symlink', linkname: '/etc/passwd' },
      ],
      'abs-link',
    ],
  ];
  for (const [what, entries, name] of refused) {
    for (const kind of ['tar', 'zip'] as const) {
      it(`refuses a ${kind} with ${what}: nothing written, no sandbox`, async () => {
        const before = await sandboxCount();
        const body = kind === 'tar' ? await tarOfEntries(entries) : zipOf(entries);
        const res = await archiveCreate(body, kind === 'tar' ? 'application/x-tar' : 'application/zip', {});
        const answer = (await res.json()) as any;
        expect(res.status).toBe(400);
        expect(answer.error.code).toBe('invalid_path');
        expect(await sandboxCount()).toBe(before);
        expect(filesNamed(name)).toBe('');
        expect(filesNamed('ok.txt')).toBe('');
      });
    }
  }

  it('refuses a truncated archive with invalid_archive, and a bad header with invalid_request', async () => {
    const tar = await tarOfEntries([{ name: 'a.txt', content: 'x'.repeat(5000) }]);
    const cut = await archiveCreate(tar.subarray(0, 1000), 'application/x-tar', {});
    expect(cut.status).toBe(400);
    expect(((await cut.json()) as any).error.code).toBe('invalid_archive');
    const zip = await archiveCreate(Buffer.from('PK not really'), 'application/zip', {});
    expect(zip.status).toBe(400);
    expect(((await zip.json()) as any).error.code).toBe('invalid_archive');
    const bad = await archiveCreate(tar, 'application/x-tar', { nope: 1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe('invalid_request');
  });

  it('answers 415 unsupported_media_type for another content type', async () => {
    const res = await fetch(`${server.url}/v1/sandboxes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/x-7z-compressed' },
      body: '7z',
    });
    expect(res.status).toBe(415);
    const body = (await res.json()) as any;
    expect(body.error.code).toBe('unsupported_media_type');
    expect(body.error.hint).toContain('application/zip');
  });

  it('previewd create <dir> sends one tar.gz: the binary is there when the app starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'previewd-cli-project-'));
    try {
      writeFileSync(join(dir, 'server.js'), APP);
      writeFileSync(join(dir, 'logo.png'), png);
      const out = await run(['create', dir, ...CLI_RUNTIME]);
      expect(out.code, out.stderr).toBe(0);
      const id = JSON.parse(out.stdout).id as string;
      await servesDigest(id);
      const onDisk = await server.app.provider.files(id).read('logo.png');
      expect(onDisk.equals(png)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  describe('source.git', () => {
    const repo = makeRepository({ 'README.md': 'main only\n' }, { 'server.js': APP, 'logo.png': png });
    let daemon: Awaited<ReturnType<typeof startGitDaemon>>;

    beforeAll(async () => {
      daemon = await startGitDaemon(repo.base, repo.name);
    }, 30_000);

    afterAll(() => {
      daemon?.stop();
      repo.remove();
    });

    it('clones a branch over git:// before the app starts, without .git', async () => {
      const res = await server.call('POST', '/v1/sandboxes', {
        source: { git: { url: daemon.url, ref: 'feature' } },
        runtime: RUNTIME,
      });
      expect(res.status).toBe(201);
      await servesDigest(res.body.id);
      const root = server.app.provider.files(res.body.id).root;
      expect(existsSync(join(root, '.git'))).toBe(false);
      expect(readdirSync(root).sort()).toEqual(
        expect.arrayContaining(['README.md', 'logo.png', 'server.js']),
      );
    }, 120_000);

    it('previewd create --git --ref clones the branch', async () => {
      const out = await run(['create', '--git', daemon.url, '--ref', 'feature', ...CLI_RUNTIME]);
      expect(out.code, out.stderr).toBe(0);
      await servesDigest(JSON.parse(out.stdout).id);
    }, 120_000);

    it('a missing ref is git_clone_failed and makes no sandbox', async () => {
      const before = await sandboxCount();
      const res = await server.call('POST', '/v1/sandboxes', {
        source: { git: { url: daemon.url, ref: 'no-such-branch' } },
      });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('git_clone_failed');
      expect(await sandboxCount()).toBe(before);
    });

    it('over http, sends the token in a header of the clone only: never in the workspace', async () => {
      const token = `tok-${Date.now()}-secret`;
      const http = await startGitHttp(repo.base, token);
      try {
        const withoutToken = await server.call('POST', '/v1/sandboxes', {
          source: { git: { url: `${http.url}/${repo.name}`, ref: 'feature' } },
        });
        expect(withoutToken.status).toBe(422);
        expect(withoutToken.body.error.code).toBe('git_clone_failed');

        const res = await server.call('POST', '/v1/sandboxes', {
          source: { git: { url: `${http.url}/${repo.name}`, ref: 'feature', token } },
          runtime: RUNTIME,
        });
        expect(res.status).toBe(201);
        expect(JSON.stringify(res.body)).not.toContain(token);
        const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
        expect(http.seen).toContain(`Basic ${basic}`);
        await servesDigest(res.body.id);
        const root = server.app.provider.files(res.body.id).root;
        for (const secret of [token, basic]) {
          const grep = spawnSync('grep', ['-rl', '--', secret, root], { encoding: 'utf8' });
          expect(grep.status).toBe(1); // 1: no match (2 would be an error)
          expect(grep.stdout).toBe('');
        }
        // The clone's own folder is gone once the files are in the workspace.
        expect(readdirSync(tmpdir()).filter((n) => n.startsWith('previewd-git-'))).toEqual([]);
        const inside = await server.call('POST', `/v1/sandboxes/${res.body.id}/exec`, {
          cmd: ['sh', '-c', `env; grep -rl -- '${token}' /workspace /tmp /home 2>/dev/null; true`],
        });
        expect(inside.status).toBe(200);
        expect(JSON.stringify(inside.body)).not.toContain(token);
        const row = await server.app.store.getSandbox(res.body.id);
        expect(JSON.stringify(row)).not.toContain(token);
      } finally {
        await http.close();
      }
    }, 120_000);

    it('refuses file://, ext:: and credentials in the URL with git_source_refused', async () => {
      for (const url of [
        `file://${repo.base}/${repo.name}`,
        `ext::sh -c touch% /tmp/pwned`,
        `ssh://127.0.0.1/${repo.name}`,
        `${repo.base}/${repo.name}`,
        'https://user:pw@127.0.0.1/x.git',
      ]) {
        const res = await server.call('POST', '/v1/sandboxes', { source: { git: { url } } });
        expect(res.status, url).toBe(400);
        expect(res.body.error.code, url).toBe('git_source_refused');
      }
      expect(existsSync('/tmp/pwned')).toBe(false);
    });

    it('refuses loopback and private hosts unless sources.allowPrivateGit', async () => {
      for (const url of [
        // Loopback and documentation ranges only: the same rule as private and metadata addresses
        // (one check, src/net/internet-address.ts, whose table is in webhook-target-policy.test.ts).
        'git://127.0.0.1/x',
        'https://198.51.100.9/x.git',
        'http://[::1]/x',
        'http://[2001:db8::1]/x',
      ]) {
        await expect(checkGitUrl(url, { allowPrivate: false })).rejects.toMatchObject({
          code: 'git_source_refused',
        });
      }
      const ok = await checkGitUrl('git://127.0.0.1/x', { allowPrivate: true });
      expect(ok.address).toBe('127.0.0.1');
    });
  });
});
