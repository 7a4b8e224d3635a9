import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { execSchema } from '../../src/domain/io-schemas.js';
import { createSandboxSchema } from '../../src/domain/schemas.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');
const ALICE = 'alice-mcp-key-0123456789abcdef';
const BOB = 'bob-mcp-key-0123456789abcdefgh';
const CAROL = 'carol-mcp-key-0123456789abcdef';
/** Creates per owner per window in this server (carol runs into it). */
const CREATES_PER_WINDOW = 3;

/** A plain Node app (no npm install): it serves page.html as it is on disk at each request. */
const appServer = `
const http = require('node:http');
const fs = require('node:fs');
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(fs.readFileSync('/workspace/page.html'));
}).listen(3000, () => console.log('agent app listening on 3000'));
`;

type ToolAnswer = CallToolResult & { structuredContent?: any };

describe('MCP server over streamable HTTP and stdio, against a real server and engine', () => {
  let server: TestServer;
  let aliceSandbox: string;
  const clients: Client[] = [];

  /** An MCP client (the SDK's own) on /mcp with this key; `owner` for an admin acting for an end user. */
  const connect = async (key: string, owner?: string): Promise<Client> => {
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (owner) headers['x-previewd-owner'] = owner;
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers } }),
    );
    clients.push(client);
    return client;
  };
  const call = async (client: Client, name: string, args: Record<string, unknown>): Promise<ToolAnswer> =>
    (await client.callTool({ name, arguments: args })) as ToolAnswer;
  const text = (answer: ToolAnswer) => answer.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  const ok = (answer: ToolAnswer): any => {
    if (answer.isError) throw new Error(`tool failed: ${text(answer)}`);
    return answer.structuredContent;
  };
  /** The preview through the edge, with the token of a private preview URL as a header. */
  const preview = async (url: string) => {
    const u = new URL(url);
    const token = u.searchParams.get('previewd_token');
    const res = await request(`${server.edgeUrl}/`, {
      headers: { host: u.host, ...(token ? { 'x-previewd-token': token } : {}) },
    });
    return { status: res.statusCode, body: await res.body.text() };
  };

  beforeAll(async () => {
    server = await startTestServer({
      apiKeys: [TEST_KEY, `${ALICE}:alice`, `${BOB}:bob`, `${CAROL}:carol`],
      'api.rateLimit.creates': CREATES_PER_WINDOW,
      'api.rateLimit.windowSec': 3600,
    });
    const res = await server.call(
      'POST',
      '/v1/sandboxes',
      { files: { 'notes.txt': 'alice only' }, runtime: { start: 'sleep infinity' } },
      { authorization: `Bearer ${ALICE}` },
    );
    expect(res.status).toBe(201);
    aliceSandbox = res.body.id;
  });
  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await server?.close();
  });

  it('lists the tools, their input schemas made from the API schemas', async () => {
    const agent = await connect(ALICE);
    const { tools } = await agent.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(
      [
        'app_logs',
        'create_sandbox',
        'delete_sandbox',
        'exec',
        'fork_sandbox',
        'get_preview_url',
        'get_sandbox',
        'list_files',
        'list_sandboxes',
        'read_file',
        'snapshot_sandbox',
        'start_sandbox',
        'stop_sandbox',
        'write_files',
      ].sort(),
    );
    const api = z.toJSONSchema(createSandboxSchema, { io: 'input' }) as {
      properties: Record<string, unknown>;
    };
    const create = byName.get('create_sandbox')!.inputSchema as { properties: Record<string, unknown> };
    for (const [field, schema] of Object.entries(api.properties))
      expect(create.properties[field]).toEqual(schema);
    expect(Object.keys(create.properties).sort()).toEqual(
      [...Object.keys(api.properties), 'wait', 'waitTimeoutSec'].sort(),
    );
    const exec = byName.get('exec')!.inputSchema as {
      properties: Record<string, unknown>;
      required: string[];
    };
    const apiExec = z.toJSONSchema(execSchema, { io: 'input' }) as { properties: Record<string, unknown> };
    expect(exec.properties.cmd).toEqual(apiExec.properties.cmd);
    expect(exec.required.sort()).toEqual(['cmd', 'id']);
  });

  it('an agent creates a Node app, edits a file and reads the change back through the preview', async () => {
    const agent = await connect(ALICE);
    const created = ok(
      await call(agent, 'create_sandbox', {
        files: { 'server.js': appServer, 'page.html': '<h1>first version</h1>' },
        runtime: { start: 'node server.js', port: 3000 },
        visibility: 'private',
        labels: { made: 'by-agent' },
        wait: true,
      }),
    );
    expect(created.state).toBe('running');
    expect(created.owner).toBe('alice');
    const id: string = created.id;

    // A private sandbox: the tool mints a preview token, and the URL carries it.
    const link = ok(await call(agent, 'get_preview_url', { id }));
    expect(link.visibility).toBe('private');
    expect(link.url).toContain(`3000-${id}.`);
    expect(link.url).toContain('previewd_token=');
    expect(await preview(link.url)).toEqual({ status: 200, body: '<h1>first version</h1>' });
    // Without the token the edge refuses it.
    expect((await preview(link.url.replace(/\?.*$/, ''))).status).toBe(401);

    const written = ok(
      await call(agent, 'write_files', { id, files: { 'page.html': '<h1>edited by the agent</h1>' } }),
    );
    expect(written.written.map((e: { path: string }) => e.path)).toEqual(['page.html']);
    expect(await preview(link.url)).toEqual({ status: 200, body: '<h1>edited by the agent</h1>' });

    const read = await call(agent, 'read_file', { id, path: 'page.html' });
    expect(text(read)).toBe('<h1>edited by the agent</h1>');
    expect(read.structuredContent).toMatchObject({ path: 'page.html', truncated: false });

    const listing = ok(await call(agent, 'list_files', { id }));
    expect(listing.entries.map((e: { name: string }) => e.name).sort()).toEqual(['page.html', 'server.js']);

    const ran = await call(agent, 'exec', { id, cmd: 'cat page.html; echo oops >&2; exit 3' });
    expect(ran.isError).toBeFalsy();
    expect(ran.structuredContent).toMatchObject({
      exitCode: 3,
      stdout: '<h1>edited by the agent</h1>',
      stderr: 'oops\n',
      truncated: false,
    });
    expect(text(ran)).toContain('exit code 3');

    const logs = await waitFor(async () => {
      const answer = ok(await call(agent, 'app_logs', { id, tail: 50 }));
      return String(answer.logs).includes('agent app listening on 3000') ? answer : undefined;
    });
    expect(logs.truncated).toBe(false);

    // A snapshot of the edited files, and a fork that serves them with its app started fresh.
    const snap = ok(await call(agent, 'snapshot_sandbox', { id, name: 'edited' }));
    expect(snap).toMatchObject({ sandboxId: id, name: 'edited', owner: 'alice' });
    const forked = ok(await call(agent, 'fork_sandbox', { id, wait: true }));
    expect(forked.state).toBe('running');
    expect(forked.id).not.toBe(id);
    const forkLink = ok(await call(agent, 'get_preview_url', { id: forked.id }));
    expect(await preview(forkLink.url)).toEqual({ status: 200, body: '<h1>edited by the agent</h1>' });
    ok(await call(agent, 'delete_sandbox', { id: forked.id }));

    const listed = ok(await call(agent, 'list_sandboxes', { label: 'made=by-agent' }));
    expect(listed.sandboxes.map((s: { id: string }) => s.id)).toEqual([id]);

    ok(await call(agent, 'stop_sandbox', { id }));
    await waitFor(async () =>
      ok(await call(agent, 'get_sandbox', { id })).state === 'stopped' ? true : undefined,
    );
    expect(ok(await call(agent, 'start_sandbox', { id, wait: true })).state).toBe('running');
    expect(await preview(link.url)).toEqual({ status: 200, body: '<h1>edited by the agent</h1>' });

    expect(ok(await call(agent, 'delete_sandbox', { id }))).toEqual({ id, deleted: true });
    const gone = await call(agent, 'get_sandbox', { id });
    expect(gone.isError).toBe(true);
    expect(gone.structuredContent.error.code).toBe('sandbox_not_found');
  });

  it('errors carry the API code and hint, in the text and the structured content', async () => {
    const agent = await connect(ALICE);
    const missing = await call(agent, 'read_file', { id: aliceSandbox, path: 'nope.txt' });
    expect(missing.isError).toBe(true);
    expect(missing.structuredContent.error).toMatchObject({ code: 'file_not_found', status: 404 });
    expect(missing.structuredContent.error.hint).toMatch(/files\/list/);
    expect(text(missing)).toMatch(/^file_not_found: .*\nhint: /s);

    const outside = await call(agent, 'read_file', { id: aliceSandbox, path: '../../etc/passwd' });
    expect(outside.structuredContent.error.code).toBe('invalid_path');

    // Refused by the tool's own schema (the API's): no call is made.
    const badId = await call(agent, 'get_sandbox', { id: 'not-an-id' });
    expect(badId.isError).toBe(true);
    expect(text(badId)).toMatch(/Input validation error/);
  });

  it("a tenant key cannot reach another owner's sandbox through MCP, nor can an admin acting for that tenant", async () => {
    for (const bob of [await connect(BOB), await connect(TEST_KEY, 'bob')]) {
      for (const [tool, args] of [
        ['get_sandbox', {}],
        ['read_file', { path: 'notes.txt' }],
        ['list_files', {}],
        ['exec', { cmd: 'cat notes.txt' }],
        ['write_files', { files: { 'notes.txt': 'bob was here' } }],
        ['get_preview_url', {}],
        ['app_logs', {}],
        ['stop_sandbox', {}],
        ['start_sandbox', {}],
        ['snapshot_sandbox', {}],
        ['fork_sandbox', {}],
        ['delete_sandbox', {}],
      ] as const) {
        const answer = await call(bob, tool, { id: aliceSandbox, ...args });
        expect(answer.isError, `${tool}: ${text(answer)}`).toBe(true);
        expect(answer.structuredContent.error.code, tool).toBe('sandbox_not_found');
      }
      const listed = ok(await call(bob, 'list_sandboxes', {}));
      expect(listed.sandboxes.map((s: { id: string }) => s.id)).not.toContain(aliceSandbox);
    }
    // Untouched: still there, files as alice wrote them.
    const file = await request(`${server.url}/v1/sandboxes/${aliceSandbox}/files?path=notes.txt`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    expect(await file.body.text()).toBe('alice only');
  });

  it('creates through MCP count against the same per-owner rate limit as the REST API', async () => {
    const carol = await connect(CAROL);
    // An image outside the allowed list: the create is counted, then refused (no container made).
    for (let i = 0; i < CREATES_PER_WINDOW; i++) {
      const answer = await call(carol, 'create_sandbox', { image: 'example.invalid/not-allowed:1' });
      expect(answer.structuredContent.error.code).toBe('image_not_allowed');
    }
    const limited = await call(carol, 'create_sandbox', { files: { 'a.txt': 'a' } });
    expect(limited.structuredContent.error).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(limited.structuredContent.error.retryAfterSec).toBeGreaterThan(0);
    const rest = await server.call(
      'POST',
      '/v1/sandboxes',
      { files: { 'a.txt': 'a' } },
      { authorization: `Bearer ${CAROL}` },
    );
    expect(rest.status).toBe(429);
  });

  it('a wrong or missing key gets 401 unauthorized on /mcp, on every method', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    for (const headers of [{ authorization: 'Bearer wrong-key-0123456789abcdef' }, {}] as Record<
      string,
      string
    >[]) {
      for (const method of ['POST', 'GET', 'DELETE']) {
        const res = await fetch(`${server.url}/mcp`, {
          method,
          headers: {
            ...headers,
            accept: 'application/json, text/event-stream',
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          body: method === 'POST' ? JSON.stringify(init) : undefined,
        });
        expect(res.status, `${method} ${JSON.stringify(headers)}`).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
    }
    const client = new Client({ name: 'intruder', version: '1.0.0' });
    await expect(
      client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
          requestInit: { headers: { authorization: 'Bearer wrong-key-0123456789abcdef' } },
        }),
      ),
    ).rejects.toMatchObject({ code: 401, message: expect.stringContaining('unauthorized') });
  });

  it('answers 405 to GET and DELETE with a key (stateless: no stream, no session)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(`${server.url}/mcp`, {
        method,
        headers: { authorization: `Bearer ${ALICE}`, accept: 'text/event-stream' },
      });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
    }
  });

  it('`previewd mcp` serves the same tools on stdio, with the connection from PREVIEWD_URL and PREVIEWD_API_KEY', async () => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] => !e[0].startsWith('PREVIEWD_') && e[1] !== undefined,
      ),
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'src/cli/main.ts', 'mcp'],
      cwd: root,
      env: { ...env, PREVIEWD_URL: server.url, PREVIEWD_API_KEY: ALICE },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'desktop-agent', version: '1.0.0' });
    clients.push(client);
    await client.connect(transport);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('create_sandbox');
    expect(tools).toHaveLength(14);
    const listed = (await client.callTool({ name: 'list_sandboxes', arguments: {} })) as ToolAnswer;
    expect(listed.isError).toBeFalsy();
    expect(listed.structuredContent.sandboxes.map((s: { id: string }) => s.id)).toContain(aliceSandbox);
    const denied = (await client.callTool({
      name: 'read_file',
      arguments: { id: '01aaaaaaaaaaaaaaaaaaaaaaaa', path: 'x' },
    })) as ToolAnswer;
    expect(denied.structuredContent.error.code).toBe('sandbox_not_found');
    await client.close();
  });
});
