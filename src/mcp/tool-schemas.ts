/**
 * The MCP tools' input schemas, each made from the API's own zod schemas (one source: the same
 * fields, bounds and descriptions as the REST routes and /openapi.json). Only what a tool adds on
 * top of a route (waiting for a state, an output bound) is declared here.
 */
import { z } from 'zod';
import { previewTokenRequestSchema } from '../api/routes/preview-tokens.js';
import {
  execSchema,
  fileBatchSchema,
  fileListQuerySchema,
  filePathQuerySchema,
  logsQuerySchema,
} from '../domain/io-schemas.js';
import { createSandboxSchema, idParamsSchema, listSandboxesQuerySchema } from '../domain/schemas.js';
import { createSnapshotSchema, forkSandboxSchema } from '../domain/snapshot-schemas.js';

/** How long a tool may wait for a sandbox to be running (the MCP client's own timeout is often 60 s). */
export const MAX_WAIT_SEC = 600;
export const DEFAULT_WAIT_SEC = 120;

const waitShape = {
  wait: z
    .boolean()
    .optional()
    .describe('Answer only once the sandbox is running (or has failed, with its error code)'),
  waitTimeoutSec: z
    .number()
    .int()
    .min(1)
    .max(MAX_WAIT_SEC)
    .optional()
    .describe(`How long to wait with \`wait\` (default ${DEFAULT_WAIT_SEC})`),
};

export const createSandboxInput = createSandboxSchema.extend(waitShape);
export const listSandboxesInput = listSandboxesQuerySchema;
export const sandboxIdInput = idParamsSchema;
export const startSandboxInput = idParamsSchema.extend(waitShape);
export const writeFilesInput = idParamsSchema.extend(fileBatchSchema.shape);
export const readFileInput = idParamsSchema.extend(filePathQuerySchema.shape);
export const listFilesInput = idParamsSchema.extend(fileListQuerySchema.shape);
export const execInput = idParamsSchema.extend(execSchema.shape);
export const previewUrlInput = idParamsSchema.extend(previewTokenRequestSchema.unwrap().shape);
export const appLogsInput = idParamsSchema.extend(logsQuerySchema.pick({ tail: true, since: true }).shape);

export const snapshotInput = idParamsSchema.extend(createSnapshotSchema.unwrap().shape);
export const forkInput = idParamsSchema.extend(forkSandboxSchema.unwrap().shape).extend(waitShape);

export type CreateSandboxArgs = z.output<typeof createSandboxInput>;
export type SnapshotArgs = z.output<typeof snapshotInput>;
export type ForkArgs = z.output<typeof forkInput>;
export type ListSandboxesArgs = z.output<typeof listSandboxesInput>;
export type StartSandboxArgs = z.output<typeof startSandboxInput>;
export type WriteFilesArgs = z.output<typeof writeFilesInput>;
export type ReadFileArgs = z.output<typeof readFileInput>;
export type ListFilesArgs = z.output<typeof listFilesInput>;
export type ExecArgs = z.output<typeof execInput>;
export type PreviewUrlArgs = z.output<typeof previewUrlInput>;
export type AppLogsArgs = z.output<typeof appLogsInput>;
