import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { ago, colour, run, table, writeJson, writeLine } from '../output.js';
import { findSandbox } from '../sandbox-ref.js';

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** `files ls|get|put|rm`: the sandbox's workspace (works while it is stopped; never wakes it). */
export function registerFilesCommands(program: Command, load: () => LoadedConfig): void {
  const files = program
    .command('files')
    .description("Read and write a sandbox's files (paths under /workspace)");

  files
    .command('ls <id> [path]')
    .description('List a directory')
    .option('-r, --recursive', 'the whole tree')
    .option('--json', 'print { entries, truncated } as JSON')
    .action(
      run(async (ref: string, path: string | undefined, flags: { recursive?: boolean; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        // The largest page (the server's default is 1 000); past it the listing says truncated.
        const list = await sandbox.files.list(path ?? '', { recursive: flags.recursive, limit: 10_000 });
        if (flags.json) return writeJson(list);
        writeLine(
          table(
            ['MODE', 'SIZE', 'MODIFIED', 'PATH'],
            list.entries.map((e) => [
              e.mode,
              e.type === 'directory' ? '-' : size(e.size),
              ago(e.mtime),
              e.type === 'directory'
                ? colour.cyan(`${e.path}/`)
                : e.target
                  ? `${e.path} -> ${e.target}`
                  : e.path,
            ]),
          ),
        );
        if (list.truncated) writeLine(colour.yellow('(truncated)'));
      }),
    );

  files
    .command('get <id> <path> [dest]')
    .description('Print a file, or save it to dest')
    .option('--json', 'print { path, content } as JSON (UTF-8)')
    .action(
      run(async (ref: string, path: string, dest: string | undefined, flags: { json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        const bytes = await sandbox.files.readBytes(path);
        if (dest) {
          writeFileSync(dest, bytes);
          if (flags.json) writeJson({ path, saved: dest, size: bytes.length });
          else
            process.stderr.write(
              `${colour.green('✓', process.stderr)} ${path} → ${dest} (${size(bytes.length)})\n`,
            );
          return;
        }
        if (flags.json) return writeJson({ path, content: Buffer.from(bytes).toString('utf8') });
        process.stdout.write(bytes);
      }),
    );

  files
    .command('put <id> <local> <path>')
    .description('Upload a local file ("-" reads stdin) to path')
    .option('-m, --mode <octal>', 'permission bits, e.g. 0755')
    .option('--json', 'print the written entry as JSON')
    .action(
      run(async (ref: string, local: string, path: string, flags: { mode?: string; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        const content = readFileSync(local === '-' ? 0 : local);
        const entry = await sandbox.files.write(path, content, { mode: flags.mode });
        if (flags.json) return writeJson(entry);
        writeLine(`${colour.green('✓')} ${entry.path} (${size(entry.size)}, ${entry.mode})`);
      }),
    );

  files
    .command('rm <id> <path>')
    .description('Remove a file (a directory with -r)')
    .option('-r, --recursive', 'a whole directory')
    .option('--json', 'print { removed } as JSON')
    .action(
      run(async (ref: string, path: string, flags: { recursive?: boolean; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        await sandbox.files.remove(path, { recursive: flags.recursive });
        if (flags.json) return writeJson({ removed: path });
        writeLine(`${colour.green('✓')} removed ${path}`);
      }),
    );
}
