/**
 * The shapes the dashboard reads from the API, taken from the types generated from the server's
 * OpenAPI document (packages/sdk, `npx tsx scripts/generate-sdk.ts`), so they cannot drift.
 */
import type { ApiOperations, FileEntry, SandboxInfo } from '../../packages/sdk/src/generated/api-types';

export type { FileEntry };
export type Sandbox = SandboxInfo;
export type SandboxState = Sandbox['state'];
export type Preview = Sandbox['previews'][number];
export type AccessLogEntry =
  ApiOperations['GET /v1/sandboxes/{id}/access-log']['response']['entries'][number];

/** The states a user can filter by (`deleted` rows are not listed). */
export const sandboxStates: readonly SandboxState[] = [
  'creating',
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'error',
];

/** One entry of `GET /v1/templates` (its schema is open in the OpenAPI document). */
export interface Template {
  name: string;
  dependencies: 'npm' | 'image';
  warm: boolean;
}

/** One event of `/v1/events` or `/v1/sandboxes/:id/events`. */
export interface PreviewdEvent {
  id: number;
  type: string;
  sandboxId?: string;
  at: string;
  data: Record<string, unknown>;
}
