import { existsSync, readFileSync, statSync, watch } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Sandbox } from '@previewd/sdk';
import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { isIgnored, parseGitignore } from '../gitignore.js';
import { colour, run, withSpinner, writeLine } from '../output.js';
import { packProject } from '../project-files.js';

/** Never synced, whatever .gitignore says (readProjectFiles skips the same on the first upload). */
const SKIPPED = /(^|\/)(node_modules|\.git|\.venv|venv|__pycache__|\.next|\.cache)(\/|$)/;
const DEBOUNCE_MS = 120;

interface UpFlags {
  rm?: boolean;
}

/**
 * `previewd up [dir]`: creates a sandbox from a local folder (.gitignore honoured; node_modules and
 * .git skipped), prints the preview URL, streams the app's logs, syncs changed files (debounced)
 * until Ctrl-C, then stops the sandbox (`--rm`: deletes it).
 */
export function registerUpCommand(program: Command, load: () => LoadedConfig): void {
  program
    .command('up')
    .argument('[dir]', 'the project folder', '.')
    .description('Run a local folder in a sandbox: preview URL, live logs, changes synced until Ctrl-C')
    .option('--rm', 'delete the sandbox on exit (default: stop it)')
    .action(
      run(async (dir: string, flags: UpFlags) => {
        const root = resolve(dir);
        if (!existsSync(root) || !statSync(root).isDirectory()) {
          throw new InvalidArgumentError(`${dir} is not a directory`);
        }
        const gitignore = join(root, '.gitignore');
        const rules = existsSync(gitignore) ? parseGitignore(readFileSync(gitignore, 'utf8')) : [];
        const keep = (path: string) => !SKIPPED.test(path) && !isIgnored(rules, path);
        const project = await packProject(root, keep);
        const client = connect(load);

        const sandbox: Sandbox = await withSpinner('Creating sandbox', false, async (s) => {
          const total = project.files;
          s.update(`Uploading ${total} files (${Math.ceil(project.archive.length / 1024)} KiB)`);
          // One tar.gz: every file, binary ones too, is in the workspace before the app starts.
          const created = await client.sandboxes.createFromArchive(project.archive, {
            labels: { 'previewd.up': 'true' },
          });
          s.succeed(
            `Created ${created.id} (${created.info.runtime.framework ?? created.info.runtime.source}), ${total} files`,
          );
          return created;
        });
        const url = sandbox.info.previews[0]?.url;
        writeLine(url ? `${colour.bold('Preview:')} ${colour.cyan(url)}` : colour.dim('No port to preview.'));
        writeLine(colour.dim(`Watching ${root} — Ctrl-C to ${flags.rm ? 'delete' : 'stop'} the sandbox`));

        const abort = new AbortController();
        // The app's output from its start (install included); followed again after a wake.
        const logs = (async () => {
          let tail: number | undefined;
          while (!abort.signal.aborted) {
            try {
              await sandbox.waitUntil('running', { timeoutMs: 10 * 60_000, signal: abort.signal });
              for await (const chunk of sandbox.logs({ follow: true, tail, signal: abort.signal })) {
                (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(chunk.data);
              }
            } catch {
              // aborted, or the sandbox stopped meanwhile: try again unless aborted
            }
            tail = 0;
            if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
          }
        })();

        const pending = new Set<string>();
        let timer: NodeJS.Timeout | undefined;
        let syncing = Promise.resolve();
        const flush = () => {
          const paths = [...pending];
          pending.clear();
          syncing = syncing.then(async () => {
            let synced = 0;
            for (const path of paths) {
              const full = join(root, path);
              const info = statSync(full, { throwIfNoEntry: false });
              try {
                if (info?.isFile()) await sandbox.files.write(path, readFileSync(full));
                else if (!info) await sandbox.files.remove(path, { recursive: true });
                else continue;
                synced++;
              } catch (err) {
                process.stderr.write(colour.red(`sync ${path}: ${(err as Error).message}\n`, process.stderr));
              }
            }
            if (synced > 0) {
              process.stderr.write(
                colour.dim(`↻ synced ${synced === 1 ? paths[0] : `${synced} files`}\n`, process.stderr),
              );
            }
          });
        };
        const watcher = watch(root, { recursive: true }, (_event, name) => {
          if (!name) return;
          const path = name.split(sep).join('/');
          if (!keep(path)) return;
          pending.add(path);
          clearTimeout(timer);
          timer = setTimeout(flush, DEBOUNCE_MS);
        });

        await new Promise<void>((done) => {
          let stopping = false;
          const stop = async () => {
            if (stopping) process.exit(130);
            stopping = true;
            watcher.close();
            clearTimeout(timer);
            await syncing;
            abort.abort();
            await logs;
            process.stderr.write('\n');
            if (flags.rm) {
              await withSpinner('Deleting the sandbox', false, async (s) => {
                await sandbox.delete();
                s.succeed(`Deleted ${sandbox.id}`);
              });
            } else {
              await withSpinner('Stopping the sandbox', false, async (s) => {
                await sandbox.stop();
                s.succeed(
                  `Stopped ${sandbox.id} (previewd start ${sandbox.id} wakes it; so does its preview URL)`,
                );
              });
            }
            done();
          };
          process.once('SIGINT', () => void stop());
          process.once('SIGTERM', () => void stop());
        });
      }),
    );
}
