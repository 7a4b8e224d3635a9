import { Previewd } from '@previewd/sdk';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { findConnection } from '../connection.js';

/**
 * `previewd mcp`: an MCP server on stdio for desktop agents, acting through the API as the
 * CLI's usual connection (PREVIEWD_URL and PREVIEWD_API_KEY, else the configuration).
 */
export function registerMcpCommand(program: Command, load: () => LoadedConfig): void {
  program
    .command('mcp')
    .description('Serve previewd as MCP tools on stdio (for desktop agents; see docs/mcp.md)')
    .option('--owner <owner>', 'with an admin key: act for this end user only (X-Previewd-Owner)')
    .action(async (opts: { owner?: string }) => {
      const { url, apiKey, source } = findConnection(load);
      const client = new Previewd({ url, apiKey, ...(opts.owner ? { owner: opts.owner } : {}) });
      const { serveMcpOverStdio } = await import('../../mcp/stdio.js');
      process.stderr.write(`previewd mcp: tools for ${url} (from ${source}) on stdio\n`);
      await serveMcpOverStdio(client);
      process.exit(0);
    });
}
