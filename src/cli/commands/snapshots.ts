import type { Snapshot } from '@previewd/sdk';
import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { ago, colour, run, table, writeJson, writeLine } from '../output.js';
import { findSandbox } from '../sandbox-ref.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function labels(list: string[] | undefined): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--label "${item}" must be key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function snapshotTable(list: Snapshot[]): string {
  return table(
    ['ID', 'NAME', 'SANDBOX', 'RUNTIME', 'SIZE', 'NODE', 'CREATED'],
    list.map((s) => [
      s.id,
      s.name ?? '-',
      s.sandboxId,
      s.runtime.framework ?? s.image,
      `${s.sizeMb} MB`,
      s.node,
      ago(s.createdAt),
    ]),
  );
}

/** `snapshot <id>`, `snapshots ls|rm`, `fork <id>` (docs/snapshots.md). */
export function registerSnapshotCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('snapshot <sandbox>')
    .description("Snapshot a sandbox's files (a running one is paused for the copy; memory is not kept)")
    .option('-n, --name <name>', 'a name for the snapshot')
    .option('-l, --label <key=value>', 'label (repeat)', collect)
    .option('--json', 'print the snapshot as JSON')
    .action(
      run(async (ref: string, flags: { name?: string; label?: string[]; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        const snap = await sandbox.snapshot({
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.label ? { labels: labels(flags.label) } : {}),
        });
        if (flags.json) return writeJson(snap);
        writeLine(`${colour.green('✓')} snapshot ${snap.id} of ${sandbox.id} (${snap.sizeMb} MB)`);
        writeLine(colour.dim(`  start sandboxes from it: POST /v1/sandboxes { "snapshot": "${snap.id}" }`));
      }),
    );

  const snapshots = program.command('snapshots').description('List and delete snapshots');
  snapshots
    .command('ls')
    .alias('list')
    .description('List your snapshots, newest first')
    .option('--sandbox <id>', 'only snapshots of this sandbox')
    .option('--json', 'print the snapshots as JSON')
    .action(
      run(async (flags: { sandbox?: string; json?: boolean }) => {
        const client = connect(load);
        const all: Snapshot[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.snapshots.list({
            ...(flags.sandbox ? { sandboxId: flags.sandbox } : {}),
            ...(cursor ? { cursor } : {}),
            limit: 500,
          });
          all.push(...page.snapshots);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        if (flags.json) return writeJson(all);
        if (all.length === 0)
          return writeLine(colour.dim('No snapshots. Take one with: previewd snapshot <id>'));
        writeLine(snapshotTable(all));
      }),
    );
  snapshots
    .command('rm <ids...>')
    .alias('delete')
    .description('Delete snapshots (sandboxes made from them keep their files)')
    .option('--json', 'print the deleted ids as JSON')
    .action(
      run(async (ids: string[], flags: { json?: boolean }) => {
        const client = connect(load);
        const deleted: string[] = [];
        for (const id of ids) {
          const snap = await client.snapshots.delete(id.trim().toLowerCase());
          deleted.push(snap.id);
          if (!flags.json) writeLine(`${colour.green('✓')} deleted snapshot ${snap.id}`);
        }
        if (flags.json) writeJson({ deleted });
      }),
    );

  program
    .command('fork <sandbox>')
    .description("A new sandbox from a sandbox's files as they are now, its app started fresh")
    .option('-l, --label <key=value>', 'label of the new sandbox (repeat)', collect)
    .option('--json', 'print the new sandbox as JSON')
    .action(
      run(async (ref: string, flags: { label?: string[]; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        const fork = await sandbox.fork(flags.label ? { labels: labels(flags.label) } : {});
        if (flags.json) return writeJson(fork.info);
        writeLine(`${colour.green('✓')} forked ${sandbox.id} → ${fork.id}`);
        const url = fork.previews[0]?.url;
        if (url) writeLine(`  preview: ${url}`);
      }),
    );
}
