import { extname, posix } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { create as contentDisposition } from 'content-disposition';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PreviewdError } from '../../domain/errors.js';
import {
  fileArchiveQuerySchema,
  fileBatchQuerySchema,
  fileBatchResultSchema,
  fileBatchSchema,
  fileChmodSchema,
  fileDeleteQuerySchema,
  fileEntriesSchema,
  fileEntrySchema,
  fileGlobQuerySchema,
  fileListQuerySchema,
  fileMkdirSchema,
  fileMoveSchema,
  filePathQuerySchema,
  filePutQuerySchema,
} from '../../domain/io-schemas.js';
import { errorBodySchema, idParamsSchema } from '../../domain/schemas.js';
import { globPage, listPage } from '../../providers/workspace-listing.js';
import { extractIntoWorkspace, packWorkspace } from '../../providers/workspace-tar.js';
import { identityOf } from '../../sandboxes/identity.js';
import { type IoRouteDeps, recordActivity } from './io-context.js';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.tsx': 'text/plain; charset=utf-8',
  '.jsx': 'text/plain; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.py': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
  '.gz': 'application/gzip',
};

/**
 * Headers of every file the API hands out: a download (never rendered on the API's origin), its
 * type not sniffed, and a sandboxed CSP should a browser render it anyway — a workspace's HTML or
 * SVG must not run scripts with the API's cookies.
 */
function asDownload(reply: { header(name: string, value: string): unknown }, name: string): void {
  // Control characters become "_"; the library quotes the rest and adds filename* for non-ASCII.
  const safe = name.replace(/[\p{Cc}\u2028\u2029]/gu, '_') || 'download';
  reply.header('content-disposition', contentDisposition(safe));
  reply.header('x-content-type-options', 'nosniff');
  reply.header('content-security-policy', 'sandbox');
}

/** Passes bytes through and fails with payload_too_large past `max`. */
function byteLimit(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) {
        // The rest of the body is not read: the connection cannot be reused.
        done(
          new PreviewdError('payload_too_large', `the body is larger than ${max} bytes`, {
            headers: { connection: 'close' },
          }),
        );
        return;
      }
      done(null, chunk);
    },
  });
}

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  413: errorBodySchema,
};

/**
 * Workspace files of a sandbox, on the host: they work whatever the sandbox's state (editing a
 * stopped or paused sandbox does not wake it), every path goes through WorkspaceFiles' checks,
 * and files written here belong to the sandbox's user.
 */
