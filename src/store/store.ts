import type { NewEvent, PreviewdEvent } from '../domain/events.js';
import type { SandboxPatch, SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';

export interface SandboxFilter {
  state?: SandboxState;
  states?: readonly SandboxState[];
  /** All must match. */
  labels?: Record<string, string>;
  /** Include rows in state `deleted` (the reconciler needs them). */
  includeDeleted?: boolean;
  limit?: number;
  /** Return ids strictly older than this one (newest first). */
  cursor?: string;
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
  /** Removes the row for good (after deletion has been published). */
  purgeSandbox(id: string): Promise<void>;
  appendEvent(event: NewEvent): Promise<PreviewdEvent>;
  listEvents(opts: { afterId?: number; sandboxId?: string; limit?: number }): Promise<PreviewdEvent[]>;
  close(): Promise<void>;
}
