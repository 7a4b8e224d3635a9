/**
 * The previewd tools an agent gets over MCP. Every tool is a call of the previewd API through
 * the TypeScript SDK, as the client it was given: over stdio that is the CLI's connection (URL
 * and key), over HTTP the caller of /mcp with its own credentials (src/api/routes/mcp.ts). So a
 * tool can do exactly what its caller could do with the REST API, nothing more.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ExecResult, FileBatchResult, FileEntries, Previewd, SandboxList } from '@previewd/sdk';
import { decodeCut, readBounded } from './bounded-body.js';
import { jsonResult, keepTail, toolCall } from './tool-results.js';
import {
  type AppLogsArgs,
  appLogsInput,
  type CreateSandboxArgs,
  createSandboxInput,
  DEFAULT_WAIT_SEC,
  type ExecArgs,
  execInput,
  type ForkArgs,
  forkInput,
  type ListFilesArgs,
  type ListSandboxesArgs,
  listFilesInput,
  listSandboxesInput,
  type PreviewUrlArgs,
  previewUrlInput,
  type ReadFileArgs,
  readFileInput,
  type SnapshotArgs,
  type StartSandboxArgs,
  sandboxIdInput,
  snapshotInput,
  startSandboxInput,
  type WriteFilesArgs,
  writeFilesInput,
} from './tool-schemas.js';

/** Bounds on what one tool answer carries (an agent's context is small; the API's are larger). */
export const TOOL_LIMITS = {
  /** read_file: bytes of the file returned. */
  readBytes: 1024 * 1024,
  /** exec: characters kept of stdout and of stderr each (their ends). */
  execChars: 64 * 1024,
  /** app_logs: characters kept (the end), bytes read at most, and the default number of lines. */
  logChars: 128 * 1024,
  logReadBytes: 8 * 1024 * 1024,
  logTail: 200,
} as const;

const base = (id: string) => `/v1/sandboxes/${encodeURIComponent(id)}`;

