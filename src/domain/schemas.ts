/**
 * One zod schema per payload: the single source of request validation, TypeScript types,
 * the OpenAPI document and (through it) the SDKs' types.
 */
import { z } from 'zod';
import { egressPolicySchema } from './egress.js';
import { isolationSchema } from './isolation.js';
import { NODE_ID_RE } from './node.js';
import { sandboxStates } from './state-machine.js';

export const sandboxIdSchema = z
  .string()
  .regex(/^[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{26}$/, 'must be a 26-character ULID')
  .transform((s) => s.toLowerCase())
  .describe('Sandbox id (lowercase ULID)');

export const portSchema = z.number().int().min(1).max(65535);

/** Most entries in a map of files (a create, a batch write), environment or labels. */
export const MAX_FILES = 10_000;
export const MAX_ENV = 1_000;
export const MAX_LABELS = 64;
export const MAX_METADATA_KEYS = 256;

/** A record of at most `max` entries: validated, and `maxProperties` in the OpenAPI document. */
export function boundedRecord<K extends z.core.$ZodRecordKey, V extends z.core.SomeType>(
  key: K,
  value: V,
  max: number,
) {
  return z
    .record(key, value)
    .refine((map) => Object.keys(map).length <= max, { message: `at most ${max} entries` })
    .meta({ maxProperties: max });
}

/** Workspace-relative path → UTF-8 content. */
export const filesMapSchema = boundedRecord(z.string().min(1).max(4096), z.string(), MAX_FILES);

/** One file of a create: UTF-8 text, or any bytes as `{ base64 }` (docs/sources.md). */
export const createFileContentSchema = z.union([
  z.string(),
  z
    .strictObject({ base64: z.string().describe('The bytes, standard base64 with padding') })
    .describe('A binary file'),
]);
export type CreateFileContent = z.infer<typeof createFileContentSchema>;

/** The files of a create: path → UTF-8 text or `{ base64 }`. */
export const createFilesSchema = boundedRecord(
  z.string().min(1).max(4096),
  createFileContentSchema,
  MAX_FILES,
);

/** A repository previewd clones on the host into the new workspace (docs/sources.md). */
export const gitSourceSchema = z
  .strictObject({
    url: z
      .string()
      .min(1)
      .max(2048)
      .describe('https://, http:// or git:// URL, without credentials (use token)'),
    ref: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[A-Za-z0-9._/@+-]+$/, 'a ref is a branch, tag or commit (letters, digits, . _ / @ + -)')
      .refine((r) => !r.startsWith('-') && !r.includes('..'), 'a ref may not start with - or hold ..')
      .optional()
      .describe('Branch, tag or full commit id; default: the remote HEAD'),
    depth: z.number().int().min(1).max(10_000).optional().describe('History depth fetched (default 1)'),
    token: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^[\x21-\x7e]+$/, 'a token is printable ASCII without spaces')
      .optional()
      .describe('Sent as HTTP basic auth (user x-access-token) to this clone only; never stored'),
    submodules: z.boolean().optional().describe('Also clone submodules (default false)'),
  })
  .describe('Clone a git repository into the workspace (without .git)');
export type GitSourceInput = z.infer<typeof gitSourceSchema>;

export const runtimeOverridesSchema = z.strictObject({
  image: z.string().min(1).max(256).optional(),
  install: z.string().max(8192).optional(),
  start: z.string().max(8192).optional(),
  port: portSchema.optional(),
  env: boundedRecord(z.string().max(256), z.string(), MAX_ENV).optional(),
});

export const resourcesSchema = z.strictObject({
  cpus: z.number().positive().max(256),
  memoryMb: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024),
  pids: z.number().int().min(16).max(1_000_000),
  diskMb: z
    .number()
    .int()
    .min(64)
    .max(1024 * 1024)
    .optional()
    .describe(
      'Disk of the sandbox in MB: its workspace changes, home and caches; writing past it fails with ENOSPC inside',
    ),
});
export type Resources = z.infer<typeof resourcesSchema>;

const labelKey = z.string().regex(/^[a-zA-Z0-9_.\-/]{1,63}$/, 'label keys are 1-63 of [a-zA-Z0-9_.-/]');

export const visibilitySchema = z.enum(['public', 'private']);

export const idlePolicySchema = z
  .enum(['auto', 'always_on'])
  .describe(
    '"auto": paused after pauseAfterSec and stopped after idleTimeoutSec without activity; "always_on": never',
  );

export const preStopSchema = z
  .strictObject({
    cmd: z.union([z.string().min(1).max(8192), z.array(z.string()).min(1).max(256)]),
    timeoutSec: z
      .number()
      .int()
      .min(1)
      .max(300)
      .optional()
      .describe('Default and maximum: lifecycle.preStopTimeoutSec'),
  })
  .describe('Runs in the sandbox (time-bounded) before every stop; its failure does not prevent the stop');

/** The templates a sandbox can be created from (files under templates/<name>/, see docs/runtimes.md). */
export const templateNameSchema = z
  .enum(['vite-react', 'vite-vue', 'next', 'express', 'fastapi', 'flask', 'static'])
  .describe('Start from a template app: its files, then `files` on top, then runtime detection');

/** Where in a cluster a create may go (docs/scaling.md); on a single host only this host matches. */
export const placementSchema = z
  .strictObject({
    node: z
      .string()
      .regex(NODE_ID_RE, 'a node id is lowercase letters, digits and dashes (at most 63)')
      .optional()
      .describe('Only this node'),
    labels: boundedRecord(z.string().min(1).max(128), z.string().max(256), 16)
      .optional()
      .describe('Only nodes with all these labels (Swarm node labels or cluster.labels)'),
  })
  .describe('Placement in a cluster; a create spills to the next matching node when one is full');
