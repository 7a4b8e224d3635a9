import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The docs name only commands the CLI has, and the CLI reference names every command the CLI has.
 * The command list is read from the CLI itself (`previewd --help`, each command's `--help`), so a
 * command added later is held to the same rule.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** A documented command: `previewd <command> [<sub>]`, where it is written. */
interface Mention {
  words: string[];
  where: string;
  /** A row of a command table (docs/cli.md's reference), or code (a block or inline). */
  kind: 'table' | 'code';
}

/** Languages of code blocks that hold shell commands (a Python `from previewd import …` does not). */
const SHELL_BLOCKS = new Set(['', 'sh', 'bash', 'shell', 'console', 'text', 'sh-session']);

/**
 * `previewd <word> [<word>]` where `previewd` is the command itself: not `previewd/base`,
 * `previewd.yaml`, nor a quoted name such as the iptables comment "previewd egress".
 */
const INVOCATION = /(?<![\w/.@"'-])previewd[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?/g;

function invocations(text: string, where: string): Mention[] {
  return [...text.matchAll(INVOCATION)].map((m) => ({
    words: [m[1], m[2]].filter((w): w is string => Boolean(w)),
    where,
    kind: 'code' as const,
  }));
}

/** The first cell of a row of a table whose first header is "command": its code spans, `previewd` implied. */
function tableCommands(line: string, where: string): Mention[] {
  const first = line.split(/(?<!\\)\|/)[1] ?? '';
  return [...first.matchAll(/`([^`]+)`/g)].map((m) => {
    const words = (m[1] ?? '').replace(/^previewd\s+/, '').split(/\s+/);
    const [command, sub] = words;
    return {
      words: [command, sub && /^[a-z][a-z-]*$/.test(sub) ? sub : ''].filter(Boolean) as string[],
      where,
      kind: 'table' as const,
    };
  });
}

/** Every `previewd …` in code blocks, inline code and command tables of a Markdown file. */
function documentedCommands(markdown: string, file: string): Mention[] {
  const found: Mention[] = [];
  let fence: string | null = null;
  let commandTable = false;
  markdown.split('\n').forEach((line, index) => {
    const where = `${file}:${index + 1}`;
    const fenceMatch = /^\s*(```+|~~~+)\s*([\w-]*)/.exec(line);
    if (fenceMatch) {
      if (fence === null) fence = (fenceMatch[2] ?? '').toLowerCase();
      else fence = null;
      return;
    }
    if (fence !== null) {
      // A shell comment (`# CPU of previewd and dockerd`) is prose.
      if (SHELL_BLOCKS.has(fence)) found.push(...invocations(line.replace(/(^|\s)#.*$/, ''), where));
      return;
    }
    if (/^\|\s*command\s*\|/i.test(line)) {
      commandTable = true;
      return;
    }
    if (!line.startsWith('|')) commandTable = false;
    else if (commandTable && !/^\|\s*-+/.test(line)) found.push(...tableCommands(line, where));
    for (const span of line.matchAll(/`([^`]+)`/g)) found.push(...invocations(span[1] ?? '', where));
  });
  return found;
}

async function help(words: string[]): Promise<{ usage: string; commands: string[][]; out: string }> {
  const { stdout, stderr } = await run(
    process.execPath,
    ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...words, '--help'],
    { cwd: repo, env: { ...process.env, NO_COLOR: '1' } },
  ).catch((err: { stdout?: string; stderr?: string }) => ({
    stdout: err.stdout ?? '',
    stderr: `${err.stderr ?? ''}\n(exit ${String((err as { code?: unknown }).code)})`,
  }));
  const out = `${stdout}${stderr}`;
  const usage = /^Usage: (.*)$/m.exec(stdout)?.[1] ?? '';
  const lines = stdout.split('\n');
  const start = lines.indexOf('Commands:');
  const section = start < 0 ? [] : lines.slice(start + 1);
  const end = section.findIndex((l) => !l.startsWith(' '));
  const commands = (end < 0 ? section : section.slice(0, end))
    // A command's line starts with two spaces; its wrapped description with more.
    .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
    .filter((n): n is string => Boolean(n) && n !== 'help')
    .map((n) => n.split('|'));
  return { usage, commands, out };
}

/** `previewd ls|list [options]` names `ls` (and `list`) after the given parents. */
function usageNames(usage: string, parents: string[], word: string): boolean {
  const parts = usage.split(/\s+/);
  if (parts[0] !== 'previewd') return false;
  for (const [i, parent] of parents.entries())
    if (!(parts[i + 1] ?? '').split('|').includes(parent)) return false;
  return (parts[parents.length + 1] ?? '').split('|').includes(word);
}

const docFiles = [
  'README.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('docs name the commands the CLI has', () => {
  it('finds the command mentions it checks (the extraction itself)', () => {
    const sample = [
      '| command | what |',
      '| --- | --- |',
      '| `files ls <id> [path]` | a directory |',
      '| `start <id>` / `stop <id>` | and wait |',
      '',
      'Run `previewd up ./app` or `previewd logs -f <id>`; images are `previewd/base`.',
      '```console',
      '$ previewd keys create --owner carol',
      '$ PREVIEWD_URL=x previewd doctor && previewd ls   # then previewd and dockerd',
      '-A INPUT -m comment --comment "previewd egress" -j X',
      '```',
      '```python',
      'from previewd import Previewd',
      '```',
    ].join('\n');
    expect(documentedCommands(sample, 'x.md').map((m) => m.words.join(' '))).toEqual([
      'files ls',
      'start',
      'stop',
      'up',
      'logs',
      'keys create',
      'doctor',
      'ls',
    ]);
  });

  it('every `previewd <command> [<sub>]` in README.md and docs/*.md exists (its --help answers for it)', async () => {
    const mentions = docFiles.flatMap((f) => documentedCommands(readFileSync(join(repo, f), 'utf8'), f));
    expect(mentions.length).toBeGreaterThan(50);
    const byCommand = new Map<string, Mention[]>();
    for (const m of mentions)
      byCommand.set(m.words[0] as string, [...(byCommand.get(m.words[0] as string) ?? []), m]);

    const problems: string[] = [];
    for (const [command, seen] of byCommand) {
      const top = await help([command]);
      if (!usageNames(top.usage, [], command)) {
        problems.push(`previewd ${command} does not exist (named at ${seen.map((m) => m.where).join(', ')})`);
        continue;
      }
      // A command with subcommands: the word after it must be one of them.
      if (!top.commands.length) continue;
      const subs = new Map<string, string[]>();
      for (const m of seen) if (m.words[1]) subs.set(m.words[1], [...(subs.get(m.words[1]) ?? []), m.where]);
      for (const [sub, where] of subs) {
        const known = top.commands.some((names) => names.includes(sub));
        const own = await help([command, sub]);
        if (!known || !usageNames(own.usage, [command], sub)) {
          problems.push(`previewd ${command} ${sub} does not exist (named at ${where.join(', ')})`);
        }
      }
    }
    expect(problems).toEqual([]);
  }, 120_000);

  it('docs/cli.md documents every registered command and subcommand in its command table', async () => {
    const cliDoc = readFileSync(join(repo, 'docs/cli.md'), 'utf8');
    const table = documentedCommands(cliDoc, 'docs/cli.md')
      .filter((m) => m.kind === 'table')
      .map((m) => m.words.join(' '));
    const root = await help([]);
    expect(root.commands.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const names of root.commands) {
      if (!names.some((n) => table.includes(n) || table.some((t) => t.startsWith(`${n} `)))) {
        missing.push(names.join('|'));
      }
      const own = await help([names[0] as string]);
      for (const sub of own.commands) {
        if (!names.some((n) => sub.some((s) => table.includes(`${n} ${s}`)))) {
          missing.push(`${names[0]} ${sub.join('|')}`);
        }
      }
    }
    expect(missing).toEqual([]);
  }, 120_000);
});
