import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');

/** Newest modification time of the files under a directory. */
function newest(dir: string): number {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) max = Math.max(max, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return max;
}

/**
 * The built binary (bin/previewd.js → dist/, as `make setup` leaves it) when the build is newer
 * than the sources; else the TypeScript entry through tsx (a run without a rebuild tests the code
 * as it is, only slower).
 */
const built = join(root, 'dist', 'cli', 'main.js');
const entry =
  existsSync(built) &&
  statSync(built).mtimeMs >= newest(join(root, 'src')) &&
  statSync(built).mtimeMs >= newest(join(root, 'packages', 'sdk', 'src'))
    ? ['bin/previewd.js']
    : ['--import', 'tsx', 'src/cli/main.ts'];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI. */
function cli(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...entry, ...args],
      { cwd: root, env: { ...clean, NO_COLOR: '1', ...env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe('previewd CLI against a real server', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let project: string;
  let id: string;
  const json = async <T = any>(args: string[]): Promise<T> => {
    const res = await cli([...args, '--json'], env);
    expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
    return JSON.parse(res.stdout) as T;
  };

  beforeAll(async () => {
    server = await startTestServer();
    env = { PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY };
    project = mkdtempSync(join(tmpdir(), 'previewd-cli-project-'));
    writeFileSync(
      join(project, 'server.js'),
      "require('node:http').createServer((q, s) => { console.log('hit ' + q.url); s.end('cli app'); }).listen(3000);\n",
    );
    writeFileSync(join(project, 'logo.bin'), Buffer.from([0, 1, 2, 255]));
  });
  afterAll(async () => {
    await server?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('create <dir> uploads the folder, waits for the port and prints the sandbox', async () => {
    const sandbox = await json([
      'create',
      project,
      '--start',
      'node server.js',
      '--port',
      '3000',
      '-l',
      'via=cli',
    ]);
    id = sandbox.id;
    expect(sandbox).toMatchObject({ state: 'running', ports: [3000], labels: { via: 'cli' } });
    const url = new URL(sandbox.previews[0].url);
    const res = await request(`${server.edgeUrl}/x`, { headers: { host: url.host } });
    expect(await res.body.text()).toBe('cli app');
  });

  it('ls and get (by id prefix) print JSON; human output is a table', async () => {
    const list = await json<any[]>(['ls', '--label', 'via=cli']);
    expect(list.map((s) => s.id)).toEqual([id]);
    expect((await json(['get', id.slice(0, 10)])).id).toBe(id);
    const human = await cli(['ls'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ID\s+STATE\s+RUNTIME\s+PORTS\s+CREATED\s+PREVIEW/);
    expect(human.stdout).toContain(`${id}  running`);
    expect(human.stdout).not.toContain('\x1b['); // NO_COLOR and no TTY: no colour codes
  });

  it('finds the key by itself in <dataDir>/api-key', async () => {
    writeFileSync(join(server.dataDir, 'api-key'), `${TEST_KEY}\n`);
    const res = await cli(['ls', '--json'], {
      PREVIEWD_URL: server.url,
      PREVIEWD_DATA_DIR: server.dataDir,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).map((s: { id: string }) => s.id)).toContain(id);
  });

  it('exec streams output and exits with the command exit code; --json buffers', async () => {
    const streamed = await cli(['exec', id, 'sh', '-c', 'echo out; echo err >&2; exit 7'], env);
    expect(streamed).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    // Options go before the command: everything after it belongs to the command.
    const res = await cli(['exec', '--json', id, 'cat logo.bin | od -An -tu1'], env);
    const result = JSON.parse(res.stdout);
    expect(result).toMatchObject({ exitCode: 0 });
    expect(result.stdout.trim().split(/\s+/)).toEqual(['0', '1', '2', '255']);
    const piped = await cli(['exec', '-i', id, 'tr a-z A-Z'], env, 'piped in\n');
    expect(piped).toEqual({ code: 0, stdout: 'PIPED IN\n', stderr: '' });
  });

  it('files put, ls, get and rm', async () => {
    const local = join(project, 'note.txt');
    writeFileSync(local, 'from the cli\n');
    expect(await json(['files', 'put', id, local, 'docs/note.txt', '--mode', '0640'])).toMatchObject({
      path: 'docs/note.txt',
      mode: '0640',
      size: 13,
    });
    const list = await json(['files', 'ls', id, 'docs']);
    expect(list.entries.map((e: { name: string }) => e.name)).toEqual(['note.txt']);
    expect((await cli(['files', 'get', id, 'docs/note.txt'], env)).stdout).toBe('from the cli\n');
    const saved = join(project, 'copy.txt');
    await json(['files', 'get', id, 'docs/note.txt', saved]);
    expect(readFileSync(saved, 'utf8')).toBe('from the cli\n');
    expect(await json(['files', 'rm', id, 'docs', '-r'])).toEqual({ removed: 'docs' });
    const stdin = await cli(['files', 'put', id, '-', 'piped.txt', '--json'], env, 'piped\n');
    expect(JSON.parse(stdin.stdout)).toMatchObject({ path: 'piped.txt', size: 6 });
  });

  it('logs prints the app output as NDJSON', async () => {
    const res = await cli(['logs', id, '--json'], env);
    expect(res.code).toBe(0);
    const chunks = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(chunks.map((c) => c.data).join('')).toContain('hit /x');
  });

  it('url and token', async () => {
    const { url } = await json(['url', id]);
    expect(url).toContain(`3000-${id}.`);
    const token = await json(['token', id, '--ttl', '120']);
    expect(token.token).toMatch(/^pvt1\./);
    expect(token.url).toContain('previewd_token=');
    expect((await json(['url', id, '3000', '--token'])).url).toContain('previewd_token=');
    expect(await json(['token', id, '--revoke'])).toEqual({ revoked: true });
  });

  it('errors show the code and hint with a meaningful exit code', async () => {
    const missing = await cli(['get', '01arz3ndektsv4rrffq69g5fav'], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('sandbox_not_found');
    expect(missing.stderr).toContain('hint:');
    const asJson = await cli(['files', 'get', id, 'nope.txt', '--json'], env);
    expect(asJson.code).toBe(3);
    expect(JSON.parse(asJson.stderr).error).toMatchObject({ code: 'file_not_found', status: 404 });
    const badKey = await cli(['ls'], { ...env, PREVIEWD_API_KEY: 'wrong-key-0123456789' });
    expect(badKey.code).toBe(7);
    expect(badKey.stderr).toContain('unauthorized');
    const down = await cli(['ls', '--json'], {
      PREVIEWD_URL: 'http://127.0.0.1:9',
      PREVIEWD_API_KEY: TEST_KEY,
    });
    expect(down.code).toBe(5);
    expect(JSON.parse(down.stderr).error.code).toBe('connection_failed');
  });

  it('stop, start and rm', async () => {
    expect((await json(['stop', id])).state).toBe('stopped');
    const stopped = await cli(['exec', id, 'true'], env);
    expect(stopped.code).toBe(4);
    expect(stopped.stderr).toContain('sandbox_not_running');
    expect((await json(['start', id])).state).toBe('running');
    expect(await json(['rm', id])).toEqual({ deleted: [id] });
    expect(await json(['ls'])).toEqual([]);
  });

  it('doctor checks engine, images, ports, CA bundle and disk', async () => {
    const report = await cli(['doctor', '--json'], {
      ...env,
      PREVIEWD_DATA_DIR: server.dataDir,
      PREVIEWD_API_ADDR: '127.0.0.1:0',
      PREVIEWD_EDGE_ADDR: '127.0.0.1:0',
    });
    const { checks } = JSON.parse(report.stdout);
    const names = checks.map((c: { check: string }) => c.check);
    for (const name of ['engine', 'api port', 'edge port', 'CA bundle', 'disk', 'server']) {
      expect(names).toContain(name);
    }
    expect(names.some((n: string) => n.startsWith('image '))).toBe(true);
    expect(checks.find((c: { check: string }) => c.check === 'engine').status).toBe('ok');
    expect(checks.find((c: { check: string }) => c.check === 'server').status).toBe('ok');
    for (const c of checks) if (c.status !== 'ok') expect(c.fix).toBeTruthy();
  });
});

describe('previewd keys against a real server', () => {
  const TENANT = 'tenant-key-0123456789abcdef';
  let server: TestServer;
  let env: Record<string, string>;
  let made: { id: string; key: string; prefix: string };

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: [TEST_KEY, `${TENANT}:alice`] });
    env = { PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TEST_KEY };
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keys create prints the secret once, alone on stdout, with a warning that it will not be shown again', async () => {
    const res = await cli(['keys', 'create', '--owner', 'erin', '--name', 'erin laptop'], env);
    expect(res.code, res.stderr).toBe(0);
    const secret = res.stdout.trim();
    expect(res.stdout).toBe(`${secret}\n`);
    expect(secret).toMatch(/^pvd_[A-Za-z0-9_-]{32}$/);
    expect(res.stderr).toMatch(/Made tenant key key_[0-9a-z]{26} for erin \(erin laptop\)/);
    expect(res.stderr).toContain('will not be shown again');
    const id = /key_[0-9a-z]{26}/.exec(res.stderr)![0];
    made = { id, key: secret, prefix: secret.slice(0, 10) };
    // The secret is a working tenant key for erin.
    const own = await server.call('GET', '/v1/sandboxes', undefined, { authorization: `Bearer ${secret}` });
    expect(own.status).toBe(200);

    const asJson = await cli(['keys', 'create', '--name', 'ci', '--json'], env);
    expect(asJson.code, asJson.stderr).toBe(0);
    const ci = JSON.parse(asJson.stdout);
    expect(ci).toMatchObject({ role: 'admin', owner: null, name: 'ci', source: 'api', revokedAt: null });
    expect(ci.key.startsWith(ci.prefix)).toBe(true);
    expect(asJson.stderr).toBe('');
  });

  it('keys ls: a table of every key, --json the API list; never a secret', async () => {
    const res = await cli(['keys', 'ls'], env);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+ROLE\s+OWNER\s+NAME\s+PREFIX\s+SOURCE\s+CREATED\s+REVOKED$/);
    const erin = lines.find((l) => l.startsWith(made.id));
    expect(erin).toMatch(
      new RegExp(`^${made.id}\\s+tenant\\s+erin\\s+erin laptop\\s+${made.prefix}…\\s+api\\s+\\d+s ago\\s+-$`),
    );
    expect(lines.filter((l) => /\sconfig\s/.test(l))).toHaveLength(2);
    expect(lines).toHaveLength(5); // header, two configured keys, two made above
    for (const secret of [made.key, TEST_KEY, TENANT]) expect(res.stdout).not.toContain(secret);

    const asJson = await cli(['keys', 'ls', '--json'], env);
    expect(asJson.code, asJson.stderr).toBe(0);
    const list = JSON.parse(asJson.stdout);
    expect(list.map((k: { id: string }) => k.id)).toContain(made.id);
    expect(
      list.filter((k: { source: string }) => k.source === 'config').map((k: { role: string }) => k.role),
    ).toEqual(['admin', 'tenant']);
    for (const secret of [made.key, TEST_KEY, TENANT]) expect(asJson.stdout).not.toContain(secret);
  });

  it('keys revoke (by id prefix): the secret is refused afterwards and ls shows it revoked', async () => {
    // Both keys made above share their first characters (the time part of the id): ambiguous.
    const ambiguous = await cli(['keys', 'revoke', made.id.slice(0, 8)], env);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/error invalid_id: "key_[0-9a-z]{4}" matches 2 keys/);
    const res = await cli(['keys', 'revoke', made.id.slice(0, 20)], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`✓ revoked ${made.id} (erin)\n`);
    const refused = await cli(['ls'], { PREVIEWD_URL: server.url, PREVIEWD_API_KEY: made.key });
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain('error unauthorized:');
    const again = await cli(['keys', 'revoke', made.id, '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      id: made.id,
      owner: 'erin',
      revokedAt: expect.any(String),
    });
    const list = await cli(['keys', 'ls'], env);
    expect(list.stdout.split('\n').find((l) => l.startsWith(made.id))).toMatch(/\d+s ago\s+\d+s ago$/);
  });

  it('keys errors: the server code and hint, with the exit code of their kind', async () => {
    const unknown = await cli(['keys', 'revoke', 'key_01arz3ndektsv4rrffq69g5fav'], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('error key_not_found:');
    expect(unknown.stderr).toContain('hint: List the keys with GET /v1/keys (or "previewd keys ls").');

    const configId = JSON.parse((await cli(['keys', 'ls', '--json'], env)).stdout).find(
      (k: { source: string }) => k.source === 'config',
    ).id;
    const configured = await cli(['keys', 'revoke', configId, '--json'], env);
    expect(configured.code).toBe(4);
    expect(JSON.parse(configured.stderr).error).toMatchObject({ code: 'key_not_revocable', status: 409 });

    for (const args of [
      ['keys', 'ls'],
      ['keys', 'create'],
      ['keys', 'revoke', configId],
    ]) {
      const tenant = await cli(args, { PREVIEWD_URL: server.url, PREVIEWD_API_KEY: TENANT });
      expect(tenant.code, args.join(' ')).toBe(7);
      expect(tenant.stderr).toContain('error forbidden:');
      expect(tenant.stderr).toContain('hint:');
    }

    const bad = await cli(['keys', 'create', '--owner', 'has spaces'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error invalid_request:');
  });

  it('finds an admin key among configured key:owner entries', async () => {
    const res = await cli(['keys', 'ls', '--json'], {
      PREVIEWD_URL: server.url,
      PREVIEWD_API_KEYS: `${TENANT}:alice,${TEST_KEY}`,
      PREVIEWD_DATA_DIR: server.dataDir,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).length).toBeGreaterThanOrEqual(4);
  });
});