export function registerPreviewdTools(server: McpServer, client: Previewd): void {
  const { http } = client;

  server.registerTool(
    'create_sandbox',
    {
      title: 'Create a sandbox',
      description:
        'Creates a sandbox from files and/or a template (vite-react, vite-vue, next, express, fastapi, flask, static), with optional runtime overrides (image, install, start, port, env), ports, visibility (public, or private: previews need a token, see get_preview_url), resources and lifetimes. Answers at once in state creating, or with `wait` once it is running.',
      inputSchema: createSandboxInput,
    },
    (args: CreateSandboxArgs) =>
      toolCall(async () => {
        const { wait, waitTimeoutSec, ...body } = args;
        const sandbox = await client.sandboxes.create(body);
        if (wait)
          await sandbox.waitUntil('running', { timeoutMs: (waitTimeoutSec ?? DEFAULT_WAIT_SEC) * 1000 });
        return jsonResult(sandbox.info);
      }),
  );

  server.registerTool(
    'list_sandboxes',
    {
      title: 'List sandboxes',
      description: 'Your sandboxes, newest first (one page; pass nextCursor as cursor for the next).',
      inputSchema: listSandboxesInput,
      annotations: { readOnlyHint: true },
    },
    (args: ListSandboxesArgs) =>
      toolCall(async () => jsonResult(await http.json<SandboxList>('GET', '/v1/sandboxes', { query: args }))),
  );

  server.registerTool(
    'get_sandbox',
    {
      title: 'Get a sandbox',
      description: 'State, runtime plan, ports, preview URLs, error (if any) of one sandbox.',
      inputSchema: sandboxIdInput,
      annotations: { readOnlyHint: true },
    },
    ({ id }: { id: string }) => toolCall(async () => jsonResult((await client.sandboxes.get(id)).info)),
  );

  server.registerTool(
    'start_sandbox',
    {
      title: 'Start a sandbox',
      description:
        'Starts (or resumes) a stopped or paused sandbox; with `wait`, answers once it is running.',
      inputSchema: startSandboxInput,
      annotations: { idempotentHint: true },
    },
    ({ id, wait, waitTimeoutSec }: StartSandboxArgs) =>
      toolCall(async () => {
        const sandbox = await (await client.sandboxes.get(id)).start();
        if (wait)
          await sandbox.waitUntil('running', { timeoutMs: (waitTimeoutSec ?? DEFAULT_WAIT_SEC) * 1000 });
        return jsonResult(sandbox.info);
      }),
  );

  server.registerTool(
    'stop_sandbox',
    {
      title: 'Stop a sandbox',
      description: 'Stops the sandbox; its files stay, and a preview request or start_sandbox wakes it.',
      inputSchema: sandboxIdInput,
      annotations: { idempotentHint: true },
    },
    ({ id }: { id: string }) =>
      toolCall(async () => jsonResult(await http.json<Record<string, unknown>>('POST', `${base(id)}/stop`))),
  );

  server.registerTool(
    'delete_sandbox',
    {
      title: 'Delete a sandbox',
      description: 'Deletes the sandbox, its container and its files, for good.',
      inputSchema: sandboxIdInput,
      annotations: { destructiveHint: true, idempotentHint: true },
    },
    ({ id }: { id: string }) =>
      toolCall(async () => {
        await http.json('DELETE', base(id));
        return jsonResult({ id, deleted: true }, `sandbox ${id} deleted`);
      }),
  );

  server.registerTool(
    'snapshot_sandbox',
    {
      title: 'Snapshot a sandbox',
      description:
        "Freezes the sandbox's files as they are now (not its processes' memory) into a snapshot; create_sandbox with `snapshot: <id>` starts new sandboxes from it at once.",
      inputSchema: snapshotInput,
    },
    ({ id, ...opts }: SnapshotArgs) =>
      toolCall(async () => jsonResult({ ...(await (await client.sandboxes.get(id)).snapshot(opts)) })),
  );

  server.registerTool(
    'fork_sandbox',
    {
      title: 'Fork a sandbox',
      description:
        "A new sandbox from this one's files as they are now, its app started fresh (A/B work, trying a change safely); with `wait`, answers once it is running.",
      inputSchema: forkInput,
    },
    ({ id, wait, waitTimeoutSec, ...opts }: ForkArgs) =>
      toolCall(async () => {
        const forked = await (await client.sandboxes.get(id)).fork(opts);
        if (wait)
          await forked.waitUntil('running', { timeoutMs: (waitTimeoutSec ?? DEFAULT_WAIT_SEC) * 1000 });
        return jsonResult(forked.info);
      }),
  );

  server.registerTool(
    'write_files',
    {
      title: 'Write files',
      description:
        'Writes files into the workspace (path → content; parents created, all paths checked before any write). The dev server sees the change (hot reload).',
      inputSchema: writeFilesInput,
    },
    ({ id, ...body }: WriteFilesArgs) =>
      toolCall(async () =>
        jsonResult(await http.json<FileBatchResult>('POST', `${base(id)}/files/batch`, { body })),
      ),
  );

  server.registerTool(
    'read_file',
    {
      title: 'Read a file',
      description: `A file of the workspace as UTF-8 text (at most ${TOOL_LIMITS.readBytes} bytes; \`truncated\` says when there was more).`,
      inputSchema: readFileInput,
      annotations: { readOnlyHint: true },
    },
    ({ id, path }: ReadFileArgs) =>
      toolCall(async () => {
        const res = await http.send('GET', `${base(id)}/files`, { query: { path } });
        const { bytes, truncated } = await readBounded(res, TOOL_LIMITS.readBytes);
        const content = decodeCut(bytes, truncated);
        return jsonResult({ path, content, truncated }, content);
      }),
  );

  server.registerTool(
    'list_files',
    {
      title: 'List files',
      description: 'Entries of a workspace directory (recursive on request; one page, see nextCursor).',
      inputSchema: listFilesInput,
      annotations: { readOnlyHint: true },
    },
    ({ id, ...query }: ListFilesArgs) =>
      toolCall(async () =>
        jsonResult(await http.json<FileEntries>('GET', `${base(id)}/files/list`, { query })),
      ),
  );

  server.registerTool(
    'exec',
    {
      title: 'Run a command',
      description: `Runs a command in the sandbox (a string through sh -c, or argv) and waits for it; a non-zero exit code is a result, not an error. Keeps the last ${TOOL_LIMITS.execChars} characters of stdout and of stderr.`,
      inputSchema: execInput,
    },
    ({ id, ...body }: ExecArgs) =>
      toolCall(async () => {
        const result = await http.json<ExecResult>('POST', `${base(id)}/exec`, { body });
        return execResult(result);
      }),
  );

  server.registerTool(
    'get_preview_url',
    {
      title: 'Get the preview URL',
      description:
        'The preview URL of a port (default: the app port). For a private sandbox a preview token is minted and the URL carries it (it becomes a cookie on first visit; programs may send it as X-Previewd-Token).',
      inputSchema: previewUrlInput,
      annotations: { readOnlyHint: true },
    },
    (args: PreviewUrlArgs) => toolCall(() => previewUrl(client, args)),
  );

  server.registerTool(
    'app_logs',
    {
      title: 'App logs',
      description: `The last lines of the app's own output (install and dev server), stdout and stderr interleaved (default ${TOOL_LIMITS.logTail} lines).`,
      inputSchema: appLogsInput,
      annotations: { readOnlyHint: true },
    },
    (args: AppLogsArgs) => toolCall(() => appLogs(client, args)),
  );
}

