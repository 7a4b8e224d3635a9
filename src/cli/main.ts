#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, type LoadedConfig, loadConfig } from '../config/load.js';
import { isPreviewdError } from '../domain/errors.js';
import { version } from '../version.js';
import { registerImagesCommand } from './commands/images.js';
import { registerServeCommand } from './commands/serve.js';

const program = new Command();
program
  .name('previewd')
  .description('Sandboxes with live preview URLs')
  .version(version)
  .option('-c, --config <file>', 'configuration file (default ./previewd.yaml)');

let loaded: LoadedConfig | undefined;
const load = (): LoadedConfig => {
  loaded ??= loadConfig({ file: program.opts<{ config?: string }>().config });
  return loaded;
};

registerServeCommand(program, load);
registerImagesCommand(program, load);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`previewd: ${err.message}\n`);
    process.exit(2);
  }
  if (isPreviewdError(err)) {
    process.stderr.write(`previewd: ${err.code}: ${err.message}\n  hint: ${err.hint}\n`);
    process.exit(1);
  }
  process.stderr.write(`previewd: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
