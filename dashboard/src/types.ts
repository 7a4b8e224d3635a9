/**
 * The shapes the dashboard reads from the API, taken from the types generated from the server's
 * OpenAPI document (packages/sdk, `npx tsx scripts/generate-sdk.ts`), so they cannot drift.
 */
import type {
  ApiOperations,
  CreateSandboxRequest,
  CreateSnapshotRequest,
  EgressPolicy,
  FileEntry,
  SandboxInfo,
  Snapshot,
  SnapshotList,
} from '../../packages/sdk/src/generated/api-types';
import type { PreviewdEvent } from '../../packages/sdk/src/sandbox';
import { sandboxStates as allStates } from '../../src/domain/state-machine';

export type {
  CreateSandboxRequest,
  CreateSnapshotRequest,
  EgressPolicy,
  FileEntry,
  PreviewdEvent,
  Snapshot,
  SnapshotList,
};
export type Sandbox = SandboxInfo;
export type SandboxState = Sandbox['state'];
export type Preview = Sandbox['previews'][number];
export type AccessLogEntry =
  ApiOperations['GET /v1/sandboxes/{id}/access-log']['response']['entries'][number];

/** The states a user can filter by (`deleted` rows are not listed). */
export const sandboxStates: readonly SandboxState[] = allStates.filter((state) => state !== 'deleted');

/** One entry of `GET /v1/templates` (its schema is open in the OpenAPI document). */
export interface Template {
  name: string;
  dependencies: 'npm' | 'image';
  warm: boolean;
}

/** `GET /v1/sandboxes/{id}/metrics`: one sample every `intervalSec`, kept for `retentionSec`. */
export type SandboxMetrics = NonNullable<ApiOperations['GET /v1/sandboxes/{id}/metrics']['response']>;
export type MetricsSample = SandboxMetrics['samples'][number];

/** `GET /v1/capacity` (admin): the memory budget over the host, or the live nodes of a cluster. */
export type Capacity = NonNullable<ApiOperations['GET /v1/capacity']['response']>;

/** `source.git` of a create: url, ref, depth, token (the token is sent once and never kept). */
export type GitSource = NonNullable<NonNullable<CreateSandboxRequest['source']>['git']>;

/** The body of `POST /v1/sandboxes/{id}/fork`. */
export type ForkRequest = NonNullable<ApiOperations['POST /v1/sandboxes/{id}/fork']['body']>;