export const fileRoutes: FastifyPluginAsyncZod<IoRouteDeps> = async (app, deps) => {
  const { service, provider } = deps;
  const maxBytes = Math.round(deps.config.maxBodyMb * 1024 * 1024);
  recordActivity(app, deps.activity);

  // Raw bodies (file content, tar streams) reach the handlers as streams, limited there.
  const rawParser = (_req: unknown, payload: Readable, done: (err: Error | null, body?: unknown) => void) =>
    done(null, payload);
  app.addContentTypeParser('application/octet-stream', rawParser);
  app.addContentTypeParser('*', rawParser);

  const rawBody = (request: { headers: Record<string, unknown>; body: unknown }): Readable => {
    const length = Number(request.headers['content-length']);
    if (Number.isFinite(length) && length > maxBytes) {
      throw new PreviewdError('payload_too_large', `the body is ${length} bytes, above ${maxBytes}`, {
        headers: { connection: 'close' },
      });
    }
    const body = request.body;
    if (body && typeof (body as Readable).pipe === 'function') {
      const limited = byteLimit(maxBytes);
      (body as Readable).on('error', (err) => limited.destroy(err));
      return (body as Readable).pipe(limited);
    }
    if (Buffer.isBuffer(body) || typeof body === 'string') {
      const limited = byteLimit(maxBytes);
      limited.end(body);
      return limited;
    }
    // No body at all: an empty file.
    const empty = byteLimit(maxBytes);
    empty.end();
    return empty;
  };

  const filesOf = async (id: string) => {
    const record = await service.get(id);
    return provider.files(id, identityOf(record));
  };

  app.put(
    '/v1/sandboxes/:id/files',
    {
      schema: {
        tags: ['files'],
        summary: 'Write a file (raw body; parents are created)',
        params: idParamsSchema,
        querystring: filePutQuerySchema,
        response: { 200: fileEntrySchema, ...errors },
      },
    },
    async (request) => {
      const files = await filesOf(request.params.id);
      const body = rawBody(request as never);
      const mode = request.query.mode;
      return files.write(request.query.path, body, mode !== undefined ? { mode } : {});
    },
  );

  app.get(
    '/v1/sandboxes/:id/files',
    {
      schema: {
        tags: ['files'],
        summary: 'Read a file (raw content)',
        params: idParamsSchema,
        querystring: filePathQuerySchema,
        response: { 200: z.any().describe('The raw file content'), ...errors },
      },
    },
    async (request, reply) => {
      const files = await filesOf(request.params.id);
      const { stream, entry } = await files.openRead(request.query.path);
      reply.header(
        'content-type',
        contentTypes[extname(entry.name).toLowerCase()] ?? 'application/octet-stream',
      );
      reply.header('content-length', String(entry.size));
      reply.header('last-modified', new Date(entry.mtime).toUTCString());
      reply.header('x-file-mode', entry.mode);
      asDownload(reply, entry.name);
      return reply.send(stream);
    },
  );

  app.delete(
    '/v1/sandboxes/:id/files',
    {
      schema: {
        tags: ['files'],
        summary: 'Delete a file, or a directory with recursive=true',
        params: idParamsSchema,
        querystring: fileDeleteQuerySchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const files = await filesOf(request.params.id);
      await files.remove(request.query.path, { recursive: request.query.recursive ?? false });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/sandboxes/:id/files/list',
    {
      schema: {
        tags: ['files'],
        summary: 'List a directory (paged: limit, cursor → nextCursor)',
        params: idParamsSchema,
        querystring: fileListQuerySchema,
        response: { 200: fileEntriesSchema, ...errors },
      },
    },
    async (request) => {
      const files = await filesOf(request.params.id);
      const { path, recursive, limit, cursor } = request.query;
      return listPage(files, path, { recursive: recursive ?? false, limit, ...(cursor ? { cursor } : {}) });
    },
  );

  app.get(
    '/v1/sandboxes/:id/files/stat',
    {
      schema: {
        tags: ['files'],
        summary: 'Describe one path (links are not followed)',
        params: idParamsSchema,
        querystring: filePathQuerySchema,
        response: { 200: fileEntrySchema, ...errors },
      },
    },
    async (request) => (await filesOf(request.params.id)).stat(request.query.path),
  );

  app.get(
    '/v1/sandboxes/:id/files/glob',
    {
      schema: {
        tags: ['files'],
        summary: 'Find paths matching a glob (`**/*.ts`, `src/{a,b}/*`; paged: limit, cursor → nextCursor)',
        params: idParamsSchema,
        querystring: fileGlobQuerySchema,
        response: { 200: fileEntriesSchema, ...errors },
      },
    },
    async (request) => {
      const files = await filesOf(request.params.id);
      const { pattern, limit, cursor } = request.query;
      return globPage(files, pattern, { limit, ...(cursor ? { cursor } : {}) });
    },
  );

  app.post(
    '/v1/sandboxes/:id/files/move',
    {
      schema: {
        tags: ['files'],
        summary: 'Move or rename',
        params: idParamsSchema,
        body: fileMoveSchema,
        response: { 200: fileEntrySchema, ...errors },
      },
    },
    async (request) => (await filesOf(request.params.id)).move(request.body.from, request.body.to),
  );

  app.post(
    '/v1/sandboxes/:id/files/chmod',
    {
      schema: {
        tags: ['files'],
        summary: 'Change permission bits',
        params: idParamsSchema,
        body: fileChmodSchema,
        response: { 200: fileEntrySchema, ...errors },
      },
    },
    async (request) => (await filesOf(request.params.id)).chmod(request.body.path, request.body.mode),
  );

  app.post(
    '/v1/sandboxes/:id/files/mkdir',
    {
      schema: {
        tags: ['files'],
        summary: 'Create a directory and its parents',
        params: idParamsSchema,
        body: fileMkdirSchema,
        response: { 200: fileEntrySchema, ...errors },
      },
    },
    async (request) => (await filesOf(request.params.id)).mkdir(request.body.path),
  );

  app.post(
    '/v1/sandboxes/:id/files/batch',
    {
      schema: {
        tags: ['files'],
        summary: 'Write many files in one request',
        description:
          'JSON `{ files: { path: content }, encoding?: "utf8" | "base64" }`, or a tar stream ' +
          '(`Content-Type: application/x-tar`, or gzip-compressed as `application/gzip`) extracted under `?path=` ' +
          '(regular files and directories; links are skipped; a truncated or corrupt archive writes nothing).',
        params: idParamsSchema,
        querystring: fileBatchQuerySchema,
        response: { 200: fileBatchResultSchema, ...errors },
      },
    },
    async (request) => {
      const files = await filesOf(request.params.id);
      const type = request.headers['content-type'] ?? '';
      if (/^application\/json/i.test(type)) {
        const parsed = fileBatchSchema.safeParse(request.body);
        if (!parsed.success) {
          throw new PreviewdError(
            'invalid_request',
            `body: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
          );
        }
        const { files: map, encoding } = parsed.data;
        const base = request.query.path;
        const paths = Object.keys(map);
        // Check every path before writing any, so a bad one leaves the workspace untouched.
        for (const path of paths) files.segments(base ? `${base}/${path}` : path);
        const written = [];
        for (const path of paths) {
          const content = Buffer.from(map[path]!, encoding);
          written.push(await files.write(base ? `${base}/${path}` : path, content));
        }
        return { written, skipped: [] };
      }
      if (/^application\/(x-tar|tar|gzip|x-gzip|octet-stream)/i.test(type)) {
        return extractIntoWorkspace(files, request.query.path, rawBody(request as never));
      }
      throw new PreviewdError(
        'unsupported_media_type',
        `batch takes application/json or application/x-tar, not ${type || 'nothing'}`,
      );
    },
  );

  app.get(
    '/v1/sandboxes/:id/files/archive',
    {
      schema: {
        tags: ['files'],
        summary: 'Download a directory as a tar stream',
        params: idParamsSchema,
        querystring: fileArchiveQuerySchema,
        response: { 200: z.any().describe('application/x-tar'), ...errors },
      },
    },
    async (request, reply) => {
      const files = await filesOf(request.params.id);
      const tar = await packWorkspace(files, request.query.path);
      reply.header('content-type', 'application/x-tar');
      asDownload(reply, `${posix.basename(files.relative(request.query.path)) || 'workspace'}.tar`);
      return reply.send(tar);
    },
  );
};
