import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { GitSourceInput } from '../domain/schemas.js';
import { checkGitUrl, pinnedUrl, type Resolve } from './git-url.js';
import { scanTree, type TreeScan } from './tree-copy.js';

/** A checked-out repository in previewd's own temporary folder, scanned and ready to copy. */
export interface ClonedTree {
  dir: string;
  scan: TreeScan;
  remove(): Promise<void>;
}

/** Configuration every git command of a clone runs with (before the repository's own, which has none). */
const SAFE_CONFIG: Record<string, string> = {
  'core.hooksPath': '/dev/null',
  'core.fsmonitor': 'false',
  'core.autocrlf': 'false',
  'core.askPass': '',
  'credential.helper': '',
  'protocol.allow': 'never',
  'protocol.https.allow': 'always',
  'protocol.http.allow': 'always',
  'protocol.git.allow': 'always',
  'protocol.file.allow': 'never',
  'protocol.ext.allow': 'never',
  'http.followRedirects': 'false',
  'submodule.recurse': 'false',
  'fetch.recurseSubmodules': 'false',
  'advice.detachedHead': 'false',
  'init.defaultBranch': 'main',
  'filter.lfs.required': 'false',
  'filter.lfs.smudge': '',
  'filter.lfs.process': '',
};

const MAX_STDERR = 4096;

interface RunContext {
  env: NodeJS.ProcessEnv;
  deadline: number;
  timeoutSec: number;
  secrets: string[];
  /** Throws (kills git) when the clone grows past its bound. */
  watchSize: () => Promise<void>;
}

/** Runs one git command with the safe configuration; its error is git_clone_failed with git's words. */
function runGit(ctx: RunContext, cwd: string, args: string[]): Promise<string> {
  const argv = [...Object.entries(SAFE_CONFIG).flatMap(([k, v]) => ['-c', `${k}=${v}`]), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('git', argv, { cwd, env: ctx.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killedFor: PreviewdError | undefined;
    const kill = (err: PreviewdError) => {
      killedFor ??= err;
      child.kill('SIGKILL');
    };
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 1024 * 1024) stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-MAX_STDERR);
    });
    const left = Math.max(1, ctx.deadline - Date.now());
    const timer = setTimeout(
      () => kill(failed(`the clone took longer than ${ctx.timeoutSec} s (sources.gitTimeoutSec)`)),
      left,
    );
    let measuring = false;
    const poll = setInterval(() => {
      if (measuring) return;
      measuring = true;
      ctx
        .watchSize()
        .catch((err) => kill(err as PreviewdError))
        .finally(() => {
          measuring = false;
        });
    }, 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(failed(`git could not run: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      if (killedFor) return reject(killedFor);
      if (code === 0) return resolve(stdout);
      let words = stderr.trim();
      for (const secret of ctx.secrets) words = words.split(secret).join('***');
      reject(failed(`git ${args[0]} failed: ${words || `exit ${code}`}`));
    });
  });
}

function failed(message: string): PreviewdError {
  return new PreviewdError('git_clone_failed', message);
}

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOf(full);
    else if (entry.isFile()) total += (await stat(full).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/**
 * Clones `git` on the host into a temporary folder: `git init`, `git fetch --depth` of the ref (or
 * HEAD) from the checked, pinned URL, a checkout of what was fetched; submodules only when asked.
 * No hooks run (core.hooksPath=/dev/null), no host or user git configuration is read, only the
 * https/http/git transports are allowed, redirects are not followed, a token goes in an
 * Authorization header of these commands only (through the environment, never the command line
 * or a file). Bounded by sources.gitTimeoutSec and sources.maxGitMb; `.git` is not kept.
 */
export async function cloneRepository(
  git: GitSourceInput,
  config: Pick<Config, 'sources'>,
  opts: { resolve?: Resolve } = {},
): Promise<ClonedTree> {
  const { sources } = config;
  const allowPrivate = sources.allowPrivateGit;
  const target = await checkGitUrl(git.url, { allowPrivate, resolve: opts.resolve });
  if (git.token && target.url.protocol === 'git:') {
    throw new PreviewdError('git_source_refused', 'a token needs an https:// (or http://) URL, not git://');
  }
  const pinned = pinnedUrl(target);
  const root = await mkdtemp(join(tmpdir(), 'previewd-git-'));
  const remove = () => rm(root, { recursive: true, force: true });
  try {
    const repo = join(root, 'repo');
    const home = join(root, 'home');
    await mkdir(repo, { mode: 0o700 });
    await mkdir(home, { mode: 0o700 });
    const extra: Record<string, string> = { ...pinned.config };
    const secrets: string[] = [];
    if (git.token) {
      const basic = Buffer.from(`x-access-token:${git.token}`).toString('base64');
      extra['http.extraHeader'] = `Authorization: Basic ${basic}`;
      secrets.push(git.token, basic);
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      LANG: 'C',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_ASKPASS: '/bin/false',
      SSH_ASKPASS: '/bin/false',
      GIT_ALLOW_PROTOCOL: 'https:http:git',
      GIT_CONFIG_COUNT: String(Object.keys(extra).length),
    };
    Object.entries(extra).forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
    });
    const maxBytes = sources.maxGitMb * 1024 * 1024;
    const ctx: RunContext = {
      env,
      deadline: Date.now() + sources.gitTimeoutSec * 1000,
      timeoutSec: sources.gitTimeoutSec,
      secrets,
      watchSize: async () => {
        const size = await sizeOf(root);
        if (size > maxBytes)
          throw new PreviewdError(
            'payload_too_large',
            `the clone is above ${sources.maxGitMb} MB (sources.maxGitMb)`,
          );
      },
    };
    const depth = String(git.depth ?? 1);
    await runGit(ctx, repo, ['init', '-q', '.']);
    await runGit(ctx, repo, [
      'fetch',
      '-q',
      `--depth=${depth}`,
      '--no-tags',
      '--no-recurse-submodules',
      '--',
      pinned.url,
      git.ref ?? 'HEAD',
    ]);
    await runGit(ctx, repo, ['checkout', '-q', '--no-recurse-submodules', 'FETCH_HEAD']);
    if (git.submodules) await cloneSubmodules(ctx, repo, depth, allowPrivate, opts.resolve);
    await ctx.watchSize();
    const scan = await scanTree(repo, { maxEntries: sources.maxEntries, maxBytes, skip: ['.git'] });
    return { dir: repo, scan, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** One level of submodules, each URL checked like the repository's own (relative URLs refused). */
async function cloneSubmodules(
  ctx: RunContext,
  repo: string,
  depth: string,
  allowPrivate: boolean,
  resolve?: Resolve,
): Promise<void> {
  const listed = await runGit(ctx, repo, [
    'config',
    '--file',
    '.gitmodules',
    '--get-regexp',
    '^submodule\\..*\\.url$',
  ]).catch(() => '');
  for (const line of listed.split('\n').filter(Boolean)) {
    const url = line.slice(line.indexOf(' ') + 1);
    if (!/^[a-z]+:\/\//i.test(url)) {
      throw new PreviewdError(
        'git_source_refused',
        `the submodule URL ${url} is not an absolute https/http/git URL`,
      );
    }
    await checkGitUrl(url, { allowPrivate, resolve });
  }
  if (listed) await runGit(ctx, repo, ['submodule', 'update', '-q', '--init', `--depth=${depth}`]);
}
