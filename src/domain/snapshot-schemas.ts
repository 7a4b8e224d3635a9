/**
 * Snapshots of a sandbox's files (docs/snapshots.md): the records the store keeps and the zod
 * schemas of their routes (validation, types, the OpenAPI document and the SDKs' types).
 */
import { z } from 'zod';
import { PreviewdError } from './errors.js';
import { boundedRecord, createSandboxSchema, type RuntimePlan, runtimePlanSchema } from './schemas.js';

/** Most labels on one snapshot, and the bounds of a name. */
export const MAX_SNAPSHOT_LABELS = 64;
export const MAX_SNAPSHOT_NAME = 128;

const labelKey = z.string().regex(/^[a-zA-Z0-9_.\-/]{1,63}$/, 'label keys are 1-63 of [a-zA-Z0-9_.-/]');

export const snapshotIdSchema = z
  .string()
  .regex(/^[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{26}$/, 'must be a 26-character ULID')
  .transform((s) => s.toLowerCase())
  .describe('Snapshot id (lowercase ULID)');

export const snapshotIdParamsSchema = z.strictObject({ id: snapshotIdSchema });

/** What the store keeps of a snapshot. */
export interface SnapshotRecord {
  id: string;
  /** The sandbox it was taken of (which may be gone since). */
  sandboxId: string;
  name?: string;
  labels: Record<string, string>;
  /** The tenant it belongs to (the sandbox's owner); none: an admin-wide sandbox's. */
  owner?: string;
  /** The node whose layer store holds its layers; a create from it is placed there. */
  node: string;
  /** The sandbox's runtime plan when it was taken: a sandbox made from it runs the same. */
  runtime: RuntimePlan;
  image: string;
  /** Layer-store keys, top first: the frozen writable layer, then the lower layers it sat on. */
  layers: string[];
  /** Size of the frozen layer (what this snapshot added to the layer store), MB rounded up. */
  sizeMb: number;
  createdAt: string;
}

export const createSnapshotSchema = z
  .strictObject({
    name: z.string().min(1).max(MAX_SNAPSHOT_NAME).optional(),
    labels: boundedRecord(labelKey, z.string().max(256), MAX_SNAPSHOT_LABELS).optional(),
  })
  .optional()
  .describe("Freezes the sandbox's files as they are now into a read-only layer");
export type CreateSnapshotInput = NonNullable<z.infer<typeof createSnapshotSchema>>;

export const snapshotSchema = z.object({
  id: z.string(),
  sandboxId: z.string().describe('The sandbox it was taken of'),
  name: z.string().optional(),
  labels: z.record(z.string(), z.string()),
  owner: z.string().optional(),
  node: z.string().describe('The node that holds its layers; sandboxes made from it are placed there'),
  runtime: runtimePlanSchema.describe("The sandbox's runtime plan when it was taken"),
  image: z.string(),
  sizeMb: z.number().int().describe('Size of the frozen writable layer, MB rounded up'),
  createdAt: z.string(),
});
export type SnapshotView = z.infer<typeof snapshotSchema>;

export const snapshotListSchema = z.object({
  snapshots: z.array(snapshotSchema),
  nextCursor: z.string().nullable(),
});

export const listSnapshotsQuerySchema = z.strictObject({
  sandboxId: z
    .string()
    .regex(/^[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{26}$/, 'must be a 26-character ULID')
    .transform((s) => s.toLowerCase())
    .optional()
    .describe('Only snapshots of this sandbox'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: snapshotIdSchema.optional().describe('nextCursor of the previous page'),
});

/** What a fork may set on the new sandbox; everything else comes from the forked one. */
export const forkSandboxSchema = createSandboxSchema
  .pick({
    runtime: true,
    env: true,
    ports: true,
    resources: true,
    visibility: true,
    idleTimeoutSec: true,
    pauseAfterSec: true,
    ttlSec: true,
    idlePolicy: true,
    metadata: true,
    labels: true,
  })
  .optional()
  .describe("A new sandbox from the sandbox's files as they are now (its app started fresh)");
export type ForkSandboxInput = NonNullable<z.infer<typeof forkSandboxSchema>>;

export function snapshotView(r: SnapshotRecord): SnapshotView {
  return {
    id: r.id,
    sandboxId: r.sandboxId,
    ...(r.name !== undefined ? { name: r.name } : {}),
    labels: r.labels,
    ...(r.owner !== undefined ? { owner: r.owner } : {}),
    node: r.node,
    runtime: r.runtime,
    image: r.image,
    sizeMb: r.sizeMb,
    createdAt: r.createdAt,
  };
}

export function snapshotQuotaError(owner: string, n: number, max: number): PreviewdError {
  return new PreviewdError(
    'snapshot_quota_exceeded',
    `owner ${owner} has ${n} snapshots, the quota is ${max}`,
    {
      details: { quota: 'maxSnapshotsPerOwner', limit: max },
    },
  );
}
