import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Previewd } from '@previewd/sdk';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PreviewdError } from '../../domain/errors.js';
import { errorBodySchema } from '../../domain/schemas.js';
import { callerFetch } from '../../mcp/caller-fetch.js';
import { createPreviewdMcpServer } from '../../mcp/mcp-server.js';

/** Most JSON-RPC messages in one POST (a batch). */
export const MAX_MCP_BATCH = 32;

const jsonRpcIdSchema = z.union([z.string().max(256), z.number().int()]);

export const jsonRpcMessageSchema = z
  .strictObject({
    jsonrpc: z.literal('2.0'),
    id: jsonRpcIdSchema.nullable().optional(),
    method: z.string().min(1).max(256).optional(),
    params: z.record(z.string().max(256), z.unknown()).optional(),
    result: z.record(z.string().max(256), z.unknown()).optional(),
    error: z
      .strictObject({ code: z.number().int(), message: z.string().max(65_536), data: z.unknown().optional() })
      .optional(),
  })
  .describe('A JSON-RPC 2.0 message of the Model Context Protocol');

export const mcpBodySchema = z.union([
  jsonRpcMessageSchema,
  z.array(jsonRpcMessageSchema).min(1).max(MAX_MCP_BATCH),
]);

/** The request headers the MCP transport reads (content negotiation, protocol version). */
const TRANSPORT_HEADERS = ['accept', 'content-type', 'mcp-protocol-version', 'mcp-session-id'] as const;

const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 429: errorBodySchema };

/**
 * The MCP endpoint for agents (Streamable HTTP, stateless: no session, one MCP server per POST).
 * It sits behind the same hooks as every route (key or session, rate limits, host check); its
 * tools call this API as the caller (src/mcp/caller-fetch.ts), so a tenant reaches its own
 * sandboxes only, and a create counts against its own rate limit.
 */
export const mcpRoutes: FastifyPluginAsyncZod<{ api: FastifyInstance }> = async (app, { api }) => {
  app.post(
    '/mcp',
    {
      schema: {
        tags: ['mcp'],
        summary: 'Model Context Protocol endpoint (Streamable HTTP, stateless): previewd as tools for agents',
        description:
          'POST JSON-RPC messages with Accept: application/json, text/event-stream; answers JSON. The tools act as the caller (same key, owner scope and rate limits as the REST API). See docs/mcp.md.',
        body: mcpBodySchema,
        response: {
          200: z.unknown().describe('The JSON-RPC answer(s)'),
          202: z.null().describe('Accepted (notifications only)'),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const client = new Previewd({ url: 'http://localhost', fetch: callerFetch(api, request) });
      const server = createPreviewdMcpServer(client);
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      try {
        await server.connect(transport);
        const headers = new Headers();
        for (const name of TRANSPORT_HEADERS) {
          const value = request.headers[name];
          if (typeof value === 'string') headers.set(name, value);
        }
        const answer = await transport.handleRequest(
          new Request('http://localhost/mcp', { method: 'POST', headers, body: '' }),
          { parsedBody: request.body },
        );
        // JSON mode: the answer is complete once every request in the POST has been handled.
        const text = answer.status === 202 ? '' : await answer.text();
        reply.status(answer.status);
        answer.headers.forEach((value, name) => {
          if (name !== 'content-length') reply.header(name, value);
        });
        return reply.send(text === '' ? null : text);
      } finally {
        await transport.close().catch(() => undefined);
        await server.close().catch(() => undefined);
      }
    },
  );

  for (const method of ['GET', 'DELETE'] as const) {
    app.route({
      method,
      url: '/mcp',
      schema: {
        tags: ['mcp'],
        summary:
          method === 'GET'
            ? 'Not offered: the MCP endpoint is stateless (no server-initiated stream); POST messages'
            : 'Not offered: the MCP endpoint is stateless (no session to end)',
        response: { 405: errorBodySchema, ...errors },
      },
      handler: async () => {
        throw new PreviewdError(
          'method_not_allowed',
          `${method} /mcp is not offered: this MCP endpoint is stateless`,
          {
            hint: 'POST JSON-RPC messages to /mcp (Streamable HTTP, no session).',
            headers: { allow: 'POST' },
          },
        );
      },
    });
  }
};
