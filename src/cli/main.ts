#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, type LoadedConfig, loadConfig } from '../config/load.js';
import { isPreviewdError } from '../domain/errors.js';
import { version } from '../version.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerExecCommands } from './commands/exec.js';
import { registerFilesCommands } from './commands/files.js';
import { registerImagesCommand } from './commands/images.js';
import { registerKeysCommands } from './commands/keys.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerNetworkCommand } from './commands/network.js';
import { registerNodesCommands } from './commands/nodes.js';
import { registerPoolCommands } from './commands/pool.js';
import { registerPreviewCommands } from './commands/previews.js';
import { registerSandboxCommands } from './commands/sandboxes.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSnapshotCommands } from './commands/snapshots.js';
import { registerTemplatesCommand } from './commands/templates.js';
import { registerUpCommand } from './commands/up.js';
import { exitCodes, reportError } from './output.js';

const program = new Command();
program
  .name('previewd')
  .description('Sandboxes with live preview URLs')
  .version(version)
  .option('-c, --config <file>', 'configuration file (default ./previewd.yaml)')
  // `exec <id> ls -la`: options after the command belong to the command.
  .enablePositionalOptions();

let loaded: LoadedConfig | undefined;
const load = (): LoadedConfig => {
  loaded ??= loadConfig({ file: program.opts<{ config?: string }>().config });
  return loaded;
};

registerServeCommand(program, load);
registerSandboxCommands(program, load);
registerUpCommand(program, load);
registerExecCommands(program, load);
registerFilesCommands(program, load);
registerPreviewCommands(program, load);
registerNetworkCommand(program, load);
registerKeysCommands(program, load);
registerNodesCommands(program, load);
registerPoolCommands(program, load);
registerImagesCommand(program, load);
registerTemplatesCommand(program, load);
registerDoctorCommand(program, load);
registerMcpCommand(program, load);
registerSnapshotCommands(program, load);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`previewd: ${err.message}\n`);
    process.exit(exitCodes.usage);
  }
  if (isPreviewdError(err)) {
    process.stderr.write(`previewd: ${err.code}: ${err.message}\n  hint: ${err.hint}\n`);
    process.exit(1);
  }
  if ((err as { code?: string })?.code === 'commander.invalidArgument') process.exit(exitCodes.usage);
  reportError(err, process.argv.includes('--json'));
  process.exit(process.exitCode ?? exitCodes.failure);
});
