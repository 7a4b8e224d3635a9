import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Previewd } from '@previewd/sdk';
import { version } from '../version.js';
import { registerPreviewdTools } from './tools.js';

export const MCP_SERVER_NAME = 'previewd';

/** An MCP server whose tools act through `client` (one per stdio process, one per HTTP request). */
export function createPreviewdMcpServer(client: Previewd): McpServer {
  const server = new McpServer(
    { name: MCP_SERVER_NAME, version },
    {
      capabilities: { tools: {} },
      instructions:
        'previewd runs apps in sandboxes with live preview URLs. Typical flow: create_sandbox (files or a template, wait: true), write_files to edit, get_preview_url to look, app_logs and exec to debug, delete_sandbox when done. Errors carry the API code and a hint naming the fix.',
    },
  );
  registerPreviewdTools(server, client);
  return server;
}
