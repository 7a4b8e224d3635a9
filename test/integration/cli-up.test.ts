import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');

describe('previewd up (real CLI, real engine)', () => {
  let server: TestServer;
  let project: string;
  let child: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    server = await startTestServer();
    project = mkdtempSync(join(tmpdir(), 'previewd-up-'));
    writeFileSync(join(project, 'index.html'), '<!doctype html><h1 id="title">first</h1>');
    writeFileSync(join(project, '.gitignore'), 'secret.txt\nbuild/\n');
    writeFileSync(join(project, 'secret.txt'), 'do not upload');
    mkdirSync(join(project, 'build'));
    writeFileSync(join(project, 'build', 'out.js'), 'ignored');
    mkdirSync(join(project, 'node_modules', 'x'), { recursive: true });
    writeFileSync(join(project, 'node_modules', 'x', 'index.js'), 'ignored');
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await server?.close();
    rmSync(project, { recursive: true, force: true });
  });

  it('uploads the folder, prints the preview URL, syncs changes, and deletes the sandbox on Ctrl-C with --rm', async () => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'up', project, '--rm'], {
      cwd: root,
      env: { ...clean, NO_COLOR: '1', PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY },
    });
    child.stdout?.on('data', (d) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d) => {
      output += d.toString();
    });
    const id = await waitFor(async () => /Created ([0-9a-z]{26})/.exec(output)?.[1], 60_000, 'Created');
    expect(output).toMatch(/Preview: http:\/\/8080-[0-9a-z]{26}\.preview\.localhost/);
    const host = previewHostOf(id, 8080);
    await waitFor(
      async () => ((await edgeJson(server, host, '/')).text.includes('first') ? true : undefined),
      60_000,
    );
    // .gitignore and node_modules honoured
    const listed = await server.call('GET', `/v1/sandboxes/${id}/files/list?path=&recursive=true`);
    const paths = JSON.stringify(listed.body);
    expect(paths).toContain('index.html');
    expect(paths).not.toContain('secret.txt');
    expect(paths).not.toContain('out.js');
    expect(paths).not.toContain('node_modules');
    // a local change is synced
    writeFileSync(join(project, 'index.html'), '<!doctype html><h1 id="title">second</h1>');
    writeFileSync(join(project, 'new.txt'), 'new file');
    await waitFor(
      async () => ((await edgeJson(server, host, '/')).text.includes('second') ? true : undefined),
      30_000,
    );
    await waitFor(async () =>
      (await edgeJson(server, host, '/new.txt')).text === 'new file' ? true : undefined,
    );
    // the app's logs are streamed
    expect(output).toContain('static site on http://0.0.0.0:8080');
    // Ctrl-C: the sandbox is deleted (--rm), the command exits
    const exited = new Promise<number | null>((r) => child?.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).status).toBe(404);
  }, 120_000);
});
