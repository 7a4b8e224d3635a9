import { type ApiKey, type Previewd, PreviewdError } from '@previewd/sdk';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { ago, colour, run, table, writeJson, writeLine } from '../output.js';

/** A key by its id, or by a unique prefix of it (at least 8 characters, as `keys ls` shows them). */
async function findKeyId(client: Previewd, ref: string): Promise<string> {
  const id = ref.trim();
  const keys = await client.keys.list();
  if (keys.some((k) => k.id === id)) return id;
  const matches = id.length >= 8 ? keys.filter((k) => k.id.startsWith(id)) : [];
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length > 1) {
    throw new PreviewdError('invalid_id', `"${ref}" matches ${matches.length} keys`, {
      hint: 'Give more characters of the id.',
    });
  }
  // Not found here: the server answers key_not_found with its hint.
  return id;
}

const dash = (value: string | null) => value ?? '-';

function keyTable(keys: ApiKey[]): string {
  return table(
    ['ID', 'ROLE', 'OWNER', 'NAME', 'PREFIX', 'SOURCE', 'CREATED', 'REVOKED'],
    keys.map((k) => [
      k.revokedAt ? colour.dim(k.id) : k.id,
      k.role === 'admin' ? colour.yellow(k.role) : k.role,
      dash(k.owner),
      dash(k.name),
      `${k.prefix}…`,
      k.source,
      k.createdAt ? ago(k.createdAt) : '-',
      k.revokedAt ? colour.red(ago(k.revokedAt)) : '-',
    ]),
  );
}

/** `keys create | ls | revoke`: API keys (an admin key only). */
export function registerKeysCommands(program: Command, load: () => LoadedConfig): void {
  const keys = program.command('keys').description('API keys: make, list and revoke them (admin key only)');

  keys
    .command('create')
    .description("Make an API key; with --owner a tenant key that sees only that owner's sandboxes")
    .option('--owner <name>', 'a tenant key for this end user or team (1-128 of A-Z a-z 0-9 _ . @ + : -)')
    .option('--name <label>', 'a label for listings')
    .option('--json', 'print the key (with its secret) as JSON')
    .action(
      run(async (flags: { owner?: string; name?: string; json?: boolean }) => {
        const created = await connect(load).keys.create({ owner: flags.owner, name: flags.name });
        if (flags.json) return writeJson(created);
        const err = process.stderr;
        err.write(
          `${colour.green('✓', err)} Made ${created.role} key ${created.id}` +
            `${created.owner ? ` for ${created.owner}` : ''}${created.name ? ` (${created.name})` : ''}\n`,
        );
        // The secret alone on stdout (`previewd keys create > key.txt`), the warning beside it on stderr.
        writeLine(created.key);
        err.write(
          `${colour.yellow('!', err)} This secret will not be shown again: store it now. ` +
            `Revoke with: previewd keys revoke ${created.id}\n`,
        );
      }),
    );

  keys
    .command('ls')
    .alias('list')
    .description('List API keys (never their secrets): configured ones and ones made with keys create')
    .option('--json', 'print the keys as JSON')
    .action(
      run(async (flags: { json?: boolean }) => {
        const list = await connect(load).keys.list();
        if (flags.json) return writeJson(list);
        writeLine(keyTable(list));
      }),
    );

  keys
    .command('revoke <id>')
    .description('Revoke a key made with keys create (its dashboard sessions end with it)')
    .option('--json', 'print the revoked key as JSON')
    .action(
      run(async (ref: string, flags: { json?: boolean }) => {
        const client = connect(load);
        const revoked = await client.keys.revoke(await findKeyId(client, ref));
        if (flags.json) return writeJson(revoked);
        writeLine(`${colour.green('✓')} revoked ${revoked.id}${revoked.owner ? ` (${revoked.owner})` : ''}`);
      }),
    );
}
