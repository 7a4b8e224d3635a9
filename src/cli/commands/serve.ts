import type { Command } from 'commander';
import { apiKeyFile } from '../../config/api-keys.js';
import type { LoadedConfig } from '../../config/load.js';
import { createLogger } from '../../config/logger.js';

export function registerServeCommand(program: Command, load: () => LoadedConfig): void {
  program
    .command('serve')
    .description('Run the API, edge and reapers in the foreground')
    .action(async () => {
      const { config, warnings, file } = load();
      const log = createLogger(config);
      for (const warning of warnings) log.warn(warning);
      if (file) log.info({ file }, 'configuration file');
      // Loaded here so the client commands start without the server's modules.
      const { createPreviewd } = await import('../../app.js');
      const app = await createPreviewd(config, log);
      if (app.generatedKey) {
        process.stderr.write(
          `\nGenerated an API key (stored in ${apiKeyFile(config.dataDir)}, mode 0600; shown only now):\n\n  ${app.generatedKey}\n\n`,
        );
      }
      await app.start();
      log.info(
        {
          api: app.apiUrl,
          edge: app.edgeUrl,
          ...(config.dashboard.enabled ? { dashboard: `${app.apiUrl}/` } : {}),
          dataDir: config.dataDir,
        },
        config.dashboard.enabled
          ? `previewd is serving; dashboard at ${app.apiUrl}/ (sign in with the API key in ${apiKeyFile(config.dataDir)} or PREVIEWD_API_KEYS)`
          : 'previewd is serving',
      );
      let stopping = false;
      const shutdown = async (signal: string) => {
        if (stopping) process.exit(130);
        stopping = true;
        log.info({ signal }, 'shutting down');
        await app.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
    });
}
