import { type Command, InvalidArgumentError, Option } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { egressEntrySchema, egressModes } from '../../domain/egress.js';
import { connect } from '../connection.js';
import { colour, run, writeJson, writeLine } from '../output.js';
import { findSandbox } from '../sandbox-ref.js';

const entry = (value: string, previous: string[] = []) => {
  const parsed = egressEntrySchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidArgumentError('an IPv4 address or CIDR, a host name or a *.domain wildcard');
  }
  return [...previous, parsed.data];
};

/** One line per policy: `list: allow a, b; deny c`. */
export function describePolicy(policy: { egress: string; allow: string[]; deny: string[] }): string {
  const parts = [
    policy.allow.length ? `allow ${policy.allow.join(', ')}` : '',
    policy.deny.length ? `deny ${policy.deny.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? `${policy.egress}: ${parts.join('; ')}` : policy.egress;
}

/** `network <id>`: show or set a sandbox's egress policy (docs/network.md). */
export function registerNetworkCommand(program: Command, load: () => LoadedConfig): void {
  program
    .command('network <id>')
    .description(
      "Show a sandbox's egress policy, or set it (in force for new connections at once): previewd network <id> --egress list --allow '*.npmjs.org'",
    )
    .addOption(
      new Option('--egress <mode>', 'allow | deny (nothing but DNS) | list (only --allow)').choices(
        egressModes,
      ),
    )
    .option('--allow <entry>', 'CIDR, host or *.domain the sandbox may reach (repeat)', entry)
    .option('--deny <entry>', 'CIDR, host or *.domain the sandbox may not reach (repeat)', entry)
    .option('--json', 'print the policy as JSON')
    .action(
      run(
        async (
          ref: string,
          flags: { egress?: (typeof egressModes)[number]; allow?: string[]; deny?: string[]; json?: boolean },
        ) => {
          const sandbox = await findSandbox(connect(load), ref);
          if (flags.egress) {
            await sandbox.setNetwork({
              egress: flags.egress,
              allow: flags.allow ?? [],
              deny: flags.deny ?? [],
            });
          } else if (flags.allow || flags.deny) {
            throw new InvalidArgumentError('--allow and --deny need --egress (allow, deny or list)');
          }
          const policy = sandbox.info.network;
          if (flags.json) return writeJson(policy);
          writeLine(
            `${flags.egress ? `${colour.green('✓')} ` : ''}${sandbox.id} egress ${describePolicy(policy)}`,
          );
        },
      ),
    );
}
