import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { colour, run, writeJson, writeLine } from '../output.js';
import { findSandbox } from '../sandbox-ref.js';

const int = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
};

/** `url` and `token`: preview URLs, and tokens for private previews. */
export function registerPreviewCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('url <id> [port]')
    .description('Print the preview URL of a port (default: the app port)')
    .option('--token', 'carry a fresh preview token (private sandboxes)')
    .option('--ttl <sec>', 'token lifetime', int)
    .option('--json', 'print { port, url } as JSON')
    .action(
      run(
        async (
          ref: string,
          portArg: string | undefined,
          flags: { token?: boolean; ttl?: number; json?: boolean },
        ) => {
          const sandbox = await findSandbox(connect(load), ref);
          const port = portArg ? int(portArg) : (sandbox.info.runtime.port ?? sandbox.info.ports[0]);
          if (port === undefined) {
            throw new InvalidArgumentError(`sandbox ${sandbox.id} exposes no port; give one`);
          }
          const token = flags.token ?? false;
          const url = await sandbox.getPreviewUrl(port, { token, ttlSec: flags.ttl });
          if (flags.json) return writeJson({ port, url });
          writeLine(url);
          if (sandbox.info.visibility === 'private' && !token && process.stdout.isTTY) {
            process.stderr.write(
              colour.dim('private sandbox: add --token for a URL that opens in a browser\n', process.stderr),
            );
          }
        },
      ),
    );

  program
    .command('token <id>')
    .description('Mint a preview token (private previews), or revoke every token with --revoke')
    .option('-p, --port <port>', 'only this port (default: every exposed port)', int)
    .option('--ttl <sec>', 'lifetime (default 3600)', int)
    .option('--revoke', 'revoke every token issued so far')
    .option('--json', 'print { token, url, expiresAt } as JSON')
    .action(
      run(async (ref: string, flags: { port?: number; ttl?: number; revoke?: boolean; json?: boolean }) => {
        const sandbox = await findSandbox(connect(load), ref);
        if (flags.revoke) {
          await sandbox.previewTokens.revokeAll();
          if (flags.json) return writeJson({ revoked: true });
          return writeLine(`${colour.green('✓')} revoked every preview token of ${sandbox.id}`);
        }
        const token = await sandbox.previewTokens.create({ port: flags.port, ttlSec: flags.ttl });
        if (flags.json) return writeJson(token);
        writeLine(token.token);
        process.stderr.write(
          `${colour.dim('url:', process.stderr)} ${token.url}\n${colour.dim('expires:', process.stderr)} ${token.expiresAt}\n`,
        );
      }),
    );
}
