/** Schemas of the sandbox I/O API (files, exec, processes, logs, events). */
import { z } from 'zod';
import { boundedRecord, MAX_ENV, MAX_FILES, sandboxIdSchema } from './schemas.js';

export const pathSchema = z.string().max(4096).describe('Path relative to /workspace (or absolute under it)');

/** Permission bits as an octal string ("755", "0644") or a number. */
export const modeSchema = z
  .union([
    z.string().regex(/^0?[0-7]{3,4}$/, 'mode is octal, e.g. "0644"'),
    z.number().int().min(0).max(0o7777),
  ])
  .transform((m) => (typeof m === 'number' ? m : Number.parseInt(m, 8)));

const boolish = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === '');

export const fileEntrySchema = z.object({
  path: z.string(),
  name: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number(),
  mode: z.string(),
  mtime: z.string(),
  target: z.string().optional(),
});

/** Pages of files/list and files/glob. */
export const FILE_PAGE_LIMITS = { default: 1_000, max: 10_000 } as const;

export const fileEntriesSchema = z.object({
  entries: z.array(fileEntrySchema),
  truncated: z.boolean().describe('Not every entry was returned: see truncatedBy'),
  nextCursor: z
    .string()
    .optional()
    .describe(
      'Present when more entries may follow: pass it as `cursor` (same path or pattern) for the next page',
    ),
  truncatedBy: z
    .enum(['limit', 'walk_budget', 'depth'])
    .optional()
    .describe(
      'limit: the page is full; walk_budget: the request looked at as many entries (or walked as long) as one may; depth: directories past the depth limit were not entered',
    ),
});

const pageLimitSchema = z.coerce
  .number()
  .int()
  .min(1)
  .max(FILE_PAGE_LIMITS.max)
  .default(FILE_PAGE_LIMITS.default);
const cursorSchema = z.string().min(1).max(8192).optional().describe('nextCursor of the previous page');

export const filePathQuerySchema = z.strictObject({ path: pathSchema });
export const filePutQuerySchema = z.strictObject({ path: pathSchema, mode: modeSchema.optional() });
export const fileDeleteQuerySchema = z.strictObject({ path: pathSchema, recursive: boolish.optional() });
export const fileListQuerySchema = z.strictObject({
  path: pathSchema.default(''),
  recursive: boolish.optional(),
  limit: pageLimitSchema,
  cursor: cursorSchema,
});
export const fileGlobQuerySchema = z.strictObject({
  pattern: z
    .string()
    .min(1)
    .max(4096)
    .describe('A glob; bounded (512 characters, 2 `*` per segment…): docs/io.md, else invalid_pattern'),
  limit: pageLimitSchema,
  cursor: cursorSchema,
});
export const fileArchiveQuerySchema = z.strictObject({ path: pathSchema.default('') });
export const fileMoveSchema = z.strictObject({ from: pathSchema, to: pathSchema });
export const fileChmodSchema = z.strictObject({ path: pathSchema, mode: modeSchema });
export const fileMkdirSchema = z.strictObject({ path: pathSchema });
export const fileBatchSchema = z.strictObject({
  files: boundedRecord(pathSchema, z.string(), MAX_FILES).describe('Path → content'),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
});
export const fileBatchQuerySchema = z.strictObject({
  path: pathSchema.default('').describe('Tar bodies: extract here'),
});
export const fileBatchResultSchema = z.object({
  written: z.array(fileEntrySchema),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
});

const envSchema = boundedRecord(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'env names are shell identifiers (at most 256)'),
  z.string(),
  MAX_ENV,
);

export const commandSchema = z
  .union([z.string().min(1).max(131_072), z.array(z.string().max(131_072)).min(1).max(4096)])
  .describe('A string runs through `sh -c`; an array runs as argv');

export const execSchema = z.strictObject({
  cmd: commandSchema,
  cwd: z.string().max(4096).optional().describe('Default /workspace; relative paths are under it'),
  env: envSchema.optional(),
  timeoutSec: z.number().int().min(1).max(86_400).optional(),
  stdin: z
    .string()
    .max(64 * 1024 * 1024)
    .optional(),
});
export type ExecInput = z.infer<typeof execSchema>;

export const execResultSchema = z.object({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  truncated: z.boolean().optional().describe('Output past io.execOutputMb was dropped'),
});

export const processStartSchema = z.strictObject({
  cmd: commandSchema,
  cwd: z.string().max(4096).optional(),
  env: envSchema.optional(),
});

export const processSchema = z.object({
  pid: z.number().int(),
  cmd: z.array(z.string()),
  cwd: z.string().optional(),
  startedAt: z.string(),
  running: z.boolean(),
  exitCode: z.number().int().optional(),
  endedAt: z.string().optional(),
});

export const processParamsSchema = z.strictObject({
  id: sandboxIdSchema,
  pid: z.coerce.number().int().min(1),
});
export const processKillSchema = z
  .strictObject({
    signal: z
      .string()
      .regex(/^(SIG)?[A-Z0-9]+$/)
      .default('TERM'),
  })
  .optional();
export const followQuerySchema = z.strictObject({ follow: boolish.optional() });

export const logsQuerySchema = z.strictObject({
  follow: boolish.optional(),
  since: z.coerce.number().int().min(0).optional().describe('Unix seconds'),
  tail: z.coerce.number().int().min(0).max(100_000).optional(),
});

export const eventsQuerySchema = z.strictObject({
  sandboxId: sandboxIdSchema.optional(),
  lastEventId: z.coerce.number().int().min(0).optional().describe('Resume after this id (or Last-Event-ID)'),
  types: z.string().max(1024).optional().describe('Comma-separated event types to keep'),
});
