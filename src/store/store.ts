import type { ApiKeyRecord, SessionRecord } from '../domain/credentials.js';
import type { NewEvent, PreviewdEvent } from '../domain/events.js';
import type { SandboxPatch, SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';

export interface SandboxFilter {
  state?: SandboxState;
  states?: readonly SandboxState[];
  /** Only this owner's sandboxes (a tenant's view). */
  owner?: string;
  /** All must match. */
  labels?: Record<string, string>;
  /** Include rows in state `deleted` (the reconciler needs them). */
  includeDeleted?: boolean;
  limit?: number;
  /** Return ids strictly older than this one (newest first). */
  cursor?: string;
}

export interface EventFilter {
  afterId?: number;
  sandboxId?: string;
  /** Only events of this owner's sandboxes. */
  owner?: string;
  limit?: number;
}

/**
 * Persistence for the control plane. One interface, several engines (SQLite now, PostgreSQL
 * later); one contract suite (test/contract/store.contract.ts) runs against each.
 */
export interface Store {
  readonly engine: string;
  migrate(): Promise<void>;
  ping(): Promise<void>;
  insertSandbox(record: SandboxRecord): Promise<void>;
  getSandbox(id: string, opts?: { includeDeleted?: boolean }): Promise<SandboxRecord | undefined>;
  listSandboxes(filter?: SandboxFilter): Promise<SandboxRecord[]>;
  /**
   * Applies `patch` and returns the new record. With `expectState`, only when the row is in one
   * of those states (compare-and-set); otherwise returns undefined and changes nothing.
   */
  updateSandbox(
    id: string,
    patch: SandboxPatch,
    expectState?: readonly SandboxState[],
  ): Promise<SandboxRecord | undefined>;
  /** Removes the row for good (after deletion has been published), and frees its uid. */
  purgeSandbox(id: string): Promise<void>;
  /**
   * Hands `sandboxId` a uid of `[start, start + size)` no other sandbox holds, round-robin from
   * where the last allocation stopped (a freed uid comes back only after the rest of the range);
   * the same uid again when the sandbox already holds one. Throws `uid_range_exhausted` when every
   * uid of the range is held.
   */
  allocateUid(sandboxId: string, range: { start: number; size: number }): Promise<number>;
  /** Frees the sandbox's uid (its container and files are gone). */
  releaseUid(sandboxId: string): Promise<void>;
  /** Stores the event with the owner of its sandbox (read from the sandbox row). */
  appendEvent(event: NewEvent): Promise<PreviewdEvent>;
  listEvents(opts: EventFilter): Promise<PreviewdEvent[]>;
  insertApiKey(record: ApiKeyRecord): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked and removes its dashboard sessions, in one transaction. */
  revokeApiKey(id: string, at: string): Promise<ApiKeyRecord | undefined>;
  insertSession(record: SessionRecord): Promise<void>;
  getSession(hash: string): Promise<SessionRecord | undefined>;
  deleteSession(hash: string): Promise<void>;
  /** Removes sessions that ended before `now`; returns how many. */
  deleteExpiredSessions(now: string): Promise<number>;
  close(): Promise<void>;
}
