import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CreateSandboxRequest, Previewd, Sandbox, SandboxInfo } from '@previewd/sdk';
import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { ago, colour, run, stateColour, table, withSpinner, writeJson, writeLine } from '../output.js';
import { type ProjectArchive, packProject } from '../project-files.js';
import { findSandbox } from '../sandbox-ref.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const port = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('a port is 1-65535');
  return n;
};
const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number of seconds');
  return n;
};

function pairs(list: string[] | undefined, what: string): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`${what} "${item}" must be KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export interface CreateFlags {
  start?: string;
  install?: string;
  port?: number[];
  image?: string;
  env?: string[];
  label?: string[];
  private?: boolean;
  idleTimeout?: number;
  ttl?: number;
  git?: string;
  ref?: string;
  gitTokenEnv?: string;
  wait: boolean;
  json?: boolean;
}

/**
 * Creates a sandbox from a local folder (sent as one tar.gz) and flags, and with `wait`
 * follows it until it runs and its port answers. Shared with `previewd up` (runtimes issue).
 */
export async function createFromDirectory(
  client: Previewd,
  dir: string | undefined,
  flags: CreateFlags,
): Promise<Sandbox> {
  const request: CreateSandboxRequest = {};
  let project: ProjectArchive | undefined;
  if (dir) {
    const root = resolve(dir);
    if (!existsSync(root) || !statSync(root).isDirectory()) {
      throw new InvalidArgumentError(`${dir} is not a directory`);
    }
    project = await packProject(root);
  }
  if (flags.git) {
    if (project) throw new InvalidArgumentError('give a folder or --git, not both');
    const token = flags.gitTokenEnv ? process.env[flags.gitTokenEnv] : undefined;
    if (flags.gitTokenEnv && !token) throw new InvalidArgumentError(`$${flags.gitTokenEnv} is empty`);
    request.source = {
      git: { url: flags.git, ...(flags.ref ? { ref: flags.ref } : {}), ...(token ? { token } : {}) },
    };
  }
  const runtime: NonNullable<CreateSandboxRequest['runtime']> = {};
  if (flags.start) runtime.start = flags.start;
  if (flags.install !== undefined) runtime.install = flags.install;
  if (flags.port?.[0]) runtime.port = flags.port[0];
  if (Object.keys(runtime).length > 0) request.runtime = runtime;
  if (flags.port?.length) request.ports = flags.port;
  if (flags.image) request.image = flags.image;
  const env = pairs(flags.env, '--env');
  if (env) request.env = env;
  const labels = pairs(flags.label, '--label');
  if (labels) request.labels = labels;
  if (flags.private) request.visibility = 'private';
  if (flags.idleTimeout !== undefined) request.idleTimeoutSec = flags.idleTimeout;
  if (flags.ttl !== undefined) request.ttlSec = flags.ttl;

  const json = Boolean(flags.json);
  const sandbox = await withSpinner('Creating sandbox', json, async (s) => {
    // One archive: every file (binary ones too) is in place before the app starts.
    if (project)
      s.update(`Uploading ${project.files} files (${Math.ceil(project.archive.length / 1024)} KiB)`);
    const created = project
      ? await client.sandboxes.createFromArchive(project.archive, request)
      : await client.sandboxes.create(request);
    s.succeed(`Created ${created.id} (${created.info.runtime.framework ?? created.info.runtime.source})`);
    return created;
  });
  if (!flags.wait) return sandbox;
  await withSpinner('Starting (install and dev server)', json, async (s) => {
    await sandbox.waitUntil('running', { timeoutMs: 10 * 60_000 });
    const appPort = sandbox.info.runtime.port ?? sandbox.info.ports[0];
    if (appPort !== undefined) {
      s.update(`Waiting for port ${appPort}`);
      await sandbox.waitForPort(appPort, { timeoutMs: 10 * 60_000 });
    }
    s.succeed(appPort !== undefined ? `Running, port ${appPort} open` : 'Running');
  });
  return sandbox.refresh();
}

function printSandbox(info: SandboxInfo): void {
  const rows: Array<[string, string]> = [
    ['id', info.id],
    ['state', stateColour(info.state)],
    ['image', info.image],
    [
      'runtime',
      [info.runtime.framework, info.runtime.start].filter(Boolean).join(': ') || info.runtime.source,
    ],
    ['ports', info.ports.join(', ') || '-'],
    ['visibility', info.visibility],
    ['created', `${info.createdAt} (${ago(info.createdAt)})`],
    ['last activity', ago(info.lastActivityAt)],
  ];
  if (info.error) rows.push(['error', colour.red(`${info.error.code}: ${info.error.message}`)]);
  for (const [k, v] of Object.entries(info.labels)) rows.push([`label ${k}`, v]);
  for (const [key, value] of rows) writeLine(`${colour.dim(key.padEnd(14))}${value}`);
  for (const p of info.previews)
    writeLine(`${colour.dim(`preview ${p.port}`.padEnd(14))}${colour.cyan(p.url)}`);
}

export function registerSandboxCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('create [dir]')
    .description('Create a sandbox from a local folder (files are uploaded; node_modules and .git are not)')
    .option('--start <cmd>', 'start command (default: detected from the files)')
    .option('--install <cmd>', 'install command (default: detected; "" for none)')
    .option(
      '-p, --port <port>',
      'port to expose (repeat; the first is the app port)',
      (v, prev: number[] = []) => [...prev, port(v)],
    )
    .option('--image <image>', 'container image (default: from the detected runtime)')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeat)', collect)
    .option('-l, --label <key=value>', 'label (repeat)', collect)
    .option('--private', 'previews need a token (previewd token)')
    .option('--idle-timeout <sec>', 'stop after this long without activity', positiveInt)
    .option('--ttl <sec>', 'delete after this long', positiveInt)
    .option('--git <url>', 'clone this repository (https, http or git URL) instead of uploading a folder')
    .option('--ref <ref>', 'with --git: the branch, tag or commit (default: the remote HEAD)')
    .option('--git-token-env <NAME>', 'with --git: read the access token from this environment variable')
    .option('--no-wait', 'answer at once instead of waiting until the app port is open')
    .option('--json', 'print the sandbox as JSON')
    .action(
      run(async (dir: string | undefined, flags: CreateFlags) => {
        const sandbox = await createFromDirectory(connect(load), dir, flags);
        if (flags.json) return writeJson(sandbox.info);
        printSandbox(sandbox.info);
      }),
    );

  program
    .command('ls')
    .alias('list')
    .description('List sandboxes, newest first')
    .option('--state <state>', 'only this state')
    .option('-l, --label <key=value>', 'only with this label (repeat)', collect)
    .option('--json', 'print the sandboxes as JSON')
    .action(
      run(async (flags: { state?: SandboxInfo['state']; label?: string[]; json?: boolean }) => {
        const client = connect(load);
        const list: SandboxInfo[] = [];
        for await (const s of client.sandboxes.all({
          state: flags.state,
          labels: pairs(flags.label, '--label'),
        })) {
          list.push(s.info);
        }
        if (flags.json) return writeJson(list);
        if (list.length === 0)
          return writeLine(colour.dim('No sandboxes. Create one with: previewd create <dir>'));
        writeLine(
          table(
            ['ID', 'STATE', 'RUNTIME', 'PORTS', 'CREATED', 'PREVIEW'],
            list.map((s) => [
              s.id,
              stateColour(s.state),
              s.runtime.framework ?? s.image,
              s.ports.join(',') || '-',
              ago(s.createdAt),
              s.previews[0]?.url ?? '-',
            ]),
          ),
        );
      }),
    );

  program
    .command('get <id>')
    .alias('inspect')
    .description('Show one sandbox (an id prefix is enough)')
    .option('--json', 'print the sandbox as JSON')
    .action(
      run(async (ref: string, flags: { json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        if (flags.json) return writeJson(sandbox.info);
        printSandbox(sandbox.info);
      }),
    );

  program
    .command('start <id>')
    .description('Start (or resume) a sandbox and wait until it runs')
    .option('--no-wait', 'answer at once')
    .option('--json', 'print the sandbox as JSON')
    .action(
      run(async (ref: string, flags: { wait: boolean; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        await withSpinner(`Starting ${sandbox.id}`, Boolean(flags.json), async (s) => {
          await sandbox.start();
          if (flags.wait) await sandbox.waitUntil('running', { timeoutMs: 5 * 60_000 });
          s.succeed(`${sandbox.id} ${sandbox.state}`);
        });
        if (flags.json) writeJson(sandbox.info);
      }),
    );

  program
    .command('stop <id>')
    .description('Stop a sandbox (files are kept; a preview request wakes it)')
    .option('--no-wait', 'answer at once')
    .option('--json', 'print the sandbox as JSON')
    .action(
      run(async (ref: string, flags: { wait: boolean; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        await withSpinner(`Stopping ${sandbox.id}`, Boolean(flags.json), async (s) => {
          await sandbox.stop();
          if (flags.wait) await sandbox.waitUntil('stopped', { timeoutMs: 2 * 60_000 });
          s.succeed(`${sandbox.id} ${sandbox.state}`);
        });
        if (flags.json) writeJson(sandbox.info);
      }),
    );

  program
    .command('rm <ids...>')
    .alias('delete')
    .description('Delete sandboxes, their containers and their files')
    .option('--json', 'print the deleted ids as JSON')
    .action(
      run(async (refs: string[], flags: { json?: boolean }) => {
        const client = connect(load);
        const deleted: string[] = [];
        for (const ref of refs) {
          const sandbox = await findSandbox(client, ref);
          await sandbox.delete();
          deleted.push(sandbox.id);
          if (!flags.json) writeLine(`${colour.green('✓')} deleted ${sandbox.id}`);
        }
        if (flags.json) writeJson({ deleted });
      }),
    );
}
