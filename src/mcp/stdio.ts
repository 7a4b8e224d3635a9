import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Previewd } from '@previewd/sdk';
import { createPreviewdMcpServer } from './mcp-server.js';

/**
 * Serves the previewd tools over stdio (the desktop agents' way: the client spawns this process)
 * until the client closes stdin. stdout carries the protocol only; diagnostics go to stderr.
 */
export async function serveMcpOverStdio(
  client: Previewd,
  io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream } = process,
): Promise<void> {
  const server = createPreviewdMcpServer(client);
  const transport = new StdioServerTransport(io.stdin as never, io.stdout as never);
  const ended = new Promise<void>((resolve) => {
    io.stdin.once('end', resolve);
    io.stdin.once('close', resolve);
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  await ended;
  await server.close().catch(() => undefined);
}