function execResult(result: ExecResult): CallToolResult {
  const stdout = keepTail(result.stdout, TOOL_LIMITS.execChars);
  const stderr = keepTail(result.stderr, TOOL_LIMITS.execChars);
  const truncated = Boolean(result.truncated) || stdout.truncated || stderr.truncated;
  const value = { ...result, stdout: stdout.text, stderr: stderr.text, truncated };
  const text = [
    `exit code ${result.exitCode} (${Math.round(result.durationMs)} ms)${truncated ? ', output truncated' : ''}`,
    ...(stdout.text ? ['--- stdout ---', stdout.text] : []),
    ...(stderr.text ? ['--- stderr ---', stderr.text] : []),
  ].join('\n');
  return jsonResult(value, text);
}

async function previewUrl(client: Previewd, args: PreviewUrlArgs): Promise<CallToolResult> {
  const sandbox = await client.sandboxes.get(args.id);
  const { visibility, runtime, ports } = sandbox.info;
  const port =
    args.port ?? (runtime.port !== undefined && ports.includes(runtime.port) ? runtime.port : ports[0]);
  if (visibility === 'private') {
    const token = await sandbox.previewTokens.create({
      ...(port !== undefined ? { port } : {}),
      ttlSec: args.ttlSec,
    });
    return jsonResult({ url: token.url, port, visibility, expiresAt: token.expiresAt }, token.url);
  }
  // No port at all: the SDK answers port_not_exposed, as the API does.
  const url = await sandbox.getPreviewUrl(port ?? 0);
  return jsonResult({ url, port, visibility }, url);
}

async function appLogs(client: Previewd, { id, tail, since }: AppLogsArgs): Promise<CallToolResult> {
  const res = await client.http.send('GET', `${base(id)}/logs`, {
    query: { tail: tail ?? TOOL_LIMITS.logTail, since, follow: false },
    headers: { accept: 'application/x-ndjson' },
  });
  // NDJSON `{ stream, data }` lines; the stream ends by itself without `follow`.
  const { bytes, truncated: cut } = await readBounded(res, TOOL_LIMITS.logReadBytes);
  let text = '';
  for (const line of decodeCut(bytes, cut).split('\n')) {
    if (!line.trim()) continue;
    try {
      const item = JSON.parse(line) as { data?: unknown };
      if (typeof item.data === 'string') text += item.data;
    } catch {
      // a line cut by the byte bound
    }
  }
  const kept = keepTail(text, TOOL_LIMITS.logChars);
  const truncated = cut || kept.truncated;
  return jsonResult({ id, logs: kept.text, truncated }, kept.text || '(no output yet)');
}
