import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { run, writeJson } from '../output.js';
import { findSandbox } from '../sandbox-ref.js';

const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of seconds');
  return n;
};

/** `exec` and `logs`: output streamed as it comes; `exec` exits with the command's exit code. */
export function registerExecCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('exec <id> <cmd...>')
    .description('Run a command in a sandbox (one argument runs through sh -c; several run as argv)')
    .option('-w, --cwd <dir>', 'working directory (default /workspace)')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeat)', (v: string, p: string[] = []) => [
      ...p,
      v,
    ])
    .option('-t, --timeout <sec>', 'kill it after this long', seconds)
    .option('-i, --stdin', "send this CLI's stdin to the command (read to the end first)")
    .option('--json', 'wait for it and print { exitCode, stdout, stderr, durationMs }')
    .passThroughOptions()
    .action(
      run(
        async (
          ref: string,
          cmd: string[],
          flags: { cwd?: string; env?: string[]; timeout?: number; stdin?: boolean; json?: boolean },
        ) => {
          const sandbox = await findSandbox(connect(load), ref);
          const env: Record<string, string> = {};
          for (const pair of flags.env ?? []) {
            const eq = pair.indexOf('=');
            if (eq <= 0) throw new InvalidArgumentError(`--env "${pair}" must be KEY=VALUE`);
            env[pair.slice(0, eq)] = pair.slice(eq + 1);
          }
          const command = cmd.length === 1 ? (cmd[0] as string) : cmd;
          const opts = {
            ...(flags.cwd ? { cwd: flags.cwd } : {}),
            ...(Object.keys(env).length ? { env } : {}),
            ...(flags.timeout ? { timeoutSec: flags.timeout } : {}),
            ...(flags.stdin ? { stdin: readFileSync(0, 'utf8') } : {}),
          };
          if (flags.json) {
            const result = await sandbox.exec(command, opts);
            writeJson(result);
            process.exitCode = result.exitCode;
            return;
          }
          const controller = new AbortController();
          process.once('SIGINT', () => controller.abort());
          for await (const item of sandbox.execStream(command, { ...opts, signal: controller.signal })) {
            if ('stream' in item)
              (item.stream === 'stderr' ? process.stderr : process.stdout).write(item.data);
            else process.exitCode = item.exitCode;
          }
        },
      ),
    );

  program
    .command('logs <id>')
    .description("The app's output (install and dev server)")
    .option('-f, --follow', 'keep streaming new output')
    .option('-n, --tail <lines>', 'only the last lines', seconds)
    .option('--since <unixSec>', 'only output after this time', seconds)
    .option('--json', 'one JSON object per chunk: { stream, data }')
    .action(
      run(async (ref: string, flags: { follow?: boolean; tail?: number; since?: number; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort());
        try {
          for await (const chunk of sandbox.logs({
            follow: flags.follow,
            tail: flags.tail,
            since: flags.since,
            signal: controller.signal,
          })) {
            if (flags.json) process.stdout.write(`${JSON.stringify(chunk)}\n`);
            else (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(chunk.data);
          }
        } catch (err) {
          if (!controller.signal.aborted) throw err;
        }
      }),
    );
}