export type PlacementInput = z.infer<typeof placementSchema>;

export const createSandboxSchema = z.strictObject({
  image: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('Container image; default from the runtime plan. A runtime image, or one in images.allowed'),
  isolation: isolationSchema.optional().describe('Default: isolation.default of the configuration'),
  network: egressPolicySchema
    .optional()
    .describe("Egress policy; default: the owner's (network.egressByOwner), else network.egressDefault"),
  template: templateNameSchema.optional(),
  files: createFilesSchema
    .optional()
    .describe(
      'Workspace path → UTF-8 content or { base64 }, written before start (over source and archive files)',
    ),
  source: z
    .strictObject({ git: gitSourceSchema })
    .optional()
    .describe('Where the project comes from besides files: a git repository'),
  runtime: runtimeOverridesSchema.optional(),
  ports: z.array(portSchema).max(32).optional(),
  env: boundedRecord(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'env names are shell identifiers (at most 256)'),
    z.string(),
    MAX_ENV,
  ).optional(),
  resources: resourcesSchema.partial().optional(),
  visibility: visibilitySchema.optional(),
  idleTimeoutSec: z.number().int().min(0).max(31_536_000).optional(),
  pauseAfterSec: z.number().int().min(0).max(31_536_000).optional(),
  ttlSec: z.number().int().min(0).max(31_536_000).optional(),
  idlePolicy: idlePolicySchema.optional(),
  preStop: preStopSchema.optional(),
  metadata: boundedRecord(z.string().max(256), z.unknown(), MAX_METADATA_KEYS).optional(),
  labels: boundedRecord(labelKey, z.string().max(256), MAX_LABELS).optional(),
  placement: placementSchema.optional(),
  snapshot: z
    .string()
    .regex(/^[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{26}$/, 'must be a 26-character ULID')
    .transform((s) => s.toLowerCase())
    .optional()
    .describe(
      "Start from this snapshot's files (copy-on-write, instant) and runtime plan; runtime, image and files still apply on top (docs/snapshots.md)",
    ),
});
export type CreateSandboxInput = z.infer<typeof createSandboxSchema>;

export const runtimePlanSchema = z.object({
  image: z.string(),
  install: z.string().optional(),
  start: z.string().optional(),
  port: portSchema.optional(),
  env: z.record(z.string(), z.string()),
  source: z.enum(['overrides', 'detected', 'template', 'none']),
  framework: z
    .string()
    .optional()
    .describe('What detection recognised, e.g. vite-react, nextjs, fastapi, static'),
  packageManager: z.enum(['npm', 'pnpm', 'yarn', 'pip']).optional(),
  dependencies: z
    .enum(['layer', 'installed'])
    .optional()
    .describe(
      "A user's project with an install: `layer` when its dependencies came from a dependency layer (nothing installed), `installed` when its supervisor installs them (docs/runtimes.md#dependency-layers)",
    ),
});
export type RuntimePlan = z.infer<typeof runtimePlanSchema>;

export const errorInfoSchema = z.object({ code: z.string(), message: z.string() });

export const previewSchema = z.object({ port: portSchema, url: z.string() });

export const sandboxSchema = z.object({
  id: z.string(),
  state: z.enum(sandboxStates),
  node: z
    .string()
    .describe('The node that holds it (runs its container, keeps its files); `local` on a single host'),
  image: z.string(),
  isolation: isolationSchema,
  network: egressPolicySchema.describe("The egress policy in force: its own, its owner's or the default"),
  template: z.string().optional(),
  runtime: runtimePlanSchema,
  ports: z.array(portSchema),
  previews: z.array(previewSchema),
  resources: resourcesSchema,
  visibility: visibilitySchema,
  idleTimeoutSec: z.number().int(),
  pauseAfterSec: z.number().int(),
  ttlSec: z.number().int().optional(),
  idlePolicy: idlePolicySchema.optional(),
  preStop: preStopSchema.optional(),
  owner: z
    .string()
    .optional()
    .describe('From the API key (key:owner) or the X-Previewd-Owner header at create'),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  stoppedAt: z.string().optional(),
  lastActivityAt: z.string(),
  keepAliveUntil: z.string().optional(),
  expiresAt: z.string().optional(),
  error: errorInfoSchema.optional(),
  metadata: z.record(z.string(), z.unknown()),
  labels: z.record(z.string(), z.string()),
});
export type SandboxView = z.infer<typeof sandboxSchema>;

export const listSandboxesQuerySchema = z.strictObject({
  state: z.enum(sandboxStates).optional(),
  label: z
    .union([z.string().max(320), z.array(z.string().max(320)).max(MAX_LABELS)])
    .optional()
    .describe('key=value; repeat for several labels (all must match)'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(64).optional(),
});

export const sandboxListSchema = z.object({
  sandboxes: z.array(sandboxSchema),
  nextCursor: z.string().nullable(),
});

export const keepaliveSchema = z
  .strictObject({ untilSec: z.number().int().min(0).max(31_536_000).optional() })
  .optional();

export const extendSchema = z
  .strictObject({
    ttlSec: z
      .number()
      .int()
      .min(1)
      .max(31_536_000)
      .describe('New expiry, counted from now; at most lifecycle.maxTtlSec after the sandbox was created'),
  })
  .describe('Moves the expiry of the sandbox');

export const idParamsSchema = z.strictObject({ id: sandboxIdSchema });

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    details: z.unknown().optional(),
  }),
});
