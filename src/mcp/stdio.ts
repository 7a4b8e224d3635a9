import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Previewd } from '@previewd/sdk';
import { createPreviewdMcpServer } from './mcp-server.js';

/**
 * Serves the previewd tools over stdio (the desktop agents' way: the client spawns this process)
 * until the client closes stdin and every request read by then has been answered. stdout carries
 * the protocol only; diagnostics go to stderr.
 */
export async function serveMcpOverStdio(
  client: Previewd,
  io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream } = process,
): Promise<void> {
  const server = createPreviewdMcpServer(client);
  const transport = new StdioServerTransport(io.stdin as never, io.stdout as never);
  let inFlight = 0;
  let inputEnded = false;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const settle = () => {
    if (inputEnded && inFlight === 0) finish();
  };
  io.stdin.once('end', () => {
    inputEnded = true;
    settle();
  });
  await server.connect(transport);
  // Count requests in and answers out, so a piped batch is answered in full before the exit.
  const receive = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage) => {
    if ('method' in message && 'id' in message) inFlight++;
    receive?.call(transport, message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message: JSONRPCMessage) => {
    await send(message);
    if (!('method' in message) && 'id' in message) {
      inFlight = Math.max(0, inFlight - 1);
      settle();
    }
  };
  const closed = transport.onclose;
  transport.onclose = () => {
    closed?.call(transport);
    finish();
  };
  await done;
  await server.close().catch(() => undefined);
}
