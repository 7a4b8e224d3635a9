import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  FileNotFoundError,
  InvalidPathError,
  isPreviewdError,
  Previewd,
  PreviewdError,
  Sandbox,
  SandboxNotFoundError,
  type WebSocketConstructor,
} from '../../packages/sdk/src/index.js';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

/** The app of the test sandbox: answers on 3000 and prints a line per request. */
const app = `
const http = require('node:http');
http.createServer((req, res) => {
  console.log('request ' + req.url);
  res.setHeader('content-type', 'text/plain');
  res.end('hello from the sdk test ' + req.url);
}).listen(3000, '0.0.0.0', () => console.log('listening on 3000'));
`;

/** Fetches a preview URL through the test edge (the preview host is sent as the Host header). */
async function fetchPreview(server: TestServer, previewUrl: string) {
  const url = new URL(previewUrl);
  const res = await request(`${server.edgeUrl}${url.pathname}${url.search}`, { headers: { host: url.host } });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('TypeScript SDK against a real server and engine', () => {
  let server: TestServer;
  let client: Previewd;
  let sandbox: Sandbox;

  beforeAll(async () => {
    server = await startTestServer();
    client = new Previewd({ url: server.url, apiKey: TEST_KEY });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('creates a sandbox with files, waits for it and its port, and fetches the preview URL through the edge', async () => {
    sandbox = await client.sandboxes.create({
      files: { 'server.js': app, 'notes/readme.md': '# notes\n' },
      runtime: { start: 'node server.js', port: 3000 },
      labels: { suite: 'sdk-ts' },
    });
    expect(['creating', 'starting', 'running']).toContain(sandbox.state);
    await sandbox.waitUntil('running', { timeoutMs: 60_000 });
    await sandbox.waitForPort(3000, { timeoutMs: 30_000 });
    const url = await sandbox.getPreviewUrl(3000);
    expect(url).toBe(sandbox.previews.find((p) => p.port === 3000)?.url);
    expect(url).toContain(`3000-${sandbox.id}.`);
    const res = await fetchPreview(server, `${url}/hi`);
    expect(res).toEqual({ status: 200, text: 'hello from the sdk test /hi' });
  });

  it('gets and lists sandboxes', async () => {
    const again = await client.sandboxes.get(sandbox.id);
    expect(again.id).toBe(sandbox.id);
    expect(again.info.runtime.start).toBe('node server.js');
    const page = await client.sandboxes.list({ labels: { suite: 'sdk-ts' } });
    expect(page.sandboxes.map((s) => s.id)).toEqual([sandbox.id]);
    const none = await client.sandboxes.list({ labels: { suite: 'other' } });
    expect(none.sandboxes).toEqual([]);
  });

  it('writes, reads, lists, moves, chmods and removes files', async () => {
    const entry = await sandbox.files.write('src/hello.txt', 'hello\n');
    expect(entry).toMatchObject({ path: 'src/hello.txt', type: 'file', size: 6 });
    expect(await sandbox.files.read('src/hello.txt')).toBe('hello\n');
    expect(Buffer.from(await sandbox.files.readBytes('src/hello.txt')).toString()).toBe('hello\n');
    const batch = await sandbox.files.writeMany({ 'a/one.txt': '1', 'a/two.txt': '2' });
    expect(batch.written.map((w) => w.path).sort()).toEqual(['a/one.txt', 'a/two.txt']);
    const list = await sandbox.files.list('a');
    expect(list.entries.map((e) => e.name).sort()).toEqual(['one.txt', 'two.txt']);
    const glob = await sandbox.files.glob('**/*.txt');
    expect(glob.entries.map((e) => e.path)).toEqual(expect.arrayContaining(['a/one.txt', 'src/hello.txt']));
    // One entry per page: the iterators follow nextCursor to the end.
    const paged: string[] = [];
    for await (const e of sandbox.files.listAll('a', { limit: 1 })) paged.push(e.path);
    expect(paged).toEqual(['a/one.txt', 'a/two.txt']);
    const matched: string[] = [];
    for await (const e of sandbox.files.globAll('a/*.txt', { limit: 1 })) matched.push(e.path);
    expect(matched).toEqual(['a/one.txt', 'a/two.txt']);
    await sandbox.files.move('a/two.txt', 'b/two.txt');
    expect((await sandbox.files.stat('b/two.txt')).type).toBe('file');
    expect((await sandbox.files.chmod('b/two.txt', '0755')).mode).toBe('0755');
    await sandbox.files.remove('a', { recursive: true });
    // The file written through the API is visible inside the container at once.
    const cat = await sandbox.exec('cat src/hello.txt && stat -c %a b/two.txt');
    expect(cat).toMatchObject({ exitCode: 0, stdout: 'hello\n755\n' });
  });

  it('throws typed errors keyed by the server error code', async () => {
    const missing = await sandbox.files.read('nope.txt').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FileNotFoundError);
    expect(missing).toBeInstanceOf(PreviewdError);
    expect(missing).toMatchObject({ code: 'file_not_found', status: 404 });
    expect((missing as PreviewdError).hint).toMatch(/files\/list/);
    const outside = await sandbox.files.write('../etc/passwd', 'x').catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(InvalidPathError);
    const gone = await client.sandboxes.get('01arz3ndektsv4rrffq69g5fav').catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(SandboxNotFoundError);
    expect(isPreviewdError(gone, 'sandbox_not_found')).toBe(true);
    const unreachable = new Previewd({ url: 'http://127.0.0.1:9', apiKey: TEST_KEY });
    expect(await unreachable.health().catch((e: PreviewdError) => e.code)).toBe('connection_failed');
    const badKey = new Previewd({ url: server.url, apiKey: 'wrong-key-0123456789' });
    expect(await badKey.sandboxes.list().catch((e: PreviewdError) => e.code)).toBe('unauthorized');
  });

  it('execs buffered and streamed', async () => {
    const res = await sandbox.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(res).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    const items = [];
    for await (const item of sandbox.execStream('for i in 1 2 3; do echo line $i; done; echo done >&2')) {
      items.push(item);
    }
    const stdout = items.flatMap((i) => ('stream' in i && i.stream === 'stdout' ? [i.data] : [])).join('');
    expect(stdout).toBe('line 1\nline 2\nline 3\n');
    expect(items).toContainEqual({ stream: 'stderr', data: 'done\n' });
    expect(items.at(-1)).toEqual({ exitCode: 0 });
  });

  it('runs background processes and reads their logs', async () => {
    const proc = await sandbox.processes.start('echo from-process; sleep 0.2; echo bye');
    expect(proc.pid).toBeGreaterThan(0);
    const out = [];
    for await (const item of sandbox.processes.logs(proc.pid, { follow: true })) out.push(item);
    expect(out.at(-1)).toEqual({ exitCode: 0 });
    expect(out.flatMap((i) => ('data' in i ? [i.data] : [])).join('')).toBe('from-process\nbye\n');
    expect((await sandbox.processes.get(proc.pid)).running).toBe(false);
    expect((await sandbox.processes.list()).map((p) => p.pid)).toContain(proc.pid);
  });

  it('streams the app logs with follow', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const follow = (async () => {
      for await (const chunk of sandbox.logs({ follow: true, signal: controller.signal })) {
        seen.push(chunk.data);
        if (seen.join('').includes('request /followed')) return;
      }
    })();
    // A request made after following started shows up in the followed stream.
    const url = await sandbox.getPreviewUrl(3000);
    await fetchPreview(server, `${url}/followed`);
    await follow;
    controller.abort();
    expect(seen.join('')).toContain('listening on 3000');
    expect(seen.join('')).toContain('request /followed');
  });

  it('replays and follows events, exposes ports, mints and revokes preview tokens, keeps alive', async () => {
    const types: string[] = [];
    for await (const event of sandbox.events({ lastEventId: 0 })) {
      types.push(event.type);
      expect(event.sandboxId).toBe(sandbox.id);
      if (event.type === 'port.open') break;
    }
    expect(types).toContain('sandbox.created');
    await sandbox.exposePort(4000);
    expect(sandbox.info.ports).toEqual([3000, 4000]);
    expect(await sandbox.getPreviewUrl(4000)).toContain(`4000-${sandbox.id}.`);
    await sandbox.unexposePort(4000);
    const missing = await sandbox.getPreviewUrl(4000).catch((e: PreviewdError) => e.code);
    expect(missing).toBe('port_not_exposed');
    const token = await sandbox.previewTokens.create({ port: 3000, ttlSec: 60 });
    expect(token.token).toMatch(/^pvt1\./);
    expect(await sandbox.getPreviewUrl(3000, { token: true })).toContain('previewd_token=');
    await sandbox.previewTokens.revokeAll();
    await sandbox.keepalive(60);
    expect(sandbox.info.keepAliveUntil).toBeDefined();
  });

  it('opens interactive terminals over the exec WebSocket (stdin, eof, PTY size, exit code)', async () => {
    const WS = WebSocket as unknown as WebSocketConstructor; // Node 20 has no global WebSocket
    const cat = await sandbox.terminal({ cmd: 'cat', WebSocket: WS });
    let out = '';
    cat.onOutput((data) => {
      out += data;
    });
    cat.write('hello terminal\n');
    cat.eof();
    expect(await cat.exit).toBe(0);
    expect(out).toBe('hello terminal\n');
    const tty = await sandbox.terminal({
      cmd: ['sh', '-c', 'stty size; exit 4'],
      tty: { cols: 100, rows: 30 },
      WebSocket: WS,
    });
    let ttyOut = '';
    tty.onOutput((data) => {
      ttyOut += data;
    });
    expect(await tty.exit).toBe(4);
    expect(ttyOut.trim()).toBe('30 100');
    const denied = new Previewd({ url: server.url, apiKey: 'wrong-key-0123456789' });
    const sb = await client.sandboxes.get(sandbox.id);
    const refused = await new Sandbox(denied.http, sb.info)
      .terminal({ cmd: 'true', WebSocket: WS })
      .catch((e: PreviewdError) => e.code);
    expect(refused).toBe('connection_failed');
  });

  it('stops, starts and deletes', async () => {
    await sandbox.stop();
    await sandbox.waitUntil('stopped', { timeoutMs: 30_000 });
    expect(await sandbox.files.read('src/hello.txt')).toBe('hello\n');
    await sandbox.start();
    await sandbox.waitUntil('running', { timeoutMs: 30_000 });
    await sandbox.delete();
    const gone = await client.sandboxes.get(sandbox.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(SandboxNotFoundError);
  });
});
